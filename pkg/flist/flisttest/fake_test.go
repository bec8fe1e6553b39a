package flisttest

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/flist"
)

func TestFake(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "entrypoint"), []byte("#!/bin/sh\n"), 0o755)
	f := NewFake(t.TempDir())
	f.AddFlist("https://hub/x.flist", src)
	p, err := f.NamedMount("1-1", "https://hub/x.flist", "", pkg.DefaultMountOptions)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(p, "entrypoint")); err != nil || string(b) != "#!/bin/sh\n" {
		t.Fatalf("content: %q %v", b, err)
	}
	if again, err := f.NamedMount("1-1", "https://hub/other.flist", "", pkg.DefaultMountOptions); err != nil || again != p {
		t.Fatalf("idempotent mount: %s %v", again, err)
	}
	if _, err := f.NamedMount("a/b", "https://hub/x.flist", "", pkg.ReadOnlyMountOptions); !errors.Is(err, flist.ErrInvalidName) {
		t.Errorf("bad name: %v", err)
	}
	if _, err := f.NamedMount("2", "https://hub/x.flist", "", pkg.MountOptions{}); !errors.Is(err, flist.ErrInvalidOptions) {
		t.Errorf("writable without size: %v", err)
	}
	h1, _ := f.HashFromRootPath(p)
	h2, _ := f.FlistHash("https://hub/x.flist")
	if h1 == "" || h1 != h2 {
		t.Errorf("hashes %q %q", h1, h2)
	}
	if err := f.Umount(p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) || len(f.Mounts()) != 0 {
		t.Errorf("umount left %v %v", err, f.Mounts())
	}
}
