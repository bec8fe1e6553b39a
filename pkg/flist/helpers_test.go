package flist

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/flist/build"
	"github.com/zos-go/zos/pkg/flist/format"
	"github.com/zos-go/zos/pkg/flist/internal/mnt"
	"github.com/zos-go/zos/pkg/flist/store"
)

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// testConfig is a module config under a fresh test root.
func testConfig(t testing.TB) Config {
	cfg := DefaultConfig(testutil.TempDir(t))
	cfg.Binary = flistfsBin
	cfg.ServicePrefix = testutil.Name(t, "fl") + "@"
	cfg.MountTimeout = 15 * time.Second
	cfg.StopTimeout = 10 * time.Second
	cfg.FetchTimeout = 5 * time.Second
	return cfg
}

// newModule returns a module whose mounts are all unmounted at the end of
// the test (before the runner and the volumes go away, which the caller
// set up earlier so their cleanups run later).
func newModule(t testing.TB, cfg Config, vols Volumes, runner Runner) *Module {
	t.Helper()
	m, err := New(cfg, vols, runner, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		entries, _ := os.ReadDir(filepath.Join(cfg.Root, "mountpoint"))
		for _, e := range entries {
			_ = m.NamedUmount(e.Name())
		}
		leftovers, _ := mnt.Under(cfg.Root)
		for _, p := range leftovers {
			t.Errorf("mount left under the root: %s", p)
			_ = mnt.Detach(p)
		}
	})
	return m
}

// processRunner returns a ProcessRunner stopped at the end of the test.
func processRunner(t testing.TB) *ProcessRunner {
	r := &ProcessRunner{LogDir: testutil.TempDir(t), RestartDelay: 200 * time.Millisecond, StopTimeout: 5 * time.Second}
	t.Cleanup(func() {
		_ = r.Close(context.Background())
		if t.Failed() {
			entries, _ := os.ReadDir(r.LogDir)
			for _, e := range entries {
				b, _ := os.ReadFile(filepath.Join(r.LogDir, e.Name()))
				t.Logf("%s:\n%s", e.Name(), tail(string(b), 30))
			}
		}
	})
	return r
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// makeTree creates a tree with every file type the builder packs. Device
// nodes need root; without it they are left out. It returns the relative
// paths of the regular files.
func makeTree(t testing.TB, dir string, withDevices bool) []string {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	big := make([]byte, 3*512*1024+12345)
	rand.Read(big)
	files := map[string][]byte{
		"etc/hosts":                   []byte("127.0.0.1 localhost\n"),
		"etc/empty":                   nil,
		"bin/tool":                    []byte("#!/bin/sh\necho tool\n"),
		"var/lib/data/big.bin":        big,
		"var/lib/data/copy.bin":       big, // dedup
		"usr/share/ünïcode name.txt":  []byte("names are bytes\n"),
		"usr/share/exactly-one-block": bytes.Repeat([]byte{7}, 512*1024),
	}
	for rel, data := range files {
		p := filepath.Join(dir, rel)
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		must(os.WriteFile(p, data, 0o644))
	}
	must(os.Chmod(filepath.Join(dir, "bin/tool"), 0o4755))
	must(os.Chmod(filepath.Join(dir, "var/lib/data"), 0o1770))
	must(os.Chown(filepath.Join(dir, "etc/hosts"), 1234, 5678))
	must(os.Lchown(filepath.Join(dir, "var/lib"), 42, 43))
	must(os.Symlink("../etc/hosts", filepath.Join(dir, "bin/hosts-link")))
	must(os.Symlink("/absolute/dangling", filepath.Join(dir, "dangling")))
	must(os.Link(filepath.Join(dir, "bin/tool"), filepath.Join(dir, "bin/tool-hardlink")))
	must(unix.Mkfifo(filepath.Join(dir, "fifo"), 0o640))
	if err := unix.Setxattr(filepath.Join(dir, "etc/hosts"), "user.zos.test", []byte("value\x00binary"), 0); err != nil {
		t.Logf("xattrs not supported here: %v", err)
	}
	if withDevices {
		must(os.MkdirAll(filepath.Join(dir, "dev"), 0o755))
		must(unix.Mknod(filepath.Join(dir, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		must(unix.Mknod(filepath.Join(dir, "dev/loop7"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 7))))
	}
	// a socket: bind one and leave the file
	if fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0); err == nil {
		_ = unix.Bind(fd, &unix.SockaddrUnix{Name: filepath.Join(dir, "sock")})
		unix.Close(fd)
	}
	old := time.Date(2020, 2, 2, 2, 2, 2, 0, time.UTC)
	must(os.Chtimes(filepath.Join(dir, "etc/hosts"), old, old))
	must(unix.Lutimes(filepath.Join(dir, "bin/hosts-link"), []unix.Timeval{{Sec: old.Unix()}, {Sec: old.Unix()}}))
	var regular []string
	for rel := range files {
		regular = append(regular, rel)
	}
	sort.Strings(regular)
	return regular
}

// packTree builds an flist of dir into out, blocks to storeURL.
func packTree(t testing.TB, dir, out, storeURL string, kind format.Kind) build.Result {
	t.Helper()
	st, err := store.Open(storeURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	res, err := build.Build(context.Background(), dir, out, st, build.Config{Kind: kind, StoreURL: storeURL}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

type seenEntry struct {
	mode     uint32
	uid, gid uint32
	size     int64
	mtime    int64
	rdev     uint64
	target   string
	content  []byte
	xattr    string
	nlink    uint64
	linkedTo string // first path with the same inode
}

// snapshotTree reads everything a user can see of a tree.
func snapshotTree(t testing.TB, root string, xattrs bool) map[string]seenEntry {
	t.Helper()
	out := map[string]seenEntry{}
	inodes := map[uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		e := seenEntry{mode: st.Mode, uid: st.Uid, gid: st.Gid, mtime: st.Mtim.Sec, rdev: st.Rdev}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			e.size, e.nlink = st.Size, uint64(st.Nlink)
			if e.content, err = os.ReadFile(p); err != nil {
				return fmt.Errorf("read %s: %w", rel, err)
			}
			if first, ok := inodes[st.Ino]; ok && st.Nlink > 1 {
				e.linkedTo = first
			} else {
				inodes[st.Ino] = rel
			}
		case unix.S_IFLNK:
			e.size = st.Size
			if e.target, err = os.Readlink(p); err != nil {
				return err
			}
		case unix.S_IFDIR:
			e.mtime = 0 // directory times change as the test creates entries
		}
		if xattrs && st.Mode&unix.S_IFMT != unix.S_IFLNK {
			buf := make([]byte, 256)
			if n, err := unix.Lgetxattr(p, "user.zos.test", buf); err == nil {
				e.xattr = string(buf[:n])
			}
		}
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// compareTrees fails the test for every difference a user would see.
func compareTrees(t testing.TB, want, got map[string]seenEntry) {
	t.Helper()
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			t.Errorf("%q: missing from the mount", p)
			continue
		}
		if w.mode != g.mode || w.uid != g.uid || w.gid != g.gid || w.rdev != g.rdev || w.mtime != g.mtime || w.target != g.target || w.xattr != g.xattr || w.nlink != g.nlink || w.linkedTo != g.linkedTo {
			t.Errorf("%q: metadata\n  source %+v\n  mount  %+v", p, strip(w), strip(g))
		}
		if w.size != g.size || !bytes.Equal(w.content, g.content) {
			t.Errorf("%q: content differs (%d bytes in the source, %d in the mount)", p, len(w.content), len(g.content))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%q: in the mount, not in the source", p)
		}
	}
}

func strip(e seenEntry) seenEntry {
	e.content = nil
	return e
}

func isEIO(err error) bool { return errors.Is(err, syscall.EIO) }

func md5sum(b []byte) [16]byte { return md5.Sum(b) }
