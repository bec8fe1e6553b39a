// Package flisttest has a Fake pkg.Flister for unit tests of the modules
// that mount flists (containers, VMs, 0-db, provision): "mounting" copies a
// directory registered for the flist URL, so tests see a root filesystem
// without FUSE, root or a hub.
package flisttest

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/flist"
	"github.com/zos-go/zos/pkg/flist/format"
)

// Fake implements pkg.Flister over plain directories. It is safe for
// concurrent use.
type Fake struct {
	root string

	mu     sync.Mutex
	flists map[string]string    // url -> source dir; guarded by mu
	mounts map[string]fakeMount // name -> mount; guarded by mu
}

type fakeMount struct {
	url string
	ro  bool
}

var _ pkg.Flister = (*Fake)(nil)

// NewFake returns a Fake that mounts under root/mountpoint.
func NewFake(root string) *Fake {
	return &Fake{root: root, flists: map[string]string{}, mounts: map[string]fakeMount{}}
}

// AddFlist makes url mountable with the content of dir.
func (f *Fake) AddFlist(url, dir string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flists[url] = dir
}

// Mounts returns the names currently mounted, sorted.
func (f *Fake) Mounts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.mounts))
	for n := range f.mounts {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ReadOnly reports whether name is mounted read-only.
func (f *Fake) ReadOnly(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mounts[name].ro
}

func (f *Fake) path(name string) string { return filepath.Join(f.root, "mountpoint", name) }

// Mount implements pkg.Flister.
func (f *Fake) Mount(url, storage string, opts pkg.MountOptions) (string, error) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return f.NamedMount(hex.EncodeToString(b[:]), url, storage, opts)
}

// NamedMount implements pkg.Flister with the real module's name rules,
// idempotence and option checks (writable mounts need Limit and Type).
func (f *Fake) NamedMount(name, url, _ string, opts pkg.MountOptions) (string, error) {
	if format.ValidName(name) != nil {
		return "", fmt.Errorf("mount %q: %w", name, flist.ErrInvalidName)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.mounts[name]; ok {
		return f.path(name), nil
	}
	src, ok := f.flists[url]
	if !ok {
		return "", fmt.Errorf("flist %s: %w: not registered in the fake", url, flist.ErrDownload)
	}
	if !opts.ReadOnly && (opts.Limit == 0 || opts.Type == "") {
		return "", fmt.Errorf("mount %q: %w", name, flist.ErrInvalidOptions)
	}
	if err := copyTree(src, f.path(name)); err != nil {
		_ = os.RemoveAll(f.path(name))
		return "", fmt.Errorf("mount %q: %w", name, err)
	}
	f.mounts[name] = fakeMount{url: url, ro: opts.ReadOnly}
	return f.path(name), nil
}

// Umount implements pkg.Flister.
func (f *Fake) Umount(path string) error {
	if filepath.Dir(filepath.Clean(path)) != filepath.Join(f.root, "mountpoint") {
		return fmt.Errorf("umount %q: %w", path, flist.ErrNotMountpoint)
	}
	name := filepath.Base(path)
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.mounts, name)
	return os.RemoveAll(f.path(name))
}

// NamedUmount implements pkg.Flister.
func (f *Fake) NamedUmount(name string) error { return f.Umount(f.path(name)) }

// HashFromRootPath implements pkg.Flister: the hash FlistHash gives the
// mounted URL.
func (f *Fake) HashFromRootPath(name string) (string, error) {
	f.mu.Lock()
	m, ok := f.mounts[filepath.Base(name)]
	f.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("mount %q: %w", name, flist.ErrHashNotFound)
	}
	return f.FlistHash(m.url)
}

// FlistHash implements pkg.Flister: the MD5 of the URL and the registered
// directory (changing the registration changes the hash).
func (f *Fake) FlistHash(url string) (string, error) {
	f.mu.Lock()
	dir, ok := f.flists[url]
	f.mu.Unlock()
	if !ok {
		return "", errors.New("fail to fetch hash, response: 404")
	}
	sum := md5.Sum([]byte(url + "\x00" + dir))
	return hex.EncodeToString(sum[:]), nil
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm())
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case info.Mode().IsRegular():
			in, err := os.Open(p)
			if err != nil {
				return err
			}
			defer in.Close()
			out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, info.Mode().Perm())
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, in); err != nil {
				out.Close()
				return err
			}
			return out.Close()
		}
		return nil // special files are skipped
	})
}
