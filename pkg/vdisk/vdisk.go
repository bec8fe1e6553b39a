// Package vdisk is the node's VDiskModule: virtual disk files for VMs,
// kept in the vdisks volume of an SSD pool that the storage module
// provides (storage.VDiskArea).
//
// A vdisk is a raw file, neither partitioned nor formatted. Beyond the
// original, which reserved every block with fallocate, files are sparse
// and NOCOW (no copy-on-write, so VM writes do not fragment them); the
// storage module counts their apparent size against the pool all the
// same, so the space is never promised twice. Ids are checked (no path
// tricks), List covers every SSD pool (the original stopped after the
// first), and a size of zero or an absurd size is refused.
//
// Unit tests of other packages can run the real module on
// storagetest.Fake, which keeps its files in a temp dir and needs no root.
package vdisk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/storage"
)

// MiB is the unit of Allocate's size.
const MiB = 1 << 20

// Config configures the vdisk module.
type Config struct {
	// OpTimeout bounds each call (the seed's methods have no ctx).
	OpTimeout time.Duration
	// NoCOW sets the NOCOW attribute on new disk files (btrfs).
	NoCOW bool
}

// DefaultConfig returns the configuration of a real node.
func DefaultConfig() Config { return Config{OpTimeout: time.Minute, NoCOW: true} }

// ErrInvalidConfig is wrapped by Validate's errors.
var ErrInvalidConfig = errors.New("invalid vdisk config")

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.OpTimeout <= 0 {
		return fmt.Errorf("op timeout must be positive: %w", ErrInvalidConfig)
	}
	return nil
}

// Module implements pkg.VDiskModule. It is safe for concurrent use.
type Module struct {
	cfg  Config
	area storage.VDiskArea
	log  *slog.Logger
	mu   sync.Mutex // serializes allocations and removals
}

var _ pkg.VDiskModule = (*Module)(nil)

// New returns a vdisk module on the storage module's vdisk area.
func New(cfg Config, area storage.VDiskArea, log *slog.Logger) (*Module, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if area == nil || log == nil {
		return nil, fmt.Errorf("nil storage area or logger: %w", ErrInvalidConfig)
	}
	return &Module{cfg: cfg, area: area, log: log}, nil
}

func (m *Module) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), m.cfg.OpTimeout)
}

// find returns the path of disk id, or "" when it does not exist.
func (m *Module) find(ctx context.Context, id string) (string, os.FileInfo, error) {
	dirs, err := m.area.VDiskDirs(ctx)
	if err != nil {
		return "", nil, err
	}
	for _, dir := range dirs {
		path := filepath.Join(dir, id)
		info, err := os.Lstat(path)
		if err == nil && info.Mode().IsRegular() {
			return path, info, nil
		}
	}
	return "", nil, nil
}

// Allocate implements pkg.VDiskModule: a sparse (NOCOW) file of size MiB.
// An existing id gives its path and an error wrapping os.ErrExist; a bad
// id storage.ErrInvalidName; a zero or absurd size storage.ErrInvalidSize;
// no SSD room pkg.ErrNotEnoughSpace. Nothing is left behind on error.
func (m *Module) Allocate(id string, size int64) (string, error) {
	if err := storage.ValidateName(id); err != nil {
		return "", fmt.Errorf("vdisk %q: %w", id, err)
	}
	if size <= 0 || uint64(size) > storage.MaxSizeBytes/MiB {
		return "", fmt.Errorf("vdisk %q: %d MiB: %w", id, size, storage.ErrInvalidSize)
	}
	ctx, cancel := m.ctx()
	defer cancel()
	m.mu.Lock()
	defer m.mu.Unlock()
	if path, _, err := m.find(ctx, id); err != nil {
		return "", fmt.Errorf("vdisk %q: %w", id, err)
	} else if path != "" {
		return path, fmt.Errorf("vdisk %q: %w", id, storage.ErrExists)
	}
	bytes := uint64(size) * MiB
	var path string
	_, err := m.area.ReserveVDisk(ctx, bytes, func(dir string) error {
		path = filepath.Join(dir, id)
		return m.createFile(path, int64(bytes))
	})
	if err != nil {
		return "", fmt.Errorf("vdisk %q: %w", id, err)
	}
	m.log.InfoContext(ctx, "vdisk allocated", "vdisk", id, "path", path, "size_bytes", bytes)
	return path, nil
}

// createFile makes the sparse file; NOCOW must be set while it is empty.
func (m *Module) createFile(path string, size int64) (err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	if m.cfg.NoCOW {
		if err := setNoCOW(f); err != nil {
			return err
		}
	}
	if err := f.Truncate(size); err != nil {
		return err
	}
	return f.Sync()
}

// setNoCOW sets FS_NOCOW_FL; filesystems without the flag (tmpfs in unit
// tests) are left as they are.
func setNoCOW(f *os.File) error {
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("nocow %s: %w", f.Name(), err)
	}
	err = unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags|fsNoCOW))
	if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("nocow %s: %w", f.Name(), err)
	}
	return nil
}

// Deallocate implements pkg.VDiskModule; nil when the disk does not exist.
func (m *Module) Deallocate(id string) error {
	if err := storage.ValidateName(id); err != nil {
		return fmt.Errorf("vdisk %q: %w", id, err)
	}
	ctx, cancel := m.ctx()
	defer cancel()
	m.mu.Lock()
	defer m.mu.Unlock()
	dirs, err := m.area.VDiskDirs(ctx)
	if err != nil {
		return fmt.Errorf("vdisk %q: %w", id, err)
	}
	for _, dir := range dirs {
		if err := os.Remove(filepath.Join(dir, id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("vdisk %q: %w", id, err)
		}
	}
	m.log.InfoContext(ctx, "vdisk deallocated", "vdisk", id)
	return nil
}

// Exists implements pkg.VDiskModule.
func (m *Module) Exists(id string) bool {
	if storage.ValidateName(id) != nil {
		return false
	}
	ctx, cancel := m.ctx()
	defer cancel()
	path, _, err := m.find(ctx, id)
	return err == nil && path != ""
}

// Inspect implements pkg.VDiskModule: the path and apparent size in bytes;
// storage.ErrNotFound (wrapping os.ErrNotExist) when absent.
func (m *Module) Inspect(id string) (pkg.VDisk, error) {
	if err := storage.ValidateName(id); err != nil {
		return pkg.VDisk{}, fmt.Errorf("vdisk %q: %w", id, err)
	}
	ctx, cancel := m.ctx()
	defer cancel()
	path, info, err := m.find(ctx, id)
	if err != nil {
		return pkg.VDisk{}, fmt.Errorf("vdisk %q: %w", id, err)
	}
	if path == "" {
		return pkg.VDisk{}, fmt.Errorf("vdisk %q: %w", id, storage.ErrNotFound)
	}
	return pkg.VDisk{Path: path, Size: info.Size()}, nil
}

// List implements pkg.VDiskModule: the disks of every SSD pool, by name.
func (m *Module) List() ([]pkg.VDisk, error) {
	ctx, cancel := m.ctx()
	defer cancel()
	dirs, err := m.area.VDiskDirs(ctx)
	if err != nil {
		return nil, fmt.Errorf("vdisks: %w", err)
	}
	out := []pkg.VDisk{}
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("vdisks: %w", err)
		}
		for _, e := range entries {
			info, err := e.Info()
			if err != nil || !info.Mode().IsRegular() {
				continue
			}
			out = append(out, pkg.VDisk{Path: filepath.Join(dir, e.Name()), Size: info.Size()})
		}
	}
	slices.SortFunc(out, func(a, b pkg.VDisk) int {
		if c := cmpString(filepath.Base(a.Path), filepath.Base(b.Path)); c != 0 {
			return c
		}
		return cmpString(a.Path, b.Path)
	})
	return out, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// fsNoCOW is FS_NOCOW_FL of linux/fs.h (chattr +C).
const fsNoCOW = 0x00800000
