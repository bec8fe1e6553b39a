package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"sigs.k8s.io/knftables"

	"github.com/zos-go/zos/internal/atomicfile"
	"github.com/zos-go/zos/internal/netns"
)

// inHost runs fn in the node's host namespace.
func (m *Module) inHost(fn func() error) error { return netns.Do(m.cfg.HostNS, fn) }

// sockNS is where WireGuard UDP sockets live: the public namespace when the
// node has a public config, else the host namespace.
func (m *Module) sockNS() string {
	if m.cfg.Public != nil {
		return m.names.publicNS()
	}
	return m.cfg.HostNS
}

// bootstrap builds the node layout (spec §4): zos, br-pub, public, ndmz. It
// is idempotent.
func (m *Module) bootstrap(ctx context.Context) error {
	if err := m.ensureZOS(); err != nil {
		return err
	}
	if err := m.ensurePublic(); err != nil {
		return err
	}
	if err := m.ensureNDMZ(ctx); err != nil {
		return err
	}
	if err := m.ensureYggdrasil(ctx); err != nil {
		return err
	}
	return m.syncNodeAddrs(ctx)
}

// ensureZOS makes the zos bridge, enslaves the configured uplink and applies
// the static address (the role of the boot daemon on a real node).
func (m *Module) ensureZOS() error {
	c := m.cfg
	return m.inHost(func() error {
		br, err := ensureBridge(c.ZOSBridge, true)
		if err != nil {
			return err
		}
		if c.Uplink != "" {
			up, err := netlink.LinkByName(c.Uplink)
			if err != nil {
				return fmt.Errorf("uplink %s: %w", c.Uplink, err)
			}
			if up.Attrs().MasterIndex != br.Attrs().Index {
				if err := netlink.LinkSetMaster(up, br); err != nil {
					return fmt.Errorf("uplink %s into %s: %w", c.Uplink, c.ZOSBridge, err)
				}
			}
			if err := setSysctl(fmt.Sprintf("net/ipv6/conf/%s/disable_ipv6", c.Uplink), "1"); err != nil {
				return err
			}
			if err := netlink.LinkSetUp(up); err != nil {
				return fmt.Errorf("uplink %s up: %w", c.Uplink, err)
			}
		}
		if c.ZOSAddress.IsValid() {
			if err := ensureAddrs(br, []netip.Prefix{c.ZOSAddress}, false); err != nil {
				return err
			}
			if c.ZOSGateway.IsValid() {
				if err := replaceRoute(br, netip.MustParsePrefix("0.0.0.0/0"), c.ZOSGateway); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// ensurePublic makes br-pub, gives it its exit port when it has none, and
// the public namespace when the node has a public config (spec §4.1).
func (m *Module) ensurePublic() error {
	c := m.cfg
	err := m.inHost(func() error {
		pub, err := ensureBridge(c.PublicBridge, false)
		if err != nil {
			return err
		}
		if err := setSysctl(fmt.Sprintf("net/ipv6/conf/%s/accept_ra", c.PublicBridge), "0"); err != nil {
			return err
		}
		ports, err := bridgePorts(pub)
		if err != nil || len(ports) > 0 {
			return err
		}
		if c.Public != nil && c.Public.Master != "" {
			l, err := netlink.LinkByName(c.Public.Master)
			if err != nil {
				return fmt.Errorf("public master %s: %w", c.Public.Master, err)
			}
			if err := netlink.LinkSetMaster(l, pub); err != nil {
				return fmt.Errorf("public master %s: %w", c.Public.Master, err)
			}
			return netlink.LinkSetUp(l)
		}
		// Join br-pub to zos with a veth pair.
		zos, err := netlink.LinkByName(c.ZOSBridge)
		if err != nil {
			return fmt.Errorf("bridge %s: %w", c.ZOSBridge, err)
		}
		_ = deleteLink("tozos")
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "tozos", MTU: bridgeMTU, MasterIndex: zos.Attrs().Index}, PeerName: "tozos-pub"}
		if err := netlink.LinkAdd(veth); err != nil {
			return fmt.Errorf("veth tozos: %w", err)
		}
		peer, err := netlink.LinkByName("tozos-pub")
		if err != nil {
			return fmt.Errorf("veth tozos-pub: %w", err)
		}
		for _, n := range []string{"tozos", "tozos-pub"} {
			if err := setSysctl(fmt.Sprintf("net/ipv6/conf/%s/disable_ipv6", n), "1"); err != nil {
				return err
			}
		}
		if err := netlink.LinkSetMaster(peer, pub); err != nil {
			return fmt.Errorf("veth tozos-pub: %w", err)
		}
		if err := netlink.LinkSetUp(peer); err != nil {
			return err
		}
		return netlink.LinkSetUp(veth)
	})
	if err != nil || c.Public == nil {
		return err
	}
	ns := m.names.publicNS()
	if _, err := netns.Create(ns); err != nil {
		return err
	}
	exists, err := linkExistsIn(ns, publicIface)
	if err != nil {
		return err
	}
	mac := HardwareAddrFromInputBytes([]byte(c.NodeID + "-public"))
	if err := m.inHost(func() error { return macvlanInto(c.PublicBridge, publicIface, ns, mac, exists) }); err != nil {
		return err
	}
	return netns.Do(ns, func() error {
		l, err := netlink.LinkByName(publicIface)
		if err != nil {
			return err
		}
		if err := setSysctl("net/ipv6/conf/public/accept_ra", "2"); err != nil {
			return err
		}
		addrs := []netip.Prefix{c.Public.IPv4}
		if c.Public.IPv6.IsValid() {
			addrs = append(addrs, c.Public.IPv6)
		}
		if err := ensureAddrs(l, addrs, true); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return err
		}
		if err := replaceRoute(l, netip.MustParsePrefix("0.0.0.0/0"), c.Public.GW4); err != nil {
			return err
		}
		if c.Public.IPv6.IsValid() {
			return replaceRoute(l, netip.MustParsePrefix("::/0"), c.Public.GW6)
		}
		return nil
	})
}

// bridgePorts lists the links enslaved to br.
func bridgePorts(br netlink.Link) ([]string, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("links: %w", err)
	}
	var out []string
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			out = append(out, l.Attrs().Name)
		}
	}
	return out, nil
}

// ensureNDMZ makes the ndmz namespace (spec §4.2).
func (m *Module) ensureNDMZ(ctx context.Context) error {
	c := m.cfg
	ns := m.names.ndmzNS()
	if _, err := netns.Create(ns); err != nil {
		return err
	}
	if err := m.inHost(func() error { _, err := ensureBridge(c.NDMZBridge, false); return err }); err != nil {
		return err
	}
	have := map[string]bool{}
	for _, n := range []string{ndmzBridgeIface, npub4Iface, npub6Iface} {
		ok, err := linkExistsIn(ns, n)
		if err != nil {
			return err
		}
		have[n] = ok
	}
	err := m.inHost(func() error {
		if err := macvlanInto(c.NDMZBridge, ndmzBridgeIface, ns, nil, have[ndmzBridgeIface]); err != nil {
			return err
		}
		if err := macvlanInto(c.PublicBridge, npub6Iface, ns, HardwareAddrFromInputBytes([]byte(c.NodeID+"-ndmz6")), have[npub6Iface]); err != nil {
			return err
		}
		return macvlanInto(c.ZOSBridge, npub4Iface, ns, HardwareAddrFromInputBytes([]byte(c.NodeID+"-ndmz4")), have[npub4Iface])
	})
	if err != nil {
		return err
	}
	err = netns.Do(ns, func() error {
		for k, v := range map[string]string{
			"net/ipv4/ip_forward":                       "1",
			"net/ipv6/conf/all/forwarding":              "1",
			"net/ipv6/conf/npub6/accept_ra":             "2",
			"net/ipv6/conf/npub6/accept_ra_defrtr":      "1",
			"net/ipv4/conf/npub6/proxy_arp":             "0",
			"net/ipv6/conf/npub4/disable_ipv6":          "1",
			"net/ipv6/conf/tonrs/disable_ipv6":          "0",
			"net/ipv4/conf/all/rp_filter":               "0",
			"net/ipv4/conf/default/rp_filter":           "0",
			"net/ipv6/conf/" + npub6Iface + "/autoconf": "1",
		} {
			if err := setSysctl(k, v); err != nil {
				return err
			}
		}
		ton, err := netlink.LinkByName(ndmzBridgeIface)
		if err != nil {
			return err
		}
		if err := ensureAddrs(ton, []netip.Prefix{ndmzTon4, ndmzLL, ndmzULA}, true); err != nil {
			return err
		}
		for _, n := range []string{ndmzBridgeIface, npub6Iface, npub4Iface} {
			l, err := netlink.LinkByName(n)
			if err != nil {
				return err
			}
			if err := netlink.LinkSetUp(l); err != nil {
				return fmt.Errorf("%s up: %w", n, err)
			}
		}
		if c.NDMZ4Address.IsValid() {
			n4, err := netlink.LinkByName(npub4Iface)
			if err != nil {
				return err
			}
			if err := ensureAddrs(n4, []netip.Prefix{c.NDMZ4Address}, true); err != nil {
				return err
			}
			if c.NDMZ4Gateway.IsValid() {
				if err := replaceRoute(n4, netip.MustParsePrefix("0.0.0.0/0"), c.NDMZ4Gateway); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ndmz: %w", err)
	}
	if err := m.syncNodeAddrs(ctx); err != nil {
		return fmt.Errorf("ndmz: %w", err)
	}
	if !c.NDMZ4Address.IsValid() && c.DHCP {
		if err := m.startDHCP(ctx, ns, npub4Iface); err != nil {
			return fmt.Errorf("ndmz: %w", err)
		}
	}
	return nil
}

// teardownNode removes the node layout this module made (ndmz, public,
// bridges) — used by tests and by a node that leaves the development grid.
// Network resources must be deleted first.
func (m *Module) teardownNode(ctx context.Context) error {
	var errs []error
	if m.cfg.Yggdrasil != nil {
		errs = append(errs, m.sup.Stop(ctx, m.names.yggService()))
		if err := os.Remove(m.yggConfPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if !m.cfg.NDMZ4Address.IsValid() && m.cfg.DHCP {
		errs = append(errs, m.sup.Stop(ctx, m.names.dhcpService(npub4Iface)))
	}
	errs = append(errs, netns.Delete(m.names.ndmzNS()))
	if m.cfg.Public != nil {
		errs = append(errs, netns.Delete(m.names.publicNS()))
	}
	errs = append(errs, m.inHost(func() error {
		var errs []error
		if nft, err := knftables.New(knftables.BridgeFamily, nftTable, knftables.EmulateDestroy); err == nil {
			tx := nft.NewTransaction()
			tx.Destroy(&knftables.Table{})
			if err := nft.Run(ctx, tx); err != nil && !knftables.IsNotFound(err) {
				errs = append(errs, err)
			}
		}
		for _, n := range []string{m.cfg.NDMZBridge, "tozos", m.cfg.PublicBridge, m.cfg.ZOSBridge} {
			if err := deleteLink(n); err != nil && !errors.Is(err, unix.ENODEV) {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}))
	return errors.Join(errs...)
}

// nodeAddrs returns the node's own addresses: those of the zos bridge and
// the public namespace's static ones.
func (m *Module) nodeAddrs() ([]netip.Addr, error) {
	var out []netip.Addr
	err := m.inHost(func() error {
		as, err := addrsOf(m.cfg.ZOSBridge)
		if err != nil {
			return err
		}
		for _, a := range as {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap().IsGlobalUnicast() {
				out = append(out, ip.Unmap())
			}
		}
		return nil
	})
	if p := m.cfg.Public; p != nil {
		out = append(out, p.IPv4.Addr())
		if p.IPv6.IsValid() {
			out = append(out, p.IPv6.Addr())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out), err
}

// syncNodeAddrs re-applies the ndmz ruleset when the node's own addresses
// changed since the last time (always the first time).
func (m *Module) syncNodeAddrs(ctx context.Context) error {
	addrs, err := m.nodeAddrs()
	if err != nil {
		return err
	}
	m.nodeMu.Lock()
	defer m.nodeMu.Unlock()
	var ygg netip.Prefix
	if m.cfg.Yggdrasil != nil {
		ygg, _ = m.yggSubnet()
	}
	if m.nodeApplied && slices.Equal(addrs, m.nodeSeen) && ygg == m.yggSeen {
		return nil
	}
	if err := netns.Do(m.names.ndmzNS(), func() error { return ndmzRuleset(addrs, ygg).apply(ctx) }); err != nil {
		return err
	}
	m.nodeSeen, m.yggSeen, m.nodeApplied = addrs, ygg, true
	return nil
}

// dhcpScript is the udhcpc event script of the module: it only sets the
// address and default route of the interface it runs for (never the
// machine's resolv.conf, unlike distribution scripts).
const dhcpScript = `#!/bin/sh
case "$1" in
deconfig)
	ip -4 addr flush dev "$interface"
	ip link set "$interface" up
	;;
bound|renew)
	ip -4 addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" dev "$interface"
	for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
	;;
esac
exit 0
`

// startDHCP runs the supervised DHCP client of iface in namespace ns (spec
// §4.2 dhcp-npub4) and waits up to 30 s for its default route.
func (m *Module) startDHCP(ctx context.Context, ns, iface string) error {
	script := filepath.Join(m.cfg.StateDir, "udhcpc.script")
	if err := os.MkdirAll(m.cfg.StateDir, 0o700); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(script, []byte(dhcpScript), 0o755); err != nil {
		return err
	}
	argv := []string{"ip", "netns", "exec", ns, m.cfg.DHCPCommand, "-f", "-i", iface, "-t", "20", "-T", "1", "-s", script}
	if err := m.sup.Start(ctx, m.names.dhcpService(iface), argv); err != nil {
		return fmt.Errorf("dhcp %s: %w", iface, err)
	}
	err := waitFor(ctx, 30*time.Second, func() error {
		return netns.Do(ns, func() error {
			routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
			if err != nil {
				return err
			}
			for _, r := range routes {
				if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
					return nil
				}
			}
			return fmt.Errorf("no default route on %s", iface)
		})
	})
	if err != nil {
		return fmt.Errorf("dhcp %s: %w", iface, err)
	}
	return nil
}
