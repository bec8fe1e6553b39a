package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/internal/netns"
)

// This file holds the netlink steps the module is built from. Each runs in
// the namespace of the calling thread: callers wrap them in netns.Do.

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT)
}

// linkByName returns the link or nil when it does not exist.
func linkByName(name string) (netlink.Link, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("link %s: %w", name, err)
	}
	return l, nil
}

// ensureBridge creates a bridge if missing, IPv6 optionally off, and up.
func ensureBridge(name string, ipv6 bool) (netlink.Link, error) {
	l, err := linkByName(name)
	if err != nil {
		return nil, err
	}
	if l == nil {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: bridgeMTU}}
		if err := netlink.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("bridge %s: %w", name, err)
		}
		if l, err = netlink.LinkByName(name); err != nil {
			return nil, fmt.Errorf("bridge %s: %w", name, err)
		}
	}
	if _, ok := l.(*netlink.Bridge); !ok {
		return nil, fmt.Errorf("link %s is a %s, not a bridge: %w", name, l.Type(), ErrExists)
	}
	if !ipv6 {
		if err := setSysctl(fmt.Sprintf("net/ipv6/conf/%s/disable_ipv6", name), "1"); err != nil {
			return nil, err
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return nil, fmt.Errorf("bridge %s up: %w", name, err)
	}
	return l, nil
}

// deleteLink deletes a link; a missing one is fine.
func deleteLink(name string) error {
	l, err := linkByName(name)
	if err != nil || l == nil {
		return err
	}
	if err := netlink.LinkDel(l); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// setSysctl writes a sysctl of the current thread's namespace ("net/...").
func setSysctl(key, value string) error {
	p := filepath.Join("/proc/sys", key)
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", strings.ReplaceAll(key, "/", "."), value, err)
	}
	return nil
}

// macvlanInto creates (in the current namespace, on parent) a bridge-mode
// macvlan that lands directly in the namespace nsName with the given name
// and MAC (nil: random). It is a no-op when the link exists there already.
func macvlanInto(parent, name, nsName string, mac net.HardwareAddr, exists bool) error {
	if exists {
		return nil
	}
	p, err := netlink.LinkByName(parent)
	if err != nil {
		return fmt.Errorf("macvlan %s: parent %s: %w", name, parent, err)
	}
	fd, err := unix.Open(netns.Path(nsName), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("macvlan %s: netns %s: %w", name, nsName, err)
	}
	defer unix.Close(fd)
	mv := &netlink.Macvlan{
		LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: p.Attrs().Index, MTU: p.Attrs().MTU,
			HardwareAddr: mac, Namespace: netlink.NsFd(fd)},
		Mode: netlink.MACVLAN_MODE_BRIDGE,
	}
	if err := netlink.LinkAdd(mv); err != nil {
		return fmt.Errorf("macvlan %s on %s into %s: %w", name, parent, nsName, err)
	}
	return nil
}

// linkExistsIn reports whether link name exists in namespace ns.
func linkExistsIn(ns, name string) (bool, error) {
	var ok bool
	err := netns.Do(ns, func() error {
		l, err := linkByName(name)
		ok = l != nil
		return err
	})
	return ok, err
}

// ensureAddrs adds the addresses to link (AddrReplace keeps it idempotent).
// When exclusive4 is set, IPv4 addresses not in addrs are removed.
func ensureAddrs(link netlink.Link, addrs []netip.Prefix, exclusive4 bool) error {
	want := map[string]bool{}
	for _, a := range addrs {
		want[a.String()] = true
		ad := &netlink.Addr{IPNet: &net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())}}
		if a.Addr().Is6() {
			ad.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrReplace(link, ad); err != nil {
			return fmt.Errorf("address %s on %s: %w", a, link.Attrs().Name, err)
		}
	}
	if exclusive4 {
		have, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			return fmt.Errorf("addresses of %s: %w", link.Attrs().Name, err)
		}
		for _, h := range have {
			ones, _ := h.Mask.Size()
			a, ok := netip.AddrFromSlice(h.IP.To4())
			if !ok || want[netip.PrefixFrom(a, ones).String()] {
				continue
			}
			if err := netlink.AddrDel(link, &h); err != nil {
				return fmt.Errorf("remove %s from %s: %w", h.IPNet, link.Attrs().Name, err)
			}
		}
	}
	return nil
}

// replaceRoute installs dst via gw (or directly on link when gw is not
// valid).
func replaceRoute(link netlink.Link, dst netip.Prefix, gw netip.Addr) error {
	r := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(dst.Bits(), dst.Addr().BitLen())}}
	if gw.IsValid() {
		r.Gw = gw.AsSlice()
	} else {
		r.Scope = netlink.SCOPE_LINK
	}
	if err := netlink.RouteReplace(r); err != nil {
		return fmt.Errorf("route %s via %v dev %s: %w", dst, gw, link.Attrs().Name, err)
	}
	return nil
}

// addrsOf lists the addresses of a link by name in the current namespace.
func addrsOf(name string) ([]netlink.Addr, error) {
	l, err := linkByName(name)
	if err != nil {
		return nil, err
	}
	if l == nil {
		return nil, fmt.Errorf("interface %s: %w", name, ErrUnknownInterface)
	}
	as, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", name, err)
	}
	return as, nil
}

type (
	netipPrefix = netip.Prefix
	netipAddr   = netip.Addr
)

// openNS opens a namespace handle by name ("" = this process's).
func openNS(name string) (vnetns.NsHandle, error) {
	return vnetns.GetFromPath(netns.Path(name))
}
