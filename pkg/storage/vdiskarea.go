package storage

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"

	"github.com/zos-go/zos/pkg"
)

// VDiskDirs implements VDiskArea: the vdisks directories of the healthy
// SSD pools.
func (m *Module) VDiskDirs(ctx context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkOpen(); err != nil {
		return nil, err
	}
	var out []string
	for _, label := range slices.Sorted(maps.Keys(m.pools)) {
		p := m.pools[label]
		if _, ok := p.vols[VDisksVolume]; ok && p.broken == nil && p.typ == pkg.SSDDevice {
			out = append(out, filepath.Join(p.mnt, VDisksVolume))
		}
	}
	return out, nil
}

// ReserveVDisk implements VDiskArea. The vdisks volume has no quota limit:
// the space of a vdisk is its file's apparent size, counted against the
// pool while the file exists.
func (m *Module) ReserveVDisk(ctx context.Context, size uint64, create func(dir string) error) (string, error) {
	if err := ValidateSize(size); err != nil {
		return "", fmt.Errorf("vdisk: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkOpen(); err != nil {
		return "", err
	}
	p, err := m.pickLocked(pkg.SSDDevice, size, func(p *pool) bool { _, ok := p.vols[VDisksVolume]; return ok })
	if err != nil {
		p, err = m.pickLocked(pkg.SSDDevice, size, nil)
	}
	if err != nil {
		return "", fmt.Errorf("vdisk of %d bytes: %w", size, err)
	}
	if _, ok := p.vols[VDisksVolume]; !ok {
		if _, err := m.createSubvolLocked(p, VDisksVolume, 0); err != nil {
			return "", fmt.Errorf("vdisk: %w", err)
		}
	}
	dir := filepath.Join(p.mnt, VDisksVolume)
	if err := create(dir); err != nil {
		return dir, err
	}
	return dir, nil
}
