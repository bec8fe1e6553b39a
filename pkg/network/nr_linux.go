package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/zos-go/zos/internal/netns"
	"github.com/zos-go/zos/pkg"
)

// createNR validates nr, then creates or updates it (spec §5). The resource
// is stored before the kernel objects are made, so a crash part-way is
// completed by the next start's reconcile; a failure undoes a new resource
// entirely and puts an updated one's previous version back in the store.
func (m *Module) createNR(ctx context.Context, nr pkg.NetResource) (string, error) {
	if err := CheckNetResource(nr, m.cfg.ReservedPorts...); err != nil {
		return "", err
	}
	key, err := PrivateKey(m.id, nr)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var stored *pkg.NetResource
	if old, err := m.store.Get(nr.NetID); err == nil {
		stored = &old
	} else if !errors.Is(err, ErrUnknownNetwork) {
		return "", err
	}
	if err := CheckUpdate(nr, stored, m.ports); err != nil {
		return "", err
	}
	if err := m.store.Put(nr); err != nil {
		return "", err
	}
	if err := m.applyNRLocked(ctx, nr, key); err != nil {
		cleanup := context.WithoutCancel(ctx)
		if stored == nil {
			if derr := m.deleteNRLocked(cleanup, nr.NetID); derr != nil {
				m.log.ErrorContext(ctx, "undo network resource", "net_id", nr.NetID, "err", derr)
			}
		} else if perr := m.store.Put(*stored); perr != nil {
			m.log.ErrorContext(ctx, "restore network resource", "net_id", nr.NetID, "err", perr)
		}
		return "", fmt.Errorf("network %s: %w", nr.NetID, err)
	}
	if stored != nil && m.ports[stored.WGListenPort] == nr.NetID {
		delete(m.ports, stored.WGListenPort)
	}
	m.ports[nr.WGListenPort] = nr.NetID
	m.log.InfoContext(ctx, "network resource applied", "net_id", nr.NetID, "subnet", nr.Subnet.String(), "peers", len(nr.Peers))
	return m.names.nrNS(string(nr.NetID)), nil
}

// applyNRLocked converges the kernel objects of nr; every step is
// idempotent.
func (m *Module) applyNRLocked(ctx context.Context, nr pkg.NetResource, key wgtypes.Key) error {
	id := string(nr.NetID)
	ns := m.names.nrNS(id)
	info := infoOf(nr)
	gw4, _ := netip.AddrFromSlice(info.gw4.To4())
	gw6, _ := netip.AddrFromSlice(info.gw6)

	rng, _ := prefixOf(info.rng)

	// 1. bridge in the host namespace.
	if err := m.inHost(func() error { _, err := ensureBridge(nrBridge(id), false); return err }); err != nil {
		return err
	}
	// 2. namespace.
	if _, err := netns.Create(ns); err != nil {
		return err
	}
	// 3. the NR's inner macvlan and the ndmz uplink.
	lease, err := m.leases.Acquire(nr.NetID)
	if err != nil {
		return err
	}
	hasInner, err := linkExistsIn(ns, nrIface(id))
	if err != nil {
		return err
	}
	hasPublic, err := linkExistsIn(ns, nrPublicIface)
	if err != nil {
		return err
	}
	err = m.inHost(func() error {
		if err := macvlanInto(nrBridge(id), nrIface(id), ns, nil, hasInner); err != nil {
			return err
		}
		return macvlanInto(m.cfg.NDMZBridge, nrPublicIface, ns, nil, hasPublic)
	})
	if err != nil {
		return err
	}
	err = netns.Do(ns, func() error {
		for k, v := range map[string]string{
			"net/ipv4/ip_forward":          "1",
			"net/ipv6/conf/all/forwarding": "1",
		} {
			if err := setSysctl(k, v); err != nil {
				return err
			}
		}
		inner, err := netlink.LinkByName(nrIface(id))
		if err != nil {
			return err
		}
		if err := ensureAddrs(inner, []netip.Prefix{netip.PrefixFrom(gw4, 24), netip.PrefixFrom(gw6, 64), ndmzLL}, true); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(inner); err != nil {
			return fmt.Errorf("%s up: %w", nrIface(id), err)
		}
		pub, err := netlink.LinkByName(nrPublicIface)
		if err != nil {
			return err
		}
		if err := ensureAddrs(pub, []netip.Prefix{netip.PrefixFrom(lease, 16), ndmz6Of(lease)}, true); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(pub); err != nil {
			return fmt.Errorf("public up: %w", err)
		}
		if err := replaceRoute(pub, netip.MustParsePrefix("0.0.0.0/0"), ndmzGW4); err != nil {
			return err
		}
		if err := replaceRoute(pub, netip.MustParsePrefix("::/0"), ndmzGW6); err != nil {
			return err
		}
		// 4. firewall.
		return nrRuleset().apply(ctx)
	})
	if err != nil {
		return err
	}
	// 5. WireGuard.
	peers, err := peersOf(nr)
	if err != nil {
		return err
	}
	return m.wg.Ensure(ctx, wgSpec{
		netID:  nr.NetID,
		nrNS:   ns,
		sockNS: m.sockNS(),
		key:    key,
		port:   int(nr.WGListenPort),
		peers:  peers,
		addr:   wgAddrOf(info.subnet),
		route:  rng,
	})
}

// deleteNRLocked removes a network resource and forgets it.
func (m *Module) deleteNRLocked(ctx context.Context, id pkg.NetID) error {
	nr, err := m.store.Get(id)
	if err == nil && m.ports[nr.WGListenPort] == id {
		delete(m.ports, nr.WGListenPort)
	}
	if err := m.removeNRLocked(ctx, id); err != nil {
		return err
	}
	m.log.InfoContext(ctx, "network resource deleted", "net_id", id)
	return nil
}

// removeNRLocked removes everything of network id: device process and
// files, taps (the seed's and the VMs'), bridge, namespace, lease, stored
// file.
func (m *Module) removeNRLocked(ctx context.Context, id pkg.NetID) error {
	var errs []error
	errs = append(errs, m.removeVMTapsLocked(id))
	if m.wg != nil {
		errs = append(errs, m.wg.Remove(ctx, id))
	}
	errs = append(errs, m.inHost(func() error {
		return errors.Join(deleteLink(tapIface(string(id))), deleteLink(nrBridge(string(id))))
	}))
	errs = append(errs, netns.Delete(m.names.nrNS(string(id))))
	errs = append(errs, m.leases.Release(id))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("network %s: delete: %w", id, err)
	}
	return m.store.Delete(id)
}
