package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/internal/btrfs"
	"github.com/zos-go/zos/pkg"
)

// cacheState is where the cache filesystem lives.
type cacheState struct {
	ready    bool
	degraded bool   // tmpfs instead of a volume
	mount    string // bind or tmpfs mount point made by us, "" if none
}

// cacheDir is where the degraded-mode tmpfs goes.
func (m *Module) cacheDir() string {
	if m.cfg.CacheMount != "" {
		return m.cfg.CacheMount
	}
	return filepath.Join(m.cfg.Root, "cache")
}

// ensureCache makes sure the cache volume exists (reusing the first
// zos-cache found, else creating one on SSD, then HDD) with its limit,
// bind-mounted at CacheMount when set. When no pool can host it, a tmpfs
// is mounted instead and the module reports CacheDegraded. Once decided,
// later scans leave it as is (the degraded cache holds state already).
func (m *Module) ensureCache(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cache.ready || m.closed {
		return
	}
	size := m.cfg.CacheSizeBytes
	p, v := m.findLocked(CacheVolume)
	if p != nil && v.limit != size {
		if err := btrfs.QgroupLimit(p.mnt, v.id, size); err != nil {
			m.log.ErrorContext(ctx, "cache limit", "pool", p.label, "err", err)
		} else {
			p.reserved = p.reserved - v.limit + size
			v.limit = size
		}
	}
	if p == nil {
		for _, t := range []pkg.DeviceType{pkg.SSDDevice, pkg.HDDDevice} {
			cand, err := m.pickLocked(t, size, nil)
			if err != nil {
				continue
			}
			if _, err := m.createSubvolLocked(cand, CacheVolume, size); err != nil {
				m.log.ErrorContext(ctx, "cache volume", "pool", cand.label, "err", err)
				continue
			}
			p = cand
			break
		}
	}
	if p != nil {
		m.cache = cacheState{ready: true}
		if m.cfg.CacheMount != "" {
			if err := bindOnce(filepath.Join(p.mnt, CacheVolume), m.cfg.CacheMount); err != nil {
				m.log.ErrorContext(ctx, "cache bind mount", "err", err)
			} else {
				m.cache.mount = m.cfg.CacheMount
			}
		}
		m.log.InfoContext(ctx, "cache ready", "pool", p.label, "size_bytes", size)
		return
	}
	dir := m.cacheDir()
	m.cache = cacheState{ready: true, degraded: true}
	if err := tmpfsOnce(dir, m.cfg.CacheTmpfsBytes); err != nil {
		m.log.ErrorContext(ctx, "cache tmpfs", "dir", dir, "err", err)
		return
	}
	m.cache.mount = dir
	m.log.ErrorContext(ctx, "no pool can host the cache: running with a limited tmpfs cache",
		"dir", dir, "size_bytes", m.cfg.CacheTmpfsBytes)
}

// isMountPoint reports whether dir is a mount point.
func isMountPoint(dir string) bool {
	mounts, err := readMounts()
	if err != nil {
		return false
	}
	for _, me := range mounts {
		if me.target == dir {
			return true
		}
	}
	return false
}

func bindOnce(src, dst string) error {
	if isMountPoint(dst) {
		return nil
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", src, dst, err)
	}
	return nil
}

func tmpfsOnce(dir string, size uint64) error {
	if isMountPoint(dir) {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		return fmt.Errorf("tmpfs on %s: %w", dir, err)
	}
	return nil
}

// releaseCacheLocked unmounts the cache bind or tmpfs mount.
func (m *Module) releaseCacheLocked() error {
	if m.cache.mount == "" {
		return nil
	}
	err := unmount(m.cache.mount)
	m.cache = cacheState{}
	return err
}

// CacheDegraded reports whether the cache is a tmpfs because no pool could
// host the cache volume (the original's limited-cache flag).
func (m *Module) CacheDegraded() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cache.degraded
}

// GetCacheFS implements pkg.VolumeAllocater: the zos-cache volume, or in
// degraded mode the tmpfs (FsType "tmpfs").
func (m *Module) GetCacheFS() (pkg.Filesystem, error) {
	m.mu.Lock()
	degraded := m.cache.degraded
	m.mu.Unlock()
	if degraded {
		return pkg.Filesystem{Path: m.cacheDir(), Name: CacheVolume, FsType: "tmpfs",
			Usage: pkg.Usage{Size: m.cfg.CacheTmpfsBytes}}, nil
	}
	fs, err := m.Path(CacheVolume)
	if errors.Is(err, ErrNotFound) {
		return fs, fmt.Errorf("cache not ready (call Scan): %w", err)
	}
	return fs, err
}
