package storage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/internal/btrfs"
)

// Snapshots live at <pool>/.snapshots/<volume>/<snapshot>: read-only
// subvolumes, not top-level, so they are never listed as volumes.

func (m *Module) snapArgsLocked(volume, snapshot string) (*pool, *volume, error) {
	if err := ValidateName(volume); err != nil {
		return nil, nil, fmt.Errorf("volume %q: %w", volume, err)
	}
	if err := ValidateName(snapshot); err != nil {
		return nil, nil, fmt.Errorf("snapshot %q: %w", snapshot, err)
	}
	if err := m.checkOpen(); err != nil {
		return nil, nil, err
	}
	p, v := m.findLocked(volume)
	if p == nil {
		return nil, nil, fmt.Errorf("volume %q: %w", volume, ErrNotFound)
	}
	return p, v, nil
}

func snapshotOf(p *pool, volume, name string) (Snapshot, error) {
	path := filepath.Join(p.mnt, snapshotsDir, volume, name)
	id, err := btrfs.SubvolumeID(path)
	if err != nil {
		return Snapshot{}, err
	}
	if id == btrfs.TopLevelID {
		return Snapshot{}, fmt.Errorf("snapshot %q of %q: %w", name, volume, ErrNotFound)
	}
	return Snapshot{Volume: volume, Name: name, ID: int(id), Path: path}, nil
}

// SnapshotVolume implements Snapshotter: a read-only btrfs snapshot.
func (m *Module) SnapshotVolume(ctx context.Context, volume, snapshot string) (Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, _, err := m.snapArgsLocked(volume, snapshot)
	if err != nil {
		return Snapshot{}, err
	}
	if s, err := snapshotOf(p, volume, snapshot); err == nil {
		return s, nil
	}
	dir := filepath.Join(p.mnt, snapshotsDir, volume)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Snapshot{}, fmt.Errorf("snapshot %q of %q: %w", snapshot, volume, err)
	}
	if err := btrfs.Snapshot(filepath.Join(p.mnt, volume), dir, snapshot, true); err != nil {
		return Snapshot{}, fmt.Errorf("snapshot %q of %q: %w", snapshot, volume, err)
	}
	m.log.InfoContext(ctx, "snapshot taken", "volume", volume, "snapshot", snapshot, "pool", p.label)
	return snapshotOf(p, volume, snapshot)
}

// Snapshots implements Snapshotter.
func (m *Module) Snapshots(ctx context.Context, volume string) ([]Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, _, err := m.snapArgsLocked(volume, "x")
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Join(p.mnt, snapshotsDir, volume))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("snapshots of %q: %w", volume, err)
	}
	out := []Snapshot{}
	for _, e := range entries {
		if s, err := snapshotOf(p, volume, e.Name()); err == nil {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b Snapshot) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// RestoreSnapshot implements Snapshotter: a writable snapshot of the
// snapshot gets the volume's limit and is swapped with the volume in one
// atomic rename; the old content is then deleted. A crash leaves either
// the old or the new content under the volume's name, and a hidden
// leftover that the next adoption removes.
func (m *Module) RestoreSnapshot(ctx context.Context, volume, snapshot string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, v, err := m.snapArgsLocked(volume, snapshot)
	if err != nil {
		return err
	}
	snap, err := snapshotOf(p, volume, snapshot)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("snapshot %q of %q: %w", snapshot, volume, ErrNotFound)
		}
		return fmt.Errorf("snapshot %q of %q: %w", snapshot, volume, err)
	}
	tmp := restorePrefix + randHex(8)
	tmpPath := filepath.Join(p.mnt, tmp)
	fail := func(err error) error {
		_ = btrfs.DeleteSubvolume(p.mnt, tmp)
		return fmt.Errorf("restore %q of %q: %w", snapshot, volume, err)
	}
	if err := btrfs.Snapshot(snap.Path, p.mnt, tmp, false); err != nil {
		return fail(err)
	}
	id, err := btrfs.SubvolumeID(tmpPath)
	if err != nil {
		return fail(err)
	}
	if v.limit != 0 {
		if err := btrfs.QgroupLimit(p.mnt, id, v.limit); err != nil {
			return fail(err)
		}
	}
	if err := unix.Renameat2(unix.AT_FDCWD, tmpPath, unix.AT_FDCWD, filepath.Join(p.mnt, volume), unix.RENAME_EXCHANGE); err != nil {
		return fail(err)
	}
	oldID := v.id
	v.id = id
	// tmp now holds the old content
	if err := btrfs.DeleteSubvolume(p.mnt, tmp); err != nil {
		m.log.WarnContext(ctx, "old content of a restored volume left for the next scan", "volume", volume, "err", err)
	}
	_ = btrfs.QgroupDestroy(p.mnt, oldID)
	m.log.InfoContext(ctx, "snapshot restored", "volume", volume, "snapshot", snapshot, "pool", p.label)
	return nil
}

// DeleteSnapshot implements Snapshotter; nil when there is no such
// snapshot.
func (m *Module) DeleteSnapshot(ctx context.Context, volume, snapshot string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, _, err := m.snapArgsLocked(volume, snapshot)
	if err != nil {
		return err
	}
	snap, err := snapshotOf(p, volume, snapshot)
	if err != nil {
		return nil
	}
	if err := btrfs.DeleteSubvolume(filepath.Dir(snap.Path), snapshot); err != nil {
		return fmt.Errorf("snapshot %q of %q: %w", snapshot, volume, err)
	}
	_ = btrfs.QgroupDestroy(p.mnt, uint64(snap.ID))
	m.log.InfoContext(ctx, "snapshot deleted", "volume", volume, "snapshot", snapshot)
	return nil
}
