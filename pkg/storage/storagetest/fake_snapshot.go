package storagetest

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/zos-go/zos/pkg/storage"
)

func (f *Fake) snapPath(p *fakePool, volume, snapshot string) string {
	return filepath.Join(f.dir, p.Label, ".snapshots", volume, snapshot)
}

func (f *Fake) snapArgs(volume, snapshot string) (*fakePool, *fakeVol, error) {
	if err := storage.ValidateName(volume); err != nil {
		return nil, nil, fmt.Errorf("volume %q: %w", volume, err)
	}
	if err := storage.ValidateName(snapshot); err != nil {
		return nil, nil, fmt.Errorf("snapshot %q: %w", snapshot, err)
	}
	p, v := f.findLocked(volume)
	if p == nil {
		return nil, nil, fmt.Errorf("volume %q: %w", volume, storage.ErrNotFound)
	}
	return p, v, nil
}

// SnapshotVolume implements storage.Snapshotter with a copy of the tree.
func (f *Fake) SnapshotVolume(_ context.Context, volume, snapshot string) (storage.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, _, err := f.snapArgs(volume, snapshot)
	if err != nil {
		return storage.Snapshot{}, err
	}
	dst := f.snapPath(p, volume, snapshot)
	if !slices.Contains(f.snaps[volume], snapshot) {
		if err := copyTree(f.volPath(p, volume), dst); err != nil {
			_ = os.RemoveAll(dst)
			return storage.Snapshot{}, fmt.Errorf("snapshot %q of %q: %w", snapshot, volume, err)
		}
		f.snaps[volume] = append(f.snaps[volume], snapshot)
	}
	return f.snapLocked(p, volume, snapshot), nil
}

func (f *Fake) snapLocked(p *fakePool, volume, snapshot string) storage.Snapshot {
	return storage.Snapshot{Volume: volume, Name: snapshot, ID: 1 + slices.Index(f.snaps[volume], snapshot),
		Path: f.snapPath(p, volume, snapshot)}
}

// Snapshots implements storage.Snapshotter.
func (f *Fake) Snapshots(_ context.Context, volume string) ([]storage.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, _, err := f.snapArgs(volume, "x")
	if err != nil {
		return nil, err
	}
	out := []storage.Snapshot{}
	for _, s := range f.snaps[volume] {
		out = append(out, f.snapLocked(p, volume, s))
	}
	return out, nil
}

// RestoreSnapshot implements storage.Snapshotter.
func (f *Fake) RestoreSnapshot(_ context.Context, volume, snapshot string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, v, err := f.snapArgs(volume, snapshot)
	if err != nil {
		return err
	}
	if !slices.Contains(f.snaps[volume], snapshot) {
		return fmt.Errorf("snapshot %q of %q: %w", snapshot, volume, storage.ErrNotFound)
	}
	dir := f.volPath(p, volume)
	tmp := dir + ".restore"
	_ = os.RemoveAll(tmp)
	if err := copyTree(f.snapPath(p, volume, snapshot), tmp); err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("restore %q of %q: %w", snapshot, volume, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("restore %q of %q: %w", snapshot, volume, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("restore %q of %q: %w", snapshot, volume, err)
	}
	v.id = f.newID()
	return nil
}

// DeleteSnapshot implements storage.Snapshotter; nil if absent.
func (f *Fake) DeleteSnapshot(_ context.Context, volume, snapshot string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, _, err := f.snapArgs(volume, snapshot)
	if err != nil {
		return err
	}
	i := slices.Index(f.snaps[volume], snapshot)
	if i < 0 {
		return nil
	}
	if err := os.RemoveAll(f.snapPath(p, volume, snapshot)); err != nil {
		return fmt.Errorf("snapshot %q of %q: %w", snapshot, volume, err)
	}
	f.snaps[volume] = slices.Delete(f.snaps[volume], i, i+1)
	return nil
}

// copyTree copies regular files, directories and symlinks of src to dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm())
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			return copyFile(path, target, info.Mode().Perm())
		}
		return nil
	})
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
