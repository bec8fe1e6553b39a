package network

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/zos-go/zos/internal/netns"
	"github.com/zos-go/zos/pkg"
)

type streamKind int

const (
	streamZOS streamKind = iota
	streamDMZ
	streamYgg
	streamPublic
)

// addrWatcher serves the address streams (spec §10).
type addrWatcher struct{ m *Module }

func newAddrWatcher(m *Module) *addrWatcher { return &addrWatcher{m: m} }

// source returns where a stream reads: namespace and interfaces.
func (w *addrWatcher) source(k streamKind) (string, []string, time.Duration) {
	c := w.m.cfg
	switch k {
	case streamZOS:
		return c.HostNS, []string{c.ZOSBridge}, c.FastInterval
	case streamDMZ:
		return w.m.names.ndmzNS(), []string{npub4Iface, npub6Iface}, c.SlowInterval
	case streamYgg:
		return w.m.names.ndmzNS(), []string{yggIface}, c.SlowInterval
	default:
		return w.m.names.publicNS(), []string{publicIface}, c.SlowInterval
	}
}

// read returns the current addresses of the stream (nil on error, or when
// the node has no public config for the public stream).
func (w *addrWatcher) read(k streamKind) pkg.NetlinkAddresses {
	if k == streamPublic && w.m.cfg.Public == nil {
		return nil
	}
	ns, ifaces, _ := w.source(k)
	var out pkg.NetlinkAddresses
	_ = netns.Do(ns, func() error {
		for _, i := range ifaces {
			as, err := addrsOf(i)
			if err != nil {
				continue
			}
			for _, a := range as {
				out = append(out, pkg.NetlinkAddress(a))
			}
		}
		return nil
	})
	return out
}

// stream sends the addresses now, then every period and, for the zos
// bridge, on every netlink address event of the host namespace. The
// goroutine ends with ctx; the channel is never closed (as the original).
func (w *addrWatcher) stream(ctx context.Context, k streamKind) <-chan pkg.NetlinkAddresses {
	ch := make(chan pkg.NetlinkAddresses)
	ns, _, period := w.source(k)
	var events chan netlink.AddrUpdate
	if k == streamZOS {
		events = make(chan netlink.AddrUpdate, 16)
		h, err := openNS(ns)
		if err == nil {
			err = netlink.AddrSubscribeWithOptions(events, ctx.Done(), netlink.AddrSubscribeOptions{Namespace: &h})
			h.Close()
		}
		if err != nil {
			w.m.log.WarnContext(ctx, "address events unavailable, polling", "err", err)
			events = nil
		}
	}
	go func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ch <- w.read(k):
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case _, ok := <-events:
				if !ok {
					events = nil
				}
			}
		}
	}()
	return ch
}

// addrs is Addrs: the IPs of iface in namespace ns ("" = host). A name
// without this node's prefix is looked up with it too.
func (m *Module) addrs(iface, ns string) ([]net.IP, error) {
	if ns == "" {
		ns = m.cfg.HostNS
	} else if !netns.Exists(ns) && netns.Exists(m.cfg.NamePrefix+ns) {
		ns = m.cfg.NamePrefix + ns
	}
	var out []net.IP
	err := netns.Do(ns, func() error {
		as, err := addrsOf(iface)
		if err != nil {
			return err
		}
		for _, a := range as {
			out = append(out, a.IP)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("addresses of %s in %q: %w", iface, ns, err)
	}
	return out, nil
}

// publicIPv6 returns the first global, non-ULA, non-yggdrasil address of
// npub6 with its prefix.
func (m *Module) publicIPv6() (net.IPNet, error) {
	var out *net.IPNet
	_, ygg, _ := net.ParseCIDR("200::/7")
	_, ula, _ := net.ParseCIDR("fc00::/7")
	_ = netns.Do(m.names.ndmzNS(), func() error {
		as, err := addrsOf(npub6Iface)
		if err != nil {
			return err
		}
		for _, a := range as {
			ip := a.IP
			if ip.To4() == nil && ip.IsGlobalUnicast() && !ula.Contains(ip) && !ygg.Contains(ip) {
				out = &net.IPNet{IP: ip.Mask(a.Mask), Mask: a.Mask}
				return nil
			}
		}
		return nil
	})
	if out == nil {
		return net.IPNet{}, ErrNoPublicIPv6
	}
	return *out, nil
}

// ipv4Only reports whether the node has no public IPv6 (spec §4.2).
func (m *Module) ipv4Only() bool {
	_, err := m.publicIPv6()
	return err != nil
}
