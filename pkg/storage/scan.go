package storage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/zos-go/zos/internal/btrfs"
	"github.com/zos-go/zos/internal/revert"
	"github.com/zos-go/zos/pkg"
)

// Run scans the devices every Config.ScanInterval until ctx ends (call
// Scan once before, so that the module is ready when Run starts). Scan
// errors are logged; Run returns nil when ctx ends. It never unmounts
// anything: workloads keep their volumes while the agent restarts.
func (m *Module) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.ScanInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := m.Scan(ctx); err != nil && !errors.Is(err, ErrClosed) {
				m.log.ErrorContext(ctx, "storage scan", "err", err)
			}
		}
	}
}

// Scan does one pass: probe the devices, adopt our pools (mounting them),
// create pools from free disks per the policy, mark pools whose mount
// disappeared as broken, remove stale qgroups and make sure the cache
// exists. Devices and pools that fail are reported (BrokenDevices,
// BrokenPools, ForeignDevices), not returned: the error is only for a scan
// that could not run at all.
func (m *Module) Scan(ctx context.Context) error {
	m.scanMu.Lock()
	defer m.scanMu.Unlock()
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return ErrClosed
	}
	mounts, err := readMounts()
	if err != nil {
		return err
	}
	m.checkPools(ctx, mounts)

	listed, missing := m.listDevices()
	mountedDevs := mountedDevices(mounts)
	m.mu.Lock()
	inPool := map[string]bool{}
	for _, p := range m.pools {
		for _, d := range p.devices {
			inPool[d] = true
		}
	}
	for path, err := range missing {
		if _, known := m.brokenDevices[path]; !known {
			m.log.ErrorContext(ctx, "device broken", "device", path, "err", err)
		}
		m.brokenDevices[path] = err
	}
	skip := map[string]bool{}
	for path := range listed {
		_, broken := m.brokenDevices[path]
		skip[path] = broken || inPool[path]
	}
	m.mu.Unlock()

	var members, free []device
	for _, path := range slices.Sorted(maps.Keys(listed)) {
		if skip[path] {
			continue
		}
		res, err := m.probeDevice(ctx, path, listed[path], mountedDevs)
		m.mu.Lock()
		switch {
		case err != nil:
			m.log.ErrorContext(ctx, "device broken", "device", path, "err", err)
			m.brokenDevices[path] = err
		case res.foreign != "":
			if _, known := m.foreign[path]; !known {
				m.log.WarnContext(ctx, "device with foreign content left alone", "device", path, "content", res.foreign)
			}
			m.foreign[path] = res.foreign
		case res.dev.sb != nil:
			members = append(members, res.dev)
		default:
			delete(m.foreign, path)
			free = append(free, res.dev)
		}
		m.mu.Unlock()
	}
	m.adoptPools(ctx, members, mounts)
	m.formPools(ctx, free, mounts)
	m.ensureCache(ctx)
	return nil
}

// checkPools mounts again the pools whose mount disappeared (an operator's
// umount, say): their volumes come back as they were. A pool that cannot
// be mounted again (a device gone, another filesystem on its mount point)
// is marked broken, and retried at every scan.
func (m *Module) checkPools(ctx context.Context, mounts []mountEntry) {
	targets := map[string]bool{}
	for _, me := range mounts {
		if me.fstype == "btrfs" {
			targets[me.target] = true
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for label, p := range m.pools {
		if targets[p.mnt] || (p.broken != nil && !p.lost) {
			continue
		}
		err := m.remountLocked(p, mounts)
		if err == nil {
			m.log.WarnContext(ctx, "pool mount disappeared: mounted again", "pool", label, "mount", p.mnt)
			p.broken, p.lost = nil, false
			delete(m.brokenPools, label)
			continue
		}
		if p.broken == nil {
			p.broken = fmt.Errorf("pool %s: mount %s disappeared and cannot be mounted again (%v): %w", label, p.mnt, err, ErrPoolBroken)
			p.lost = true
			m.brokenPools[label] = p.broken
			m.log.ErrorContext(ctx, "pool broken", "pool", label, "err", p.broken)
		}
	}
}

// remountLocked mounts pool p again at its mount point, if every device of
// it is still there and the filesystem found is p's.
func (m *Module) remountLocked(p *pool, mounts []mountEntry) error {
	for _, d := range p.devices {
		if _, err := os.Stat(d); err != nil {
			return err
		}
	}
	if _, err := m.mountPool(p.label, p.fsid, p.devices, mounts); err != nil {
		return err
	}
	info, err := btrfs.Info(p.mnt)
	if err == nil && info.FSID != p.fsid {
		err = fmt.Errorf("%s holds filesystem %x, not %x", p.mnt, info.FSID, p.fsid)
		_ = unmount(p.mnt)
	}
	if err != nil {
		return err
	}
	p.mounted = true
	return nil
}

// adoptPools mounts and loads our existing pools whose devices are all
// present.
func (m *Module) adoptPools(ctx context.Context, members []device, mounts []mountEntry) {
	byFS := map[[16]byte][]device{}
	for _, d := range members {
		byFS[d.sb.FSID] = append(byFS[d.sb.FSID], d)
	}
	for _, devs := range byFS {
		slices.SortFunc(devs, func(a, b device) int { return cmp.Compare(a.sb.DevID, b.sb.DevID) })
		sb := devs[0].sb
		label := sb.Label
		m.mu.Lock()
		_, known := m.pools[label]
		m.mu.Unlock()
		if known {
			continue
		}
		if uint64(len(devs)) != sb.NumDevices {
			err := fmt.Errorf("pool %s: %d of %d devices present: %w", label, len(devs), sb.NumDevices, ErrPoolBroken)
			m.setBrokenPool(ctx, label, err)
			continue
		}
		var paths []string
		for _, d := range devs {
			paths = append(paths, d.path)
		}
		mounted, err := m.mountPool(label, sb.FSID, paths, mounts)
		if err != nil {
			m.setBrokenPool(ctx, label, err)
			continue
		}
		p, err := m.openPool(ctx, label, paths, devs[0].typ, "")
		if err != nil {
			if mounted {
				_ = unmount(m.mountPoint(label))
			}
			m.setBrokenPool(ctx, label, err)
			continue
		}
		p.mounted = mounted
		m.mu.Lock()
		m.pools[label] = p
		delete(m.brokenPools, label)
		m.mu.Unlock()
		m.log.InfoContext(ctx, "pool adopted", "pool", label, "type", p.typ, "size_bytes", p.sizeBytes,
			"volumes", len(p.vols), "simple_quota", p.simple)
	}
}

func (m *Module) setBrokenPool(ctx context.Context, label string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, known := m.brokenPools[label]; !known {
		m.log.ErrorContext(ctx, "pool broken", "pool", label, "err", err)
	}
	m.brokenPools[label] = err
}

// formPools groups free disks into new pools per the policy: SSDs and HDDs
// apart, fastest first, at most MaxPools pools in all.
func (m *Module) formPools(ctx context.Context, free []device, mounts []mountEntry) {
	pol := m.cfg.Policy
	if pol.Raid == "" || len(free) == 0 {
		return
	}
	per := policyDisks(pol)
	for _, typ := range []pkg.DeviceType{pkg.SSDDevice, pkg.HDDDevice} {
		var group []device
		for _, d := range free {
			if d.typ == typ {
				group = append(group, d)
			}
		}
		slices.SortStableFunc(group, func(a, b device) int { return cmp.Compare(a.seek, b.seek) })
		for len(group) >= per {
			m.mu.Lock()
			n := len(m.pools)
			m.mu.Unlock()
			if pol.MaxPools != 0 && n >= int(pol.MaxPools) {
				return
			}
			m.createPool(ctx, group[:per], typ, mounts)
			group = group[per:]
		}
	}
}

// createPool makes, mounts and loads one new pool; a failure marks its
// devices broken and undoes the mount.
func (m *Module) createPool(ctx context.Context, devs []device, typ pkg.DeviceType, mounts []mountEntry) {
	label := m.newLabel()
	var paths []string
	for _, d := range devs {
		paths = append(paths, d.path)
	}
	fail := func(err error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, d := range paths {
			m.brokenDevices[d] = err
		}
		m.log.ErrorContext(ctx, "pool creation failed", "devices", paths, "err", err)
	}
	var undo revert.Stack
	defer undo.Unwind()
	if err := btrfs.Mkfs(ctx, label, string(m.cfg.Policy.Raid), paths...); err != nil {
		fail(err)
		return
	}
	if _, err := m.mountPool(label, [16]byte{}, paths, mounts); err != nil {
		fail(err)
		return
	}
	undo.Push(func() { _ = unmount(m.mountPoint(label)) })
	p, err := m.openPool(ctx, label, paths, typ, m.cfg.Policy.Raid)
	if err != nil {
		fail(err)
		return
	}
	p.mounted = true
	undo.Done()
	m.mu.Lock()
	m.pools[label] = p
	m.mu.Unlock()
	m.log.InfoContext(ctx, "pool created", "pool", label, "type", typ, "profile", m.cfg.Policy.Raid,
		"devices", paths, "size_bytes", p.sizeBytes, "simple_quota", p.simple)
}

// Close unmounts the cache mount and every pool of this module. A node
// agent that stops does not call it (workloads keep using the pools); it is
// for tests and for a node that gives its disks up. Methods called after
// Close return ErrClosed.
func (m *Module) Close(ctx context.Context) error {
	m.scanMu.Lock()
	defer m.scanMu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	var errs []error
	if err := m.releaseCacheLocked(); err != nil {
		errs = append(errs, err)
	}
	for label, p := range m.pools {
		if err := unmount(p.mnt); err != nil {
			errs = append(errs, err)
		}
		delete(m.pools, label)
	}
	return errors.Join(errs...)
}

// Total implements pkg.StorageModule: the usable bytes of the healthy
// pools of that type, as they are now.
func (m *Module) Total(kind pkg.DeviceType) (uint64, error) {
	if err := ValidateType(kind); err != nil {
		return 0, fmt.Errorf("total: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var sum uint64
	for _, p := range m.pools {
		if p.broken == nil && p.typ == kind {
			sum += p.sizeBytes
		}
	}
	return sum, nil
}

// BrokenPools implements pkg.StorageModule: pools that failed to mount or
// load, miss devices, or whose mount disappeared.
func (m *Module) BrokenPools() []pkg.BrokenPool {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []pkg.BrokenPool{}
	for _, label := range slices.Sorted(maps.Keys(m.brokenPools)) {
		out = append(out, pkg.BrokenPool{Label: label, Err: m.brokenPools[label]})
	}
	return out
}

// BrokenDevices implements pkg.StorageModule: devices that failed their
// probe, mkfs or mount, or that are listed but missing. They are never
// used.
func (m *Module) BrokenDevices() []pkg.BrokenDevice {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []pkg.BrokenDevice{}
	for _, path := range slices.Sorted(maps.Keys(m.brokenDevices)) {
		out = append(out, pkg.BrokenDevice{Path: path, Err: m.brokenDevices[path]})
	}
	return out
}

// ForeignDevices lists the devices left alone because of their content.
func (m *Module) ForeignDevices() []ForeignDevice {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []ForeignDevice{}
	for _, path := range slices.Sorted(maps.Keys(m.foreign)) {
		out = append(out, ForeignDevice{Path: path, Content: m.foreign[path]})
	}
	return out
}
