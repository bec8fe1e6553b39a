package network

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/zos-go/zos/internal/netns"
	"github.com/zos-go/zos/pkg"
)

// Run bootstraps the node, reconciles network resources with the store,
// marks the module ready and then serves the address watcher until ctx
// ends. It returns an error when bootstrapping fails; ctx's end is not an
// error.
func (m *Module) Run(ctx context.Context) error {
	if err := m.start(ctx); err != nil {
		return err
	}
	m.watchNodeAddrs(ctx)
	m.mu.Lock()
	m.ready = false
	m.mu.Unlock()
	return nil
}

// start does the blocking part of Run.
func (m *Module) start(ctx context.Context) error {
	if !netns.Exists(m.cfg.HostNS) && m.cfg.HostNS != "" {
		return fmt.Errorf("network: host namespace %s: %w", m.cfg.HostNS, netns.ErrNotExist)
	}
	var wg wgBackend
	switch m.cfg.WireGuard {
	case WGKernel:
		wg = kernelWG{}
	case WGUserspace:
		wg = &userspaceWG{cfg: m.cfg, names: m.names, sup: m.sup}
	default:
		if kernelHasWireGuard(m.cfg.NamePrefix) {
			wg = kernelWG{}
		} else {
			wg = &userspaceWG{cfg: m.cfg, names: m.names, sup: m.sup}
		}
	}
	m.mu.Lock()
	m.wg = wg
	m.runCtx = ctx
	m.mu.Unlock()
	m.log.InfoContext(ctx, "network bootstrap", "wireguard", wg.Name(), "host_ns", m.cfg.HostNS, "prefix", m.cfg.NamePrefix)
	if err := m.bootstrap(ctx); err != nil {
		return fmt.Errorf("network bootstrap: %w", err)
	}
	m.mu.Lock()
	err := m.reconcileLocked(ctx)
	if err == nil {
		m.ready = true
	}
	m.mu.Unlock()
	return err
}

// reconcileLocked re-applies every stored network resource and removes the
// namespaces, bridges, device processes, leases and VM taps of this node
// that no stored resource owns (left by a crash or a deletion during
// downtime).
func (m *Module) reconcileLocked(ctx context.Context) error {
	ids, err := m.store.List()
	if err != nil {
		return err
	}
	stored := map[pkg.NetID]bool{}
	for _, id := range ids {
		stored[id] = true
	}
	var errs []error
	// Orphans first, so their ports and names are free.
	nsPrefix := m.names.nrNS("")
	orphans := map[pkg.NetID]bool{}
	nss, err := netns.List(nsPrefix)
	errs = append(errs, err)
	for _, ns := range nss {
		id := pkg.NetID(strings.TrimPrefix(ns, nsPrefix))
		if !stored[id] {
			orphans[id] = true
		}
	}
	svcs, err := m.sup.List(ctx, m.names.wgService(""))
	errs = append(errs, err)
	for _, s := range svcs {
		id := pkg.NetID(strings.TrimPrefix(s, m.names.wgService("")))
		if !stored[id] {
			orphans[id] = true
		}
	}
	errs = append(errs, m.inHost(func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			if id, ok := strings.CutPrefix(l.Attrs().Name, "b-"); ok && l.Type() == "bridge" && !stored[pkg.NetID(id)] {
				orphans[pkg.NetID(id)] = true
			}
		}
		return nil
	}))
	for id := range orphans {
		m.log.WarnContext(ctx, "removing orphan network resource", "net_id", id)
		errs = append(errs, m.removeNRLocked(ctx, id))
	}
	held, err := m.leases.all()
	errs = append(errs, err)
	for _, owner := range held {
		if !stored[owner] {
			errs = append(errs, m.leases.Release(owner))
		}
	}
	for _, id := range ids {
		nr, err := m.store.Get(id)
		if err != nil {
			m.log.ErrorContext(ctx, "unreadable network resource", "net_id", id, "err", err)
			errs = append(errs, err)
			continue
		}
		key, err := PrivateKey(m.id, nr)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := m.applyNRLocked(ctx, nr, key); err != nil {
			m.log.ErrorContext(ctx, "reapply network resource", "net_id", id, "err", err)
			errs = append(errs, err)
			continue
		}
		m.ports[nr.WGListenPort] = nr.NetID
	}
	errs = append(errs, m.reconcileVMTapsLocked(ctx, stored))
	return errors.Join(errs...)
}

// Teardown deletes every network resource of the store and the node layout
// (ndmz, public, the bridges). Tests and the development grid use it to
// leave nothing behind; a real node never calls it. Run's context must be
// cancelled first or Teardown be called before Run.
func (m *Module) Teardown(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.wg == nil {
		m.wg = &userspaceWG{cfg: m.cfg, names: m.names, sup: m.sup}
	}
	ids, err := m.store.List()
	errs := []error{err}
	for _, id := range ids {
		errs = append(errs, m.deleteNRLocked(ctx, id))
	}
	errs = append(errs, m.teardownNode(ctx))
	return errors.Join(errs...)
}

// watchNodeAddrs keeps the ndmz's list of node addresses current: on every
// address event of the host namespace, and every SlowInterval, until ctx
// ends.
func (m *Module) watchNodeAddrs(ctx context.Context) {
	events := make(chan netlink.AddrUpdate, 64)
	h, err := openNS(m.cfg.HostNS)
	if err == nil {
		err = netlink.AddrSubscribeWithOptions(events, ctx.Done(), netlink.AddrSubscribeOptions{Namespace: &h})
		h.Close()
	}
	if err != nil {
		m.log.WarnContext(ctx, "host address events unavailable, polling", "err", err)
		events = nil
	}
	t := time.NewTicker(m.cfg.SlowInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
		case <-t.C:
		}
		if err := m.syncNodeAddrs(ctx); err != nil && ctx.Err() == nil {
			m.log.WarnContext(ctx, "update node addresses in ndmz", "err", err)
		}
	}
}
