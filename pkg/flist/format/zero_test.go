package format

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"syscall"
	"testing"

	"capnproto.org/go/capnp/v3"

	"github.com/zos-go/zos/pkg/flist/format/zeroschema"
)

// zeroDB writes a bare 0-flist database with the given directory messages.
func zeroDB(t testing.TB, entries map[string][]byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), ZeroDBName)
	db, err := sql.Open("sqlite", p)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE entries (key VARCHAR(64) PRIMARY KEY, value BLOB)`); err != nil {
		t.Fatal(err)
	}
	for k, v := range entries {
		if _, err := db.Exec(`INSERT INTO entries (key, value) VALUES (?, ?)`, k, v); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

type zeroChild struct {
	name   string
	subdir string // key for a subdir entry
	target string // symlink
}

func zeroDirMessage(t testing.TB, location string, children []zeroChild) []byte {
	t.Helper()
	msg, seg, err := capnp.NewMessage(capnp.MultiSegment(nil))
	if err != nil {
		t.Fatal(err)
	}
	d, err := zeroschema.NewRootDir(seg)
	if err != nil {
		t.Fatal(err)
	}
	_ = d.SetLocation(location)
	list, err := d.NewContents(int32(len(children)))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range children {
		in := list.At(i)
		_ = in.SetName(c.name)
		if c.subdir != "" {
			sub, _ := in.Attributes().NewDir()
			_ = sub.SetKey(c.subdir)
		} else {
			l, _ := in.Attributes().NewLink()
			_ = l.SetTarget(c.target)
		}
	}
	data, err := msg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestZeroBadEntriesSkipped(t *testing.T) {
	ctx := context.Background()
	p := zeroDB(t, map[string][]byte{
		ZeroDirKey(""): zeroDirMessage(t, "", []zeroChild{
			{name: "..", subdir: ZeroDirKey("..")},
			{name: "etc/passwd", target: "x"},
			{name: "up", subdir: ZeroDirKey("")}, // would loop back to the root
			{name: "ok", target: "/etc"},
			{name: "sub", subdir: ZeroDirKey("sub")},
		}),
		ZeroDirKey("sub"): zeroDirMessage(t, "sub", []zeroChild{{name: "leaf", target: "../ok"}}),
	})
	var bad []string
	r, err := Open(ctx, p, Options{OnBadEntry: func(_ uint64, name string, err error) {
		if !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("%q: %v", name, err)
		}
		bad = append(bad, name)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var paths []string
	if err := Walk(ctx, r, func(p string, in Inode) error { paths = append(paths, p); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []string{"", "ok", "sub", "sub/leaf"}
	if len(paths) != len(want) {
		t.Fatalf("walk %q, want %q", paths, want)
	}
	for i := range want {
		if paths[i] != want[i] {
			t.Fatalf("walk %q, want %q", paths, want)
		}
	}
	if len(bad) != 3 {
		t.Errorf("bad entries %q, want 3", bad)
	}
	in, err := Lookup(ctx, r, "ok")
	if err != nil || in.Type() != syscall.S_IFLNK || in.Target != "/etc" {
		t.Errorf("ok: %+v %v", in, err)
	}
	// no ACL: 0-fs defaults
	if in, _ := Lookup(ctx, r, "sub"); in.Mode != syscall.S_IFDIR|0o400 || in.UID != 1000 {
		t.Errorf("sub without ACL: %+v", in)
	}
}

func TestZeroMissingRoot(t *testing.T) {
	p := zeroDB(t, map[string][]byte{"abc": []byte("x")})
	if _, err := Open(context.Background(), p, Options{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open without root: %v", err)
	}
	p = zeroDB(t, map[string][]byte{ZeroDirKey(""): []byte("\x00\x00\x00\x00\x09\x00\x00\x00garbage")})
	if _, err := Open(context.Background(), p, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open with garbage root: %v", err)
	}
}
