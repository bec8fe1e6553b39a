package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/internal/netns"
	"github.com/zos-go/zos/internal/revert"
	"github.com/zos-go/zos/pkg"
)

// join attaches a container namespace to a network resource (spec §6).
func (m *Module) join(ctx context.Context, id pkg.NetID, containerID string, cfg pkg.ContainerNetworkConfig) (pkg.Member, error) {
	nr, err := m.store.Get(id)
	if err != nil {
		return pkg.Member{}, err
	}
	ips, err := CheckJoin(nr, containerID, cfg)
	if err != nil {
		return pkg.Member{}, err
	}
	var yggSub netip.Prefix
	if cfg.YggdrasilIP {
		if m.cfg.Yggdrasil == nil {
			return pkg.Member{}, fmt.Errorf("container %s: %w", containerID, ErrNoYggdrasil)
		}
		if yggSub, err = m.yggSubnet(); err != nil {
			return pkg.Member{}, fmt.Errorf("container %s: %w", containerID, err)
		}
	}
	ipv4Only := m.ipv4Only()
	if cfg.PublicIP6 && ipv4Only {
		return pkg.Member{}, fmt.Errorf("container %s: %w", containerID, ErrIPv4Only)
	}
	ns := m.names.containerNS(containerID)
	// Join is an ensure: a member that is already there (the agent
	// re-ensuring its workloads after a restart) keeps its namespace and
	// veth, so the container's traffic is not interrupted; a namespace a
	// crash left without its interface is made again.
	exists := netns.Exists(ns)
	if exists && netns.Do(ns, func() error { _, err := netlink.LinkByName(containerIface); return err }) != nil {
		if err := netns.Delete(ns); err != nil {
			return pkg.Member{}, fmt.Errorf("container %s: stale namespace %s: %w", containerID, ns, err)
		}
		exists = false
	}
	if exists {
		// Only the same configuration re-ensures; another one needs Leave.
		var have []netip.Addr
		_ = netns.Do(ns, func() error {
			eth, err := netlink.LinkByName(containerIface)
			if err != nil {
				return err
			}
			list, err := netlink.AddrList(eth, netlink.FAMILY_V4)
			for _, a := range list {
				if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok {
					have = append(have, ip)
				}
			}
			return err
		})
		for _, ip := range ips {
			want, _ := netip.AddrFromSlice(ip.To4())
			if !slices.Contains(have, want) {
				return pkg.Member{}, fmt.Errorf("container %s: joined with %v, not %s: %w", containerID, have, want, ErrExists)
			}
		}
	}
	var undo revert.Stack
	defer undo.Unwind()
	if !exists {
		if _, err := netns.Create(ns); err != nil {
			return pkg.Member{}, err
		}
		undo.Push(func() { _ = netns.Delete(ns) })
	}

	info := infoOf(nr)
	gw4, _ := netip.AddrFromSlice(info.gw4.To4())
	var addrs []netip.Prefix
	for _, ip := range ips {
		a, _ := netip.AddrFromSlice(ip.To4())
		addrs = append(addrs, netip.PrefixFrom(a, 24))
	}
	member := pkg.Member{Namespace: ns, IPv4: ips[len(ips)-1]}
	withV6 := !ipv4Only && !cfg.PublicIP6
	if withV6 {
		v6 := Convert4to6(id, ips[0])
		a, _ := netip.AddrFromSlice(v6)
		addrs = append(addrs, netip.PrefixFrom(a, 64))
		member.IPv6 = v6
	}

	hostEnd := "veth" + randHex(5)
	err = m.inHost(func() error {
		if exists {
			return nil
		}
		br, err := netlink.LinkByName(nrBridge(string(id)))
		if err != nil {
			return fmt.Errorf("bridge of %s: %w", id, err)
		}
		fd, err := unix.Open(netns.Path(ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostEnd, MTU: bridgeMTU}, PeerName: containerIface, PeerNamespace: netlink.NsFd(fd)}
		if err := netlink.LinkAdd(veth); err != nil {
			return fmt.Errorf("veth %s: %w", hostEnd, err)
		}
		if err := setSysctl(fmt.Sprintf("net/ipv6/conf/%s/disable_ipv6", hostEnd), "1"); err != nil {
			return err
		}
		if err := netlink.LinkSetMaster(veth, br); err != nil {
			return fmt.Errorf("veth %s into %s: %w", hostEnd, br.Attrs().Name, err)
		}
		if err := netlink.LinkSetUp(veth); err != nil {
			return err
		}
		mac := HardwareAddrFromInputBytes([]byte(containerID))
		if cfg.PublicIP6 {
			if err := macvlanInto(m.cfg.PublicBridge, "pub", ns, mac, false); err != nil {
				return err
			}
		}
		if cfg.YggdrasilIP {
			return macvlanInto(m.cfg.PublicBridge, "ygg", ns, mac, false)
		}
		return nil
	})
	if err != nil {
		return pkg.Member{}, fmt.Errorf("container %s: %w", containerID, err)
	}
	err = netns.Do(ns, func() error {
		eth, err := netlink.LinkByName(containerIface)
		if err != nil {
			return err
		}
		if err := ensureAddrs(eth, addrs, false); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(eth); err != nil {
			return err
		}
		if err := replaceRoute(eth, netip.MustParsePrefix("0.0.0.0/0"), gw4); err != nil {
			return err
		}
		if withV6 {
			if err := replaceRoute(eth, netip.MustParsePrefix("::/0"), ndmzGW6); err != nil {
				return err
			}
		}
		if cfg.PublicIP6 {
			pub, err := netlink.LinkByName("pub")
			if err != nil {
				return err
			}
			if err := netlink.LinkSetUp(pub); err != nil {
				return err
			}
		}
		if cfg.YggdrasilIP {
			l, err := netlink.LinkByName("ygg")
			if err != nil {
				return err
			}
			a, err := addYgg(l, yggSub, HardwareAddrFromInputBytes([]byte(containerID)))
			if err != nil {
				return err
			}
			member.YggdrasilIP = a.Addr().AsSlice()
		}
		return nil
	})
	if err != nil {
		return pkg.Member{}, fmt.Errorf("container %s: %w", containerID, err)
	}
	undo.Done()
	m.log.InfoContext(ctx, "container joined", "net_id", id, "container", containerID, "ip", member.IPv4.String())
	return member, nil
}

// leave deletes the container namespace (its veth pair goes with it).
func (m *Module) leave(ctx context.Context, id pkg.NetID, containerID string) error {
	if err := checkResID(containerID, 64); err != nil {
		return fmt.Errorf("container %q: %w", containerID, err)
	}
	return netns.Delete(m.names.containerNS(containerID))
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:2*n]
}

// addTap creates a persistent TAP device on master in the host namespace.
func (m *Module) addTap(name, master string) error {
	return m.inHost(func() error {
		if l, err := linkByName(name); err != nil {
			return err
		} else if l != nil {
			return fmt.Errorf("tap %s: %w", name, ErrExists)
		}
		return newTap(name, master)
	})
}

// newTap creates the persistent TAP device name on the bridge master, in
// the current namespace; a failure removes it again.
func newTap(name, master string) error {
	br, err := netlink.LinkByName(master)
	if err != nil {
		return fmt.Errorf("tap %s: bridge %s: %w", name, master, err)
	}
	tap := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: bridgeMTU}, Mode: netlink.TUNTAP_MODE_TAP,
		Flags: netlink.TUNTAP_DEFAULTS}
	if err := netlink.LinkAdd(tap); err != nil {
		return fmt.Errorf("tap %s: %w", name, err)
	}
	l, err := netlink.LinkByName(name)
	if err == nil {
		err = attachTap(l, br)
	}
	if err != nil {
		_ = deleteLink(name)
		return err
	}
	return nil
}

// attachTap disables IPv6 on the tap l, enslaves it to the bridge br
// unless it is already, and brings it up.
func attachTap(l, br netlink.Link) error {
	name := l.Attrs().Name
	if err := setSysctl(fmt.Sprintf("net/ipv6/conf/%s/disable_ipv6", name), "1"); err != nil {
		return err
	}
	if l.Attrs().MasterIndex != br.Attrs().Index {
		if err := netlink.LinkSetMaster(l, br); err != nil {
			return fmt.Errorf("tap %s into %s: %w", name, br.Attrs().Name, err)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("tap %s up: %w", name, err)
	}
	return nil
}

// setupTap creates t-<netid> on the resource's bridge (spec §7).
func (m *Module) setupTap(ctx context.Context, id pkg.NetID) (string, error) {
	if _, err := m.store.Get(id); err != nil {
		return "", err
	}
	name := tapIface(string(id))
	if err := m.addTap(name, nrBridge(string(id))); err != nil {
		return "", err
	}
	return name, nil
}

// setupPubTap creates p-<res> on br-pub (spec §7).
func (m *Module) setupPubTap(ctx context.Context, res string) (string, error) {
	if err := CheckPubTapID(res); err != nil {
		return "", err
	}
	name := pubTapIface(res)
	if err := m.addTap(name, m.cfg.PublicBridge); err != nil {
		return "", err
	}
	return name, nil
}

// disconnectPubTap detaches the public tap from its bridge.
func (m *Module) disconnectPubTap(res string) error {
	return m.inHost(func() error {
		l, err := linkByName(pubTapIface(res))
		if err != nil || l == nil {
			return err
		}
		if err := netlink.LinkSetNoMaster(l); err != nil {
			return fmt.Errorf("tap %s: nomaster: %w", l.Attrs().Name, err)
		}
		return nil
	})
}

// zdbPrepare makes the 0-db namespace with zdb0 on br-pub (spec §9).
func (m *Module) zdbPrepare(ctx context.Context, hw net.HardwareAddr) (string, error) {
	if len(hw) != 6 {
		return "", fmt.Errorf("zdb: hardware address %q: %w", hw, ErrInvalidAddress)
	}
	ns := m.names.zdbNSPrefix() + strings.ReplaceAll(hw.String(), ":", "")
	created, err := netns.Create(ns)
	if err != nil {
		return "", err
	}
	var undo revert.Stack
	defer undo.Unwind()
	if created {
		undo.Push(func() { _ = netns.Delete(ns) })
	}
	exists, err := linkExistsIn(ns, zdbIface)
	if err != nil {
		return "", err
	}
	if err := m.inHost(func() error { return macvlanInto(m.cfg.PublicBridge, zdbIface, ns, hw, exists) }); err != nil {
		return "", err
	}
	var yggSub netip.Prefix
	if m.cfg.Yggdrasil != nil {
		if yggSub, err = m.yggSubnet(); err != nil {
			return "", fmt.Errorf("zdb %s: %w", ns, err)
		}
	}
	err = netns.Do(ns, func() error {
		l, err := netlink.LinkByName(zdbIface)
		if err != nil {
			return err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return err
		}
		if yggSub.IsValid() {
			_, err := addYgg(l, yggSub, hw)
			return err
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("zdb %s: %w", ns, err)
	}
	undo.Done()
	return ns, nil
}

// zdbDestroy deletes a namespace made by zdbPrepare.
func (m *Module) zdbDestroy(ctx context.Context, ns string) error {
	rest, ok := strings.CutPrefix(ns, m.names.zdbNSPrefix())
	if !ok || len(rest) != 12 {
		return fmt.Errorf("zdb namespace %q: %w", ns, ErrInvalidName)
	}
	return netns.Delete(ns)
}
