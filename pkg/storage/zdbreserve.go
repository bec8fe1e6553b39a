package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/zos-go/zos/internal/atomicfile"
	"github.com/zos-go/zos/pkg"
)

// NamespaceReleasedFile is what the descriptor of a namespace being
// released is renamed to, before its directory is removed: a directory
// holding it is no reservation, and adoption finishes removing it.
const NamespaceReleasedFile = ".zos-released"

// namespaceBytes is the sum of the apparent sizes of the files of a
// namespace directory (index and data), its descriptor left out.
func namespaceBytes(dir string) (uint64, error) {
	var n uint64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || (filepath.Dir(path) == dir && d.Name() == NamespaceFile) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n += uint64(info.Size())
		return nil
	})
	return n, err
}

// ResizeNamespace implements ZDBReservations.
func (m *Module) ResizeNamespace(ctx context.Context, ns string, size uint64) error {
	if err := ValidateName(ns); err != nil {
		return fmt.Errorf("namespace %q: %w", ns, err)
	}
	if err := ValidateSize(size); err != nil {
		return fmt.Errorf("namespace %q: %w", ns, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkOpen(); err != nil {
		return err
	}
	p, name, v := m.findNSLocked(ns)
	if p == nil {
		return fmt.Errorf("namespace %q: %w", ns, ErrNotFound)
	}
	old := v.zdb.ns[ns]
	if size == old {
		return nil
	}
	dir := filepath.Join(p.mnt, name, ns)
	if size > old {
		if free := p.free(); size-old > free {
			return fmt.Errorf("namespace %q: growing from %d to %d bytes, %d free: %w",
				ns, old, size, free, pkg.ErrNotEnoughSpace{DeviceType: p.typ})
		}
	} else {
		used, err := namespaceBytes(dir)
		if err != nil {
			return fmt.Errorf("namespace %q: %w", ns, err)
		}
		if used > size {
			return fmt.Errorf("namespace %q holds %d bytes, cannot shrink to %d: %w", ns, used, size, ErrInUse)
		}
	}
	if err := rewriteDescriptor(filepath.Join(dir, NamespaceFile), size); err != nil {
		return fmt.Errorf("namespace %q: %w", ns, err)
	}
	v.zdb.ns[ns] = size
	p.reserved = p.reserved - old + size
	m.log.InfoContext(ctx, "zdb namespace resized", "namespace", ns, "volume", name, "pool", p.label,
		"old_size_bytes", old, "size_bytes", size)
	return nil
}

// rewriteDescriptor sets the maxsize of the descriptor at path, keeping the
// rest of it and its permissions, in one atomic replace. A missing
// descriptor gives ErrNotFound.
func rewriteDescriptor(path string, size uint64) error {
	info, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("descriptor gone: %w", ErrNotFound)
	}
	if err != nil {
		return err
	}
	b, err := readSmall(path)
	if err != nil {
		return err
	}
	d, err := DecodeNamespace(b)
	if err != nil {
		return err
	}
	d.MaxSizeBytes = size
	if b, err = EncodeNamespace(d); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b, info.Mode().Perm())
}

// ReleaseNamespace implements ZDBReservations. The descriptor is first
// renamed to NamespaceReleasedFile (the commit point: the namespace no
// longer reserves anything on disk), then the directory is removed.
func (m *Module) ReleaseNamespace(ctx context.Context, ns string) error {
	if err := ValidateName(ns); err != nil {
		return fmt.Errorf("namespace %q: %w", ns, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkOpen(); err != nil {
		return err
	}
	p, name, v := m.findNSLocked(ns)
	if p == nil {
		return nil
	}
	if err := removeNamespaceDir(filepath.Join(p.mnt, name), ns); err != nil {
		return fmt.Errorf("namespace %q: %w", ns, err)
	}
	size := v.zdb.ns[ns]
	delete(v.zdb.ns, ns)
	p.reserved -= size
	m.log.InfoContext(ctx, "zdb namespace released", "namespace", ns, "volume", name, "pool", p.label, "size_bytes", size)
	return nil
}

// removeNamespaceDir removes the directory of namespace ns of the zdb
// volume at vol, crash-safely: the descriptor is renamed to the released
// marker (durably) before anything else goes. Nothing there is fine.
func removeNamespaceDir(vol, ns string) error {
	dir := filepath.Join(vol, ns)
	err := os.Rename(filepath.Join(dir, NamespaceFile), filepath.Join(dir, NamespaceReleasedFile))
	switch {
	case err == nil:
		if err := atomicfile.SyncDir(dir); err != nil {
			return err
		}
	case !errors.Is(err, os.ErrNotExist):
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return atomicfile.SyncDir(vol)
}
