package format

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/pkg/flist/block"
)

// sample is a tree of every entry type, as (path, entry) in parent-first
// order; file blocks are derived from content by codec.
type sampleEntry struct {
	path    string
	mode    uint32
	content string
	target  string
	rdev    uint64
	xattrs  []Xattr
	linkTo  string
}

var sample = []sampleEntry{
	{path: "", mode: syscall.S_IFDIR | 0o755},
	{path: "bin", mode: syscall.S_IFDIR | 0o711},
	{path: "bin/tool", mode: syscall.S_IFREG | 0o4755, content: "#!/bin/sh\necho hi\n", xattrs: []Xattr{{Name: "user.k", Value: []byte("v")}}},
	{path: "bin/alias", mode: syscall.S_IFREG | 0o4755, content: "#!/bin/sh\necho hi\n", linkTo: "bin/tool"},
	{path: "dev", mode: syscall.S_IFDIR | 0o755},
	{path: "dev/null", mode: syscall.S_IFCHR | 0o666, rdev: unix.Mkdev(1, 3)},
	{path: "dev/loop9", mode: syscall.S_IFBLK | 0o660, rdev: unix.Mkdev(7, 9)},
	{path: "dev/pipe", mode: syscall.S_IFIFO | 0o600},
	{path: "dev/sock", mode: syscall.S_IFSOCK | 0o755},
	{path: "empty", mode: syscall.S_IFREG | 0o644},
	{path: "link", mode: syscall.S_IFLNK | 0o777, target: "bin/tool"},
	{path: "big", mode: syscall.S_IFREG | 0o600, content: strings.Repeat("0123456789abcdef", block.ChunkSize/16*2+3)},
}

func writeSample(t testing.TB, w Writer, codec block.Codec) {
	t.Helper()
	ctx := context.Background()
	inos := map[string]uint64{}
	for i, s := range sample {
		e := Entry{Name: filepath.Base(s.path), Mode: s.mode, UID: uint32(i), GID: uint32(100 + i), Rdev: s.rdev,
			Mtime: int64(1_600_000_000 + i), Ctime: int64(1_600_000_100 + i), Target: s.target, Xattrs: s.xattrs}
		if s.path != "" {
			e.Parent = inos[filepath.Dir("/" + s.path)[1:]]
			if e.Parent == 0 {
				e.Parent = inos[""]
			}
		}
		if s.mode&syscall.S_IFMT == syscall.S_IFREG {
			e.Size = uint64(len(s.content))
			for off := 0; off < len(s.content); off += block.ChunkSize {
				b, _, err := codec.Encode([]byte(s.content[off:min(off+block.ChunkSize, len(s.content))]))
				if err != nil {
					t.Fatal(err)
				}
				e.Blocks = append(e.Blocks, b)
			}
		}
		if s.mode&syscall.S_IFMT == syscall.S_IFLNK {
			e.Size = uint64(len(s.target))
		}
		if s.linkTo != "" {
			e.LinkTo = inos[s.linkTo]
		}
		ino, err := w.Add(ctx, e)
		if err != nil {
			t.Fatalf("add %q: %v", s.path, err)
		}
		inos[s.path] = ino
	}
	if err := w.Tag(ctx, "version", "v1"); err != nil {
		t.Fatal(err)
	}
	if err := w.Route(ctx, Route{Start: 0, End: 255, URL: "zdb://127.0.0.1:9900/ns"}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

type seen struct {
	Mode      uint32
	Size      uint64
	UID, GID  uint32
	Rdev      uint64
	Mtime     int64
	Target    string
	Nlink     uint32
	Xattrs    []Xattr
	Content   string
	SameInoAs string
	HasBlocks int
}

func readAll(t *testing.T, r Reader) map[string]seen {
	t.Helper()
	ctx := context.Background()
	out := map[string]seen{}
	byIno := map[uint64]string{}
	err := Walk(ctx, r, func(p string, in Inode) error {
		s := seen{Mode: in.Mode, Size: in.Size, UID: in.UID, GID: in.GID, Rdev: in.Rdev, Mtime: in.Mtime, Target: in.Target, Nlink: in.Nlink}
		if first, ok := byIno[in.Ino]; ok {
			s.SameInoAs = first
		} else {
			byIno[in.Ino] = p
		}
		x, err := r.Xattrs(ctx, in.Ino)
		if err != nil {
			return err
		}
		s.Xattrs = x
		if in.IsRegular() {
			blocks, err := r.Blocks(ctx, in.Ino)
			if err != nil {
				return err
			}
			s.HasBlocks = len(blocks)
		}
		out[p] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRFSRoundTrip(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "a.fl")
	w, err := CreateRFS(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	writeSample(t, w, block.RFS)
	r, err := Open(ctx, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Kind() != KindRFS {
		t.Fatalf("kind %v", r.Kind())
	}
	got := readAll(t, r)
	if len(got) != len(sample) {
		t.Fatalf("got %d entries, want %d: %v", len(got), len(sample), got)
	}
	for i, s := range sample {
		g := got[s.path]
		if g.Mode != s.mode || g.UID != uint32(i) || g.GID != uint32(100+i) || g.Rdev != s.rdev || g.Mtime != int64(1_600_000_000+i) {
			t.Errorf("%q: got %+v", s.path, g)
		}
		if s.mode&syscall.S_IFMT == syscall.S_IFREG && (g.Size != uint64(len(s.content)) || g.HasBlocks != (len(s.content)+block.ChunkSize-1)/block.ChunkSize) {
			t.Errorf("%q: size %d blocks %d", s.path, g.Size, g.HasBlocks)
		}
		if g.Target != s.target {
			t.Errorf("%q: target %q", s.path, g.Target)
		}
		if diff := cmp.Diff(s.xattrs, g.Xattrs); s.linkTo == "" && diff != "" {
			t.Errorf("%q xattrs: %s", s.path, diff)
		}
	}
	if got["bin/tool"].SameInoAs != "bin/alias" || got["bin/tool"].Nlink != 2 || got["bin/alias"].Nlink != 2 {
		t.Errorf("hard link not kept: alias %+v tool %+v", got["bin/alias"], got["bin/tool"])
	}
	tags, err := r.Tags(ctx)
	if err != nil || tags["version"] != "v1" {
		t.Errorf("tags %v %v", tags, err)
	}
	routes, err := r.Routes(ctx)
	if err != nil || len(routes) != 1 || routes[0] != (Route{0, 255, "zdb://127.0.0.1:9900/ns"}) {
		t.Errorf("routes %v %v", routes, err)
	}
	if _, err := Lookup(ctx, r, "/dev/null"); err != nil {
		t.Errorf("lookup: %v", err)
	}
	if _, err := Lookup(ctx, r, "/dev/nothing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("lookup missing: %v", err)
	}
}

func TestZeroRoundTrip(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "a.flist")
	w, err := CreateZero(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	writeSample(t, w, block.Zero)
	r, err := Open(ctx, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Kind() != KindZero {
		t.Fatalf("kind %v", r.Kind())
	}
	if _, err := os.Stat(p + ".d/" + ZeroDBName); err != nil {
		t.Fatalf("not unpacked next to the archive: %v", err)
	}
	got := readAll(t, r)
	if len(got) != len(sample) {
		t.Fatalf("got %d entries, want %d", len(got), len(sample))
	}
	for i, s := range sample {
		g := got[s.path]
		want := s.mode
		if s.mode&syscall.S_IFMT == syscall.S_IFLNK {
			want = syscall.S_IFLNK | 0o777
		}
		if g.Mode != want || g.UID != uint32(i) || g.GID != uint32(100+i) || g.Rdev != s.rdev || g.Mtime != int64(1_600_000_000+i) || g.Target != s.target {
			t.Errorf("%q: got %+v", s.path, g)
		}
		if g.Xattrs != nil || g.SameInoAs != "" {
			t.Errorf("%q: 0-flist has no xattrs nor hard links: %+v", s.path, g)
		}
	}
	routes, err := r.Routes(ctx)
	if err != nil || len(routes) != 1 || routes[0] != (Route{0, 255, "zdb://127.0.0.1:9900/ns"}) {
		t.Errorf("routes %v %v", routes, err)
	}
	// The root key is the one every 0-flist has.
	if k := ZeroDirKey(""); k != "cae66941d9efbd404e4d88758ea67670" {
		t.Errorf("root key %s", k)
	}
}

func TestOpenRejectsGarbage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cases := map[string][]byte{
		"empty":         nil,
		"text":          []byte("hello, not an flist"),
		"sqlite-header": append([]byte("SQLite format 3\x00"), bytes.Repeat([]byte{0xff}, 4000)...),
		"gzip-garbage":  {0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7},
	}
	for name, data := range cases {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Open(ctx, p, Options{})
		if err == nil {
			r.Close()
			t.Errorf("%s: opened", name)
			continue
		}
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownFormat) {
			t.Errorf("%s: error %v is neither ErrCorrupt nor ErrUnknownFormat", name, err)
		}
	}
}

func TestCorruptSQLiteFlist(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "a.fl")
	w, err := CreateRFS(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	writeSample(t, w, block.RFS)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	// Keep the header, trash every page after the first.
	for i := 4096; i < len(data); i++ {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, p, Options{})
	if err == nil {
		err = Walk(ctx, r, func(string, Inode) error { return nil })
		r.Close()
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt database: %v, want ErrCorrupt", err)
	}
}

func TestRFSBadEntriesSkipped(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "a.fl")
	w, err := CreateRFS(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	writeSample(t, w, block.RFS)
	db, err := sql.Open("sqlite", p)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO inode (parent, name, size, uid, gid, mode, rdev, ctime, mtime) VALUES (1, '..', 0, 0, 0, 16877, 0, 0, 0)`,
		`INSERT INTO inode (parent, name, size, uid, gid, mode, rdev, ctime, mtime) VALUES (1, 'a/../../etc', 0, 0, 0, 33188, 0, 0, 0)`,
		`INSERT INTO inode (parent, name, size, uid, gid, mode, rdev, ctime, mtime) VALUES (1, '', 0, 0, 0, 33188, 0, 0, 0)`,
		`INSERT INTO inode (parent, name, size, uid, gid, mode, rdev, ctime, mtime) VALUES (1, 'weird', 0, 0, 0, 420, 0, 0, 0)`,
		`INSERT INTO inode (parent, name, size, uid, gid, mode, rdev, ctime, mtime) VALUES (1, 'bin', 0, 0, 0, 33188, 0, 0, 0)`,
		`INSERT INTO inode (ino, parent, name, size, uid, gid, mode, rdev, ctime, mtime) VALUES (500, 500, 'loop', 0, 0, 0, 16877, 0, 0, 0)`,
		`INSERT INTO inode (parent, name, size, uid, gid, mode, rdev, ctime, mtime) VALUES (1, 'badblocks', 5, 0, 0, 33188, 0, 0, 0)`,
		`INSERT INTO block (ino, id, key) VALUES (last_insert_rowid(), x'0102', x'0304')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	var bad []string
	r, err := Open(ctx, p, Options{OnBadEntry: func(dir uint64, name string, err error) {
		if !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("bad entry %q: %v does not wrap ErrInvalidEntry", name, err)
		}
		bad = append(bad, name)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	children, err := r.Children(ctx, RootIno)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range children {
		names = append(names, c.Name)
	}
	if diff := cmp.Diff([]string{"badblocks", "big", "bin", "dev", "empty", "link"}, names); diff != "" {
		t.Errorf("children: %s", diff)
	}
	if len(bad) != 5 {
		t.Errorf("reported bad entries %q, want 5", bad)
	}
	loop, err := r.Children(ctx, 500)
	if err != nil || len(loop) != 0 {
		t.Errorf("self-parented directory lists %v %v", loop, err)
	}
	in, err := Lookup(ctx, r, "badblocks")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Blocks(ctx, in.Ino); !errors.Is(err, ErrCorrupt) {
		t.Errorf("short block ids: %v, want ErrCorrupt", err)
	}
}

func TestRouterYAML(t *testing.T) {
	routes, err := ParseZeroRouter([]byte("pools:\n  hub:\n    00:7F: zdb://a:9900\n    8: redis://b:6379\n    9abc: zdb://c\nlookup:\n  - hub\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Route{{0, 0x7f, "zdb://a:9900"}, {0x80, 0x8f, "redis://b:6379"}, {0x9a, 0x9a, "zdb://c"}}
	if diff := cmp.Diff(want, routes); diff != "" {
		t.Error(diff)
	}
	for _, bad := range []string{"pools: {}\nlookup: [x]\n", "pools:\n  a:\n    zz: x\nlookup: [a]\n", "pools:\n  a:\n    ff:00: x\nlookup: [a]\n", "::"} {
		if _, err := ParseZeroRouter([]byte(bad)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestWriterRefusesBadEntries(t *testing.T) {
	ctx := context.Background()
	for _, create := range []func(context.Context, string) (Writer, error){CreateRFS, CreateZero} {
		dir := t.TempDir()
		p := filepath.Join(dir, "x")
		w, err := create(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Add(ctx, Entry{Name: "f", Mode: syscall.S_IFREG}); !errors.Is(err, ErrWriter) {
			t.Errorf("file as root: %v", err)
		}
		root, err := w.Add(ctx, Entry{Mode: syscall.S_IFDIR | 0o755})
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"..", "a/b", ""} {
			if _, err := w.Add(ctx, Entry{Parent: root, Name: name, Mode: syscall.S_IFREG}); !errors.Is(err, ErrWriter) {
				t.Errorf("name %q: %v", name, err)
			}
		}
		w.Abort()
		entries, _ := os.ReadDir(dir)
		if len(entries) != 0 {
			t.Errorf("abort left %v", entries)
		}
	}
}

func ExampleZeroDirKey() {
	fmt.Println(ZeroDirKey(""))
	// Output: cae66941d9efbd404e4d88758ea67670
}
