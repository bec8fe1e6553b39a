package storagetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/storage"
)

// ResizeFilesystem implements storage.VolumeResizer. A volume's usage is
// the apparent size of its files.
func (f *Fake) ResizeFilesystem(_ context.Context, name string, size uint64) (pkg.Filesystem, error) {
	if err := storage.ValidateVolumeName(name); err != nil {
		return pkg.Filesystem{}, fmt.Errorf("volume %q: %w", name, err)
	}
	if err := storage.ValidateSize(size); err != nil {
		return pkg.Filesystem{}, fmt.Errorf("volume %q: %w", name, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, v := f.findLocked(name)
	if p == nil {
		return pkg.Filesystem{}, fmt.Errorf("volume %q: %w", name, storage.ErrNotFound)
	}
	if err := f.checkResizeLocked(p, v.size, size, duBytes(f.volPath(p, name))); err != nil {
		return pkg.Filesystem{}, fmt.Errorf("volume %q: %w", name, err)
	}
	v.size = size
	return f.fsLocked(p, name, v), nil
}

// checkResizeLocked refuses a change from old to size bytes of a
// reservation on p holding used bytes.
func (f *Fake) checkResizeLocked(p *fakePool, old, size, used uint64) error {
	switch {
	case size > old:
		if r := f.reservedLocked(p); r+(size-old) > p.SizeBytes {
			return fmt.Errorf("growing from %d to %d bytes: %w", old, size, pkg.ErrNotEnoughSpace{DeviceType: p.Type})
		}
	case size < old && used > size:
		return fmt.Errorf("holds %d bytes, cannot shrink to %d: %w", used, size, storage.ErrInUse)
	}
	return nil
}

// ResizeNamespace implements storage.ZDBReservations.
func (f *Fake) ResizeNamespace(_ context.Context, ns string, size uint64) error {
	if err := storage.ValidateName(ns); err != nil {
		return fmt.Errorf("namespace %q: %w", ns, err)
	}
	if err := storage.ValidateSize(size); err != nil {
		return fmt.Errorf("namespace %q: %w", ns, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, name, ok := f.findNSLocked(ns)
	if !ok {
		return fmt.Errorf("namespace %q: %w", ns, storage.ErrNotFound)
	}
	v := p.vols[name]
	old := v.ns[ns]
	if old == size {
		return nil
	}
	dir := filepath.Join(f.volPath(p, name), ns)
	descPath := filepath.Join(dir, storage.NamespaceFile)
	if err := f.checkResizeLocked(p, old, size, duBytes(dir)-fileSize(descPath)); err != nil {
		return fmt.Errorf("namespace %q: %w", ns, err)
	}
	b, err := os.ReadFile(descPath)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("namespace %q: descriptor gone: %w", ns, storage.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("namespace %q: %w", ns, err)
	}
	d, err := storage.DecodeNamespace(b)
	if err != nil {
		return fmt.Errorf("namespace %q: %w", ns, err)
	}
	d.MaxSizeBytes = size
	if b, err = storage.EncodeNamespace(d); err != nil {
		return fmt.Errorf("namespace %q: %w", ns, err)
	}
	if err := os.WriteFile(descPath, b, 0o644); err != nil {
		return fmt.Errorf("namespace %q: %w", ns, err)
	}
	v.ns[ns] = size
	v.size = v.size - old + size
	return nil
}

func fileSize(path string) uint64 {
	if info, err := os.Stat(path); err == nil {
		return uint64(info.Size())
	}
	return 0
}

// ReleaseNamespace implements storage.ZDBReservations.
func (f *Fake) ReleaseNamespace(_ context.Context, ns string) error {
	if err := storage.ValidateName(ns); err != nil {
		return fmt.Errorf("namespace %q: %w", ns, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, name, ok := f.findNSLocked(ns)
	if !ok {
		return nil
	}
	if err := os.RemoveAll(filepath.Join(f.volPath(p, name), ns)); err != nil {
		return fmt.Errorf("namespace %q: %w", ns, err)
	}
	v := p.vols[name]
	v.size -= v.ns[ns]
	delete(v.ns, ns)
	return nil
}
