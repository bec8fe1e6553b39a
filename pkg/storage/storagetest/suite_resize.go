package storagetest

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/storage"
)

// writeFile writes n bytes of non-zero data (so no filesystem can store it
// as a hole) and syncs it.
func writeFile(t *testing.T, path string, n int) {
	t.Helper()
	buf := make([]byte, n)
	for i := range buf {
		buf[i] = byte(i%251 + 1)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func wantSize(t *testing.T, s storage.Storage, name string, size uint64) pkg.Filesystem {
	t.Helper()
	fs, err := s.Path(name)
	if err != nil || fs.Usage.Size != size {
		t.Fatalf("Path(%s) = %+v, %v; want size %d", name, fs, err, size)
	}
	return fs
}

func testResize(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	total := mustTotal(t, s, pkg.SSDDevice)
	fs, err := s.CreateFilesystem("rs", 8*mib, pkg.SSDDevice)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(fs.Path, "data"), 6*mib)

	// grow: same volume, same data, new size everywhere
	got, err := s.ResizeFilesystem(ctx, "rs", 16*mib)
	if err != nil {
		t.Fatalf("grow: %v", err)
	}
	if got.ID != fs.ID || got.Path != fs.Path || got.Usage.Size != 16*mib || got.DiskType != pkg.SSDDevice {
		t.Fatalf("grow = %+v, was %+v", got, fs)
	}
	wantSize(t, s, "rs", 16*mib)
	if b, err := os.ReadFile(filepath.Join(fs.Path, "data")); err != nil || len(b) != 6*mib {
		t.Fatalf("data after grow: %d bytes, %v", len(b), err)
	}
	if again, err := s.ResizeFilesystem(ctx, "rs", 16*mib); err != nil || again.Usage.Size != 16*mib || again.ID != fs.ID {
		t.Fatalf("same size = %+v, %v; want a no-op", again, err)
	}

	// CreateFilesystem keeps refusing another size, and takes the new one
	if _, err := s.CreateFilesystem("rs", 8*mib, pkg.SSDDevice); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("create with the old size after a resize: %v, want ErrExists", err)
	}
	if again, err := s.CreateFilesystem("rs", 16*mib, pkg.SSDDevice); err != nil || again.ID != fs.ID {
		t.Fatalf("create with the new size = %+v, %v; want the volume", again, err)
	}

	// shrinking below what it holds is refused, above is fine
	_, err = s.ResizeFilesystem(ctx, "rs", 2*mib)
	if !errors.Is(err, storage.ErrInUse) || !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("shrink below usage: %v, want ErrInUse (failed precondition)", err)
	}
	wantSize(t, s, "rs", 16*mib)
	if got, err := s.ResizeFilesystem(ctx, "rs", 12*mib); err != nil || got.Usage.Size != 12*mib {
		t.Fatalf("shrink above usage = %+v, %v", got, err)
	}

	// the pool's accounting follows: what a resize takes, creates lose
	big := total / 5 * 3
	_, err = s.ResizeFilesystem(ctx, "rs", total+1)
	wantNoSpace(t, err, pkg.SSDDevice, "grow past the pool")
	wantSize(t, s, "rs", 12*mib)
	if _, err := s.ResizeFilesystem(ctx, "rs", big); err != nil {
		t.Fatalf("grow to 3/5 of the pool: %v", err)
	}
	_, err = s.CreateFilesystem("other", big, pkg.SSDDevice)
	wantNoSpace(t, err, pkg.SSDDevice, "volume over what the grown volume left")
	if _, err := s.CreateFilesystem("other", total/5, pkg.SSDDevice); err != nil {
		t.Fatal(err)
	}
	_, err = s.ResizeFilesystem(ctx, "rs", big+total/5)
	wantNoSpace(t, err, pkg.SSDDevice, "grow over another volume's reservation")
	wantSize(t, s, "rs", big)
	if _, err := s.ResizeFilesystem(ctx, "rs", 16*mib); err != nil {
		t.Fatalf("shrink back: %v", err)
	}
	if _, err := s.ResizeFilesystem(ctx, "other", big); err != nil {
		t.Fatalf("space given back by a shrink not usable: %v", err)
	}
	// an HDD volume grows on its HDD pool
	if _, err := s.CreateFilesystem("h", mib, pkg.HDDDevice); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ResizeFilesystem(ctx, "h", big); err != nil || got.DiskType != pkg.HDDDevice {
		t.Fatalf("grow HDD volume = %+v, %v", got, err)
	}
}

func testResizeBadInput(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	if _, err := s.CreateFilesystem("v", 8*mib, pkg.SSDDevice); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "..", "a/b", ".hidden", storage.CacheVolume, storage.VDisksVolume, "zdbx"} {
		if _, err := s.ResizeFilesystem(ctx, name, mib); !errors.Is(err, storage.ErrInvalidName) {
			t.Errorf("ResizeFilesystem(%q): %v, want ErrInvalidName", name, err)
		}
	}
	for _, size := range []uint64{0, storage.MaxSizeBytes + 1, math.MaxUint64} {
		if _, err := s.ResizeFilesystem(ctx, "v", size); !errors.Is(err, storage.ErrInvalidSize) {
			t.Errorf("ResizeFilesystem(size %d): %v, want ErrInvalidSize", size, err)
		}
	}
	if _, err := s.ResizeFilesystem(ctx, "nope", mib); !errors.Is(err, storage.ErrNotFound) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ResizeFilesystem(unknown): %v, want ErrNotFound", err)
	}
	if _, err := s.Path("nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("resize of an unknown volume created it: %v", err)
	}
	wantSize(t, s, "v", 8*mib)
}

func testZDBResizeRelease(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	total := mustTotal(t, s, pkg.HDDDevice)
	big := total / 5 * 3
	a1, err := s.Allocate("n1", pkg.HDDDevice, 8*mib, pkg.ZDBModeUser)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := s.Allocate("n2", pkg.HDDDevice, 8*mib, pkg.ZDBModeUser)
	if err != nil || a2 != a1 {
		t.Fatalf("n2 = %+v, %v; want packed with n1", a2, err)
	}
	// what 0-db would have written in the namespace
	writeFile(t, filepath.Join(a1.VolumePath, "n1", "zdb-data-00000"), 3*mib)

	// grow: the descriptor says it, the pool counts it
	if err := s.ResizeNamespace(ctx, "n1", big); err != nil {
		t.Fatalf("grow namespace: %v", err)
	}
	if d := readNS(t, a1, "n1"); d.MaxSizeBytes != big || d.Name != "n1" || !d.Public {
		t.Fatalf("descriptor after grow %+v", d)
	}
	_, err = s.CreateFilesystem("v", total-big, pkg.HDDDevice)
	wantNoSpace(t, err, pkg.HDDDevice, "volume over what the grown namespace left")
	err = s.ResizeNamespace(ctx, "n2", big)
	wantNoSpace(t, err, pkg.HDDDevice, "namespace grown past the pool")
	if d := readNS(t, a1, "n2"); d.MaxSizeBytes != 8*mib {
		t.Fatalf("refused grow changed the descriptor: %+v", d)
	}
	if err := s.ResizeNamespace(ctx, "n1", big); err != nil {
		t.Fatalf("same size: %v", err)
	}
	// an allocation of an existing namespace keeps its size
	if a, err := s.Allocate("n1", pkg.HDDDevice, mib, pkg.ZDBModeUser); err != nil || a != a1 {
		t.Fatalf("Allocate(n1) again = %+v, %v", a, err)
	}
	if d := readNS(t, a1, "n1"); d.MaxSizeBytes != big {
		t.Fatalf("Allocate changed the size: %+v", d)
	}

	// shrink: not below the namespace's files
	err = s.ResizeNamespace(ctx, "n1", 2*mib)
	if !errors.Is(err, storage.ErrInUse) || !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("shrink below the namespace's data: %v, want ErrInUse", err)
	}
	if d := readNS(t, a1, "n1"); d.MaxSizeBytes != big {
		t.Fatalf("refused shrink changed the descriptor: %+v", d)
	}
	if err := s.ResizeNamespace(ctx, "n1", 4*mib); err != nil {
		t.Fatalf("shrink above the data: %v", err)
	}
	if _, err := s.CreateFilesystem("v", big, pkg.HDDDevice); err != nil {
		t.Fatalf("space of a shrunk namespace not back: %v", err)
	}
	if err := s.ReleaseFilesystem("v"); err != nil {
		t.Fatal(err)
	}

	// bad input and unknown namespaces change nothing
	if err := s.ResizeNamespace(ctx, "../x", mib); !errors.Is(err, storage.ErrInvalidName) {
		t.Errorf("ResizeNamespace(../x): %v", err)
	}
	if err := s.ResizeNamespace(ctx, "n1", 0); !errors.Is(err, storage.ErrInvalidSize) {
		t.Errorf("ResizeNamespace(size 0): %v", err)
	}
	if err := s.ResizeNamespace(ctx, "nope", mib); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("ResizeNamespace(nope): %v, want ErrNotFound", err)
	}
	if err := s.ReleaseNamespace(ctx, "a/b"); !errors.Is(err, storage.ErrInvalidName) {
		t.Errorf("ReleaseNamespace(a/b): %v", err)
	}

	// release: not found any more, its space back, the volume and the
	// other namespace untouched
	if err := s.ReleaseNamespace(ctx, "n1"); err != nil {
		t.Fatalf("ReleaseNamespace: %v", err)
	}
	if _, err := s.Find("n1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Find after release: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(a1.VolumePath, "n1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("namespace directory left: %v", err)
	}
	if err := s.ReleaseNamespace(ctx, "n1"); err != nil {
		t.Fatalf("second ReleaseNamespace: %v, want nil", err)
	}
	if found, err := s.Find("n2"); err != nil || found != a1 {
		t.Fatalf("Find(n2) = %+v, %v", found, err)
	}
	if _, err := s.CreateFilesystem("v", total-8*mib-mib, pkg.HDDDevice); err != nil {
		t.Fatalf("space of a released namespace not back: %v", err)
	}
	if err := s.ReleaseFilesystem("v"); err != nil {
		t.Fatal(err)
	}
	// after 0-db deleted the namespace itself (NSDEL), release gives its
	// reservation back
	if err := os.RemoveAll(filepath.Join(a1.VolumePath, "n2")); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseNamespace(ctx, "n2"); err != nil {
		t.Fatalf("ReleaseNamespace after NSDEL: %v", err)
	}
	if _, err := s.Find("n2"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Find after release: %v", err)
	}
	if _, err := s.CreateFilesystem("v", total-mib, pkg.HDDDevice); err != nil {
		t.Fatalf("space of a namespace released after NSDEL not back: %v", err)
	}
	if _, err := os.Stat(a1.VolumePath); err != nil {
		t.Fatalf("zdb volume gone with its namespaces: %v", err)
	}
	// the name can be allocated again
	if err := s.ReleaseFilesystem("v"); err != nil {
		t.Fatal(err)
	}
	a, err := s.Allocate("n1", pkg.HDDDevice, 8*mib, pkg.ZDBModeSeq)
	if err != nil {
		t.Fatalf("Allocate of a released name: %v", err)
	}
	if d := readNS(t, a, "n1"); d.MaxSizeBytes != 8*mib {
		t.Fatalf("descriptor %+v", d)
	}
}
