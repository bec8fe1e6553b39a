package storage

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/zos-go/zos/internal/zdb/engine"
	"github.com/zos-go/zos/pkg"
)

// zdbPoolModule is a module with one HDD pool of sizeBytes in a plain
// directory holding the zdb volume vol (no btrfs: the 0-db reservations
// are files), read as adoption reads it.
func zdbPoolModule(t *testing.T, sizeBytes uint64, vol string) (*Module, string) {
	t.Helper()
	mnt := t.TempDir()
	if err := os.MkdirAll(filepath.Join(mnt, vol), 0o755); err != nil {
		t.Fatal(err)
	}
	m := &Module{cfg: DefaultConfig(), log: slog.New(slog.NewTextHandler(t.Output(), nil)),
		pools: map[string]*pool{"p": {label: "p", mnt: mnt, typ: pkg.HDDDevice, sizeBytes: sizeBytes, vols: map[string]*volume{}}}}
	return m, mnt
}

// adopt reads the zdb volume vol of the module's pool again.
func adopt(t *testing.T, m *Module, vol string) {
	t.Helper()
	p := m.pools["p"]
	z, err := loadZDBVolume(filepath.Join(p.mnt, vol))
	if err != nil {
		t.Fatal(err)
	}
	p.vols = map[string]*volume{vol: {zdb: z}}
	p.reserved = z.reserved()
}

// TestResizeNamespaceKeepsWhat0DBWrote: the descriptor 0-db wrote (with a
// password, flags and owner-only permissions) keeps all of it but the size,
// and 0-db's own parser reads the new size.
func TestResizeNamespaceKeepsWhat0DBWrote(t *testing.T) {
	const vol = "zdb0"
	m, mnt := zdbPoolModule(t, 1<<30, vol)
	dir := filepath.Join(mnt, vol, "ns")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	orig := engine.Descriptor{Name: "ns", Password: "secret", Public: false, Worm: true, MaxSize: 64 << 20}
	b, err := engine.MarshalDescriptor(orig)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, NamespaceFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	adopt(t, m, vol)
	if err := m.ResizeNamespace(t.Context(), "ns", 256<<20); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, NamespaceFile)
	b, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := engine.ParseDescriptor(b)
	want := orig
	want.MaxSize = 256 << 20
	if err != nil || got != want {
		t.Fatalf("0-db reads %+v, %v; want %+v", got, err, want)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("descriptor mode %v, %v; want 0600 (it holds the password)", info.Mode(), err)
	}
	adopt(t, m, vol)
	if r := m.pools["p"].reserved; r != 256<<20 {
		t.Fatalf("adoption reserves %d, want the new size", r)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := m.ResizeNamespace(t.Context(), "ns", 128<<20); !errors.Is(err, ErrNotFound) {
		t.Fatalf("resize of a namespace whose descriptor is gone: %v, want ErrNotFound", err)
	}
	if r := m.pools["p"].reserved; r != 256<<20 {
		t.Fatalf("failed resize changed the reservation to %d", r)
	}
}

// TestInterruptedReleaseFinishedByAdoption: a namespace directory whose
// descriptor was already renamed to the released marker is no reservation
// and is removed on adoption; a directory that is no namespace of ours
// (no descriptor, no marker) is left alone.
func TestInterruptedReleaseFinishedByAdoption(t *testing.T) {
	const vol = "zdb0"
	m, mnt := zdbPoolModule(t, 1<<30, vol)
	mk := func(ns string, files map[string][]byte) string {
		dir := filepath.Join(mnt, vol, ns)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	desc := func(ns string, size uint64) []byte {
		b, err := EncodeNamespace(NamespaceDescriptor{Name: ns, MaxSizeBytes: size, Public: true})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	mk("kept", map[string][]byte{NamespaceFile: desc("kept", 8<<20)})
	half := mk("half", map[string][]byte{NamespaceReleasedFile: desc("half", 32<<20), "zdb-data-00000": []byte("data")})
	other := mk("other", map[string][]byte{"notes": []byte("x")})
	adopt(t, m, vol)
	if _, err := os.Stat(half); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("half-released namespace left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(other, "notes")); err != nil {
		t.Fatalf("foreign directory touched: %v", err)
	}
	if _, err := m.Find("half"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Find(half): %v", err)
	}
	if r := m.pools["p"].reserved; r != 8<<20 {
		t.Fatalf("reserved %d, want only the kept namespace", r)
	}

	// a release interrupted after the commit point, then retried
	if err := os.Rename(filepath.Join(mnt, vol, "kept", NamespaceFile), filepath.Join(mnt, vol, "kept", NamespaceReleasedFile)); err != nil {
		t.Fatal(err)
	}
	if err := m.ReleaseNamespace(t.Context(), "kept"); err != nil {
		t.Fatalf("retried release: %v", err)
	}
	if _, err := os.Stat(filepath.Join(mnt, vol, "kept")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("released namespace left: %v", err)
	}
	if r := m.pools["p"].reserved; r != 0 {
		t.Fatalf("reserved %d after release", r)
	}
}
