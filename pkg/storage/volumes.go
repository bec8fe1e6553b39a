package storage

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/internal/btrfs"
	"github.com/zos-go/zos/pkg"
)

// findLocked returns the healthy pool holding the top-level volume name.
func (m *Module) findLocked(name string) (*pool, *volume) {
	for _, label := range slices.Sorted(maps.Keys(m.pools)) {
		p := m.pools[label]
		if v, ok := p.vols[name]; ok && p.broken == nil {
			return p, v
		}
	}
	return nil, nil
}

// pickLocked returns the healthy pool of type t with the most room left
// after size more bytes, among those accept allows (nil: all), or
// pkg.ErrNotEnoughSpace.
func (m *Module) pickLocked(t pkg.DeviceType, size uint64, accept func(*pool) bool) (*pool, error) {
	var best *pool
	var bestFree uint64
	for _, label := range slices.Sorted(maps.Keys(m.pools)) {
		p := m.pools[label]
		if p.broken != nil || p.typ != t || (accept != nil && !accept(p)) {
			continue
		}
		free := p.free()
		if free < size {
			continue
		}
		if best == nil || free-size > bestFree {
			best, bestFree = p, free-size
		}
	}
	if best == nil {
		return nil, pkg.ErrNotEnoughSpace{DeviceType: t}
	}
	return best, nil
}

// createSubvolLocked creates the top-level subvolume name on p with the
// quota limit (0: none) and records it. With classic qgroups the limit is
// set in the creating transaction; with simple quotas (which ignore
// inherited limits) the subvolume is made under a hidden name, limited,
// then renamed into place, so no crash can leave it without its limit.
func (m *Module) createSubvolLocked(p *pool, name string, limit uint64) (*volume, error) {
	var id uint64
	var err error
	if limit == 0 || !p.simple {
		if err := btrfs.CreateSubvolume(p.mnt, name, limit); err != nil {
			return nil, err
		}
		if id, err = btrfs.SubvolumeID(filepath.Join(p.mnt, name)); err != nil {
			_ = btrfs.DeleteSubvolume(p.mnt, name)
			return nil, err
		}
	} else {
		tmp := newPrefix + randHex(8)
		if err := btrfs.CreateSubvolume(p.mnt, tmp, 0); err != nil {
			return nil, err
		}
		id, err = btrfs.SubvolumeID(filepath.Join(p.mnt, tmp))
		if err == nil {
			err = btrfs.QgroupLimit(p.mnt, id, limit)
		}
		if err == nil {
			err = unix.Renameat2(unix.AT_FDCWD, filepath.Join(p.mnt, tmp), unix.AT_FDCWD,
				filepath.Join(p.mnt, name), unix.RENAME_NOREPLACE)
		}
		if err != nil {
			_ = btrfs.DeleteSubvolume(p.mnt, tmp)
			return nil, err
		}
	}
	v := &volume{id: id, limit: limit}
	p.vols[name] = v
	p.reserved += limit
	return v, nil
}

// removeSubvolLocked deletes the top-level subvolume name of p, its
// snapshots and their qgroups. A qgroup the kernel still holds (EBUSY,
// subvolume not dropped yet) is removed by the kernel once dropped or by
// the next scan.
func (m *Module) removeSubvolLocked(p *pool, name string) error {
	v := p.vols[name]
	ids := []uint64{v.id}
	snapDir := filepath.Join(p.mnt, snapshotsDir, name)
	entries, err := os.ReadDir(snapDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		if id, err := btrfs.SubvolumeID(filepath.Join(snapDir, e.Name())); err == nil {
			ids = append(ids, id)
		}
		if err := btrfs.DeleteSubvolume(snapDir, e.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := os.Remove(snapDir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := btrfs.DeleteSubvolume(p.mnt, name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	delete(p.vols, name)
	p.reserved -= v.reservation()
	for _, id := range ids {
		_ = btrfs.QgroupDestroy(p.mnt, id)
	}
	return nil
}

// filesystemLocked describes a volume, with its usage when withUsage.
func (m *Module) filesystemLocked(p *pool, name string, v *volume, withUsage bool) pkg.Filesystem {
	fs := pkg.Filesystem{ID: int(v.id), Path: filepath.Join(p.mnt, name), Name: name, FsType: "btrfs",
		DiskType: p.typ, Usage: pkg.Usage{Size: v.reservation()}}
	if withUsage {
		if g, err := btrfs.QgroupOf(p.mnt, v.id); err == nil {
			fs.Usage.Used = g.ReferencedBytes
		}
	}
	return fs
}

func (m *Module) checkOpen() error {
	if m.closed {
		return ErrClosed
	}
	return nil
}

// CreateFilesystem implements pkg.VolumeAllocater: a subvolume with a quota
// limit of size bytes on the pool of type t with the most room. It is
// idempotent: the same name, size and type return the existing volume; the
// same name with another size or type gives ErrExists and changes nothing
// (a caller updating a volume's size then calls ResizeFilesystem; a type
// change needs a new volume). Bad input gives
// ErrInvalidName, ErrInvalidSize or pkg.ErrInvalidDeviceType and creates
// nothing; no room gives pkg.ErrNotEnoughSpace.
func (m *Module) CreateFilesystem(name string, size uint64, t pkg.DeviceType) (pkg.Filesystem, error) {
	if err := ValidateVolumeName(name); err != nil {
		return pkg.Filesystem{}, fmt.Errorf("volume %q: %w", name, err)
	}
	if err := ValidateType(t); err != nil {
		return pkg.Filesystem{}, fmt.Errorf("volume %q: %w", name, err)
	}
	if err := ValidateSize(size); err != nil {
		return pkg.Filesystem{}, fmt.Errorf("volume %q: %w", name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkOpen(); err != nil {
		return pkg.Filesystem{}, err
	}
	if p, v := m.findLocked(name); p != nil {
		if p.typ != t || v.limit != size {
			return pkg.Filesystem{}, fmt.Errorf("volume %q (%s, %d bytes): %w", name, p.typ, v.limit, ErrExists)
		}
		return m.filesystemLocked(p, name, v, true), nil
	}
	p, err := m.pickLocked(t, size, nil)
	if err != nil {
		return pkg.Filesystem{}, fmt.Errorf("volume %q of %d bytes: %w", name, size, err)
	}
	v, err := m.createSubvolLocked(p, name, size)
	if err != nil {
		return pkg.Filesystem{}, fmt.Errorf("volume %q: %w", name, err)
	}
	m.log.Debug("volume created", "volume", name, "pool", p.label, "size_bytes", size)
	return m.filesystemLocked(p, name, v, false), nil
}

// ResizeFilesystem implements VolumeResizer. The new limit is set on the
// volume's qgroup in one ioctl (simple quotas and classic qgroups alike)
// and committed before it returns; the pool's reservation is the sum of
// the limits, read back from the qgroups on adoption, so it follows. A
// shrink is checked against the volume's referenced bytes once the pool
// has committed its pending writes; writes racing with the call may still
// take the volume past the new limit, which then only refuses more.
func (m *Module) ResizeFilesystem(ctx context.Context, name string, size uint64) (pkg.Filesystem, error) {
	if err := ValidateVolumeName(name); err != nil {
		return pkg.Filesystem{}, fmt.Errorf("volume %q: %w", name, err)
	}
	if err := ValidateSize(size); err != nil {
		return pkg.Filesystem{}, fmt.Errorf("volume %q: %w", name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkOpen(); err != nil {
		return pkg.Filesystem{}, err
	}
	p, v := m.findLocked(name)
	if p == nil {
		return pkg.Filesystem{}, fmt.Errorf("volume %q: %w", name, ErrNotFound)
	}
	old := v.limit
	switch {
	case size == old:
		return m.filesystemLocked(p, name, v, true), nil
	case size > old:
		if free := p.free(); size-old > free {
			return pkg.Filesystem{}, fmt.Errorf("volume %q: growing from %d to %d bytes, %d free: %w",
				name, old, size, free, pkg.ErrNotEnoughSpace{DeviceType: p.typ})
		}
	default:
		if err := btrfs.Sync(p.mnt); err != nil {
			return pkg.Filesystem{}, fmt.Errorf("volume %q: %w", name, err)
		}
		g, err := btrfs.QgroupOf(p.mnt, v.id)
		if err != nil {
			return pkg.Filesystem{}, fmt.Errorf("volume %q: %w", name, err)
		}
		if g.ReferencedBytes > size {
			return pkg.Filesystem{}, fmt.Errorf("volume %q holds %d bytes, cannot shrink to %d: %w",
				name, g.ReferencedBytes, size, ErrInUse)
		}
	}
	if err := btrfs.QgroupLimit(p.mnt, v.id, size); err != nil {
		return pkg.Filesystem{}, fmt.Errorf("volume %q: %w", name, err)
	}
	if err := btrfs.Sync(p.mnt); err != nil {
		// not durable: put the old limit back (a crash now leaves either)
		if rerr := btrfs.QgroupLimit(p.mnt, v.id, old); rerr != nil {
			p.reserved = p.reserved - old + size
			v.limit = size
		}
		return pkg.Filesystem{}, fmt.Errorf("volume %q: %w", name, err)
	}
	p.reserved = p.reserved - old + size
	v.limit = size
	m.log.InfoContext(ctx, "volume resized", "volume", name, "pool", p.label, "old_size_bytes", old, "size_bytes", size)
	return m.filesystemLocked(p, name, v, true), nil
}

// ReleaseFilesystem implements pkg.VolumeAllocater: it removes the volume,
// its data, its snapshots and its qgroup, and gives its space back. nil
// when there is no such volume.
func (m *Module) ReleaseFilesystem(name string) error {
	if err := ValidateName(name); err != nil {
		return fmt.Errorf("volume %q: %w", name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkOpen(); err != nil {
		return err
	}
	p, _ := m.findLocked(name)
	if p == nil {
		return nil
	}
	if err := m.removeSubvolLocked(p, name); err != nil {
		return fmt.Errorf("volume %q: %w", name, err)
	}
	m.log.Debug("volume released", "volume", name, "pool", p.label)
	return nil
}

// ListFilesystems implements pkg.VolumeAllocater: every volume of every
// healthy pool, 0-db volumes included, the cache and vdisks volumes not.
func (m *Module) ListFilesystems() ([]pkg.Filesystem, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkOpen(); err != nil {
		return nil, err
	}
	out := []pkg.Filesystem{}
	for _, label := range slices.Sorted(maps.Keys(m.pools)) {
		p := m.pools[label]
		if p.broken != nil {
			continue
		}
		_, groups, err := btrfs.Quota(p.mnt)
		if err != nil {
			return nil, fmt.Errorf("pool %s: %w", label, err)
		}
		for _, name := range slices.Sorted(maps.Keys(p.vols)) {
			if name == CacheVolume || name == VDisksVolume {
				continue
			}
			v := p.vols[name]
			fs := m.filesystemLocked(p, name, v, false)
			if g := groups[v.id]; g != nil {
				fs.Usage.Used = g.ReferencedBytes
			}
			out = append(out, fs)
		}
	}
	return out, nil
}

// Path implements pkg.VolumeAllocater: the volume named name (special ones
// included), or ErrNotFound.
func (m *Module) Path(name string) (pkg.Filesystem, error) {
	if err := ValidateName(name); err != nil {
		return pkg.Filesystem{}, fmt.Errorf("volume %q: %w", name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkOpen(); err != nil {
		return pkg.Filesystem{}, err
	}
	p, v := m.findLocked(name)
	if p == nil {
		return pkg.Filesystem{}, fmt.Errorf("volume %q: %w", name, ErrNotFound)
	}
	return m.filesystemLocked(p, name, v, true), nil
}

// Sync commits the pools' pending changes, so that usage figures and the
// btrfs CLI see everything done so far.
func (m *Module) Sync(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, p := range m.pools {
		if p.broken == nil {
			errs = append(errs, btrfs.Sync(p.mnt))
		}
	}
	return errors.Join(errs...)
}
