package network

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/zos-go/zos/internal/revert"
	"github.com/zos-go/zos/pkg"
)

// SetupVMTap implements VMTaps: the tap VMTapName(id, vm) on the bridge of
// network id (which must exist on the node). The tap's record is written
// before the tap is made, so whatever a crash leaves is found again by
// SetupVMTap, RemoveVMTap, DeleteNR and the start-up reconcile. A failed
// call leaves nothing it made.
func (m *Module) SetupVMTap(id pkg.NetID, vm string) (string, error) {
	if err := CheckVMTap(id, vm); err != nil {
		return "", err
	}
	_, cancel, err := m.op()
	if err != nil {
		return "", err
	}
	defer cancel()
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.store.Get(id); err != nil {
		return "", err
	}
	name := VMTapName(id, vm)
	want := vmTapRecord{NetID: id, VM: vm}
	have, found, err := m.vmTaps.Get(name)
	if err != nil {
		return "", err
	}
	if found && have != want {
		// Two (network, vm) pairs with the same 60-bit hash.
		return "", fmt.Errorf("vm tap %s of %s/%s: taken by %s/%s: %w", name, id, vm, have.NetID, have.VM, ErrExists)
	}
	var undo revert.Stack
	defer undo.Unwind()
	if !found {
		if err := m.vmTaps.Put(want); err != nil {
			return "", err
		}
		undo.Push(func() { _ = m.vmTaps.Delete(name) })
	}
	err = m.inHost(func() error {
		l, err := linkByName(name)
		if err != nil {
			return err
		}
		if l == nil {
			return newTap(name, nrBridge(string(id)))
		}
		// Ours (the record says so), maybe half made by a crash.
		if t, ok := l.(*netlink.Tuntap); !ok || t.Mode != netlink.TUNTAP_MODE_TAP {
			return fmt.Errorf("vm tap %s: a %s link has that name: %w", name, l.Type(), ErrExists)
		}
		br, err := netlink.LinkByName(nrBridge(string(id)))
		if err != nil {
			return fmt.Errorf("vm tap %s: bridge %s: %w", name, nrBridge(string(id)), err)
		}
		return attachTap(l, br)
	})
	if err != nil {
		return "", fmt.Errorf("vm tap of %s/%s: %w", id, vm, err)
	}
	undo.Done()
	return name, nil
}

// VMTapExists implements VMTaps.
func (m *Module) VMTapExists(id pkg.NetID, vm string) (bool, error) {
	if err := CheckVMTap(id, vm); err != nil {
		return false, err
	}
	_, cancel, err := m.op()
	if err != nil {
		return false, err
	}
	cancel()
	name := VMTapName(id, vm)
	if r, found, err := m.vmTaps.Get(name); err != nil {
		return false, err
	} else if found && r != (vmTapRecord{NetID: id, VM: vm}) {
		return false, nil
	}
	return linkExistsIn(m.cfg.HostNS, name)
}

// RemoveVMTap implements VMTaps.
func (m *Module) RemoveVMTap(id pkg.NetID, vm string) error {
	if err := CheckVMTap(id, vm); err != nil {
		return err
	}
	_, cancel, err := m.op()
	if err != nil {
		return err
	}
	defer cancel()
	m.mu.Lock()
	defer m.mu.Unlock()
	name := VMTapName(id, vm)
	if r, found, err := m.vmTaps.Get(name); err != nil {
		return err
	} else if found && r != (vmTapRecord{NetID: id, VM: vm}) {
		return nil // another VM's tap
	}
	if err := m.inHost(func() error { return deleteLink(name) }); err != nil {
		return fmt.Errorf("vm tap of %s/%s: %w", id, vm, err)
	}
	return m.vmTaps.Delete(name)
}

// removeVMTapsLocked removes the VM taps of network id: those recorded
// for it and any VM tap still on its bridge, then their records.
func (m *Module) removeVMTapsLocked(id pkg.NetID) error {
	recs, err := m.vmTaps.All()
	errs := []error{err}
	var mine []string
	for tap, r := range recs {
		if r.NetID == id {
			mine = append(mine, tap)
		}
	}
	err = m.inHost(func() error {
		var errs []error
		for _, tap := range mine {
			errs = append(errs, deleteLink(tap))
		}
		br, err := linkByName(nrBridge(string(id)))
		if err != nil || br == nil {
			return errors.Join(append(errs, err)...)
		}
		links, err := netlink.LinkList()
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("links: %w", err))...)
		}
		for _, l := range links {
			if strings.HasPrefix(l.Attrs().Name, vmTapPrefix) && l.Attrs().MasterIndex == br.Attrs().Index {
				errs = append(errs, deleteLink(l.Attrs().Name))
			}
		}
		return errors.Join(errs...)
	})
	if err != nil {
		// Keep the records: the next DeleteNR or reconcile tries again.
		return errors.Join(append(errs, err)...)
	}
	for _, tap := range mine {
		errs = append(errs, m.vmTaps.Delete(tap))
	}
	return errors.Join(errs...)
}

// reconcileVMTapsLocked, at start, removes the VM taps (and records) of
// networks that are not stored, and VM taps without a record; it attaches
// the recorded taps that exist to their network's bridge and brings them
// up (repairing a crash in the middle of SetupVMTap). Missing taps are
// left to their VM's next SetupVMTap.
func (m *Module) reconcileVMTapsLocked(ctx context.Context, stored map[pkg.NetID]bool) error {
	recs, err := m.vmTaps.All()
	errs := []error{err}
	var gone []string
	err = m.inHost(func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return fmt.Errorf("links: %w", err)
		}
		var errs []error
		for _, l := range links {
			name := l.Attrs().Name
			if !strings.HasPrefix(name, vmTapPrefix) {
				continue
			}
			r, ok := recs[name]
			if _, tap := l.(*netlink.Tuntap); !tap {
				continue // not ours
			}
			if !ok || !stored[r.NetID] {
				m.log.WarnContext(ctx, "removing orphan vm tap", "tap", name, "net_id", r.NetID, "vm", r.VM)
				errs = append(errs, deleteLink(name))
				continue
			}
			br, err := netlink.LinkByName(nrBridge(string(r.NetID)))
			if err != nil {
				errs = append(errs, fmt.Errorf("vm tap %s: bridge: %w", name, err))
				continue
			}
			errs = append(errs, attachTap(l, br))
		}
		return errors.Join(errs...)
	})
	errs = append(errs, err)
	for tap, r := range recs {
		if !stored[r.NetID] {
			gone = append(gone, tap)
		}
	}
	if err == nil {
		for _, tap := range gone {
			errs = append(errs, m.vmTaps.Delete(tap))
		}
	}
	return errors.Join(errs...)
}
