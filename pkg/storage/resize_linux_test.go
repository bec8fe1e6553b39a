package storage_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/storage"
)

// wantFill checks that the free space of the pool of type typ, as creates see it,
// is exactly free bytes: a volume of free+1 is refused, one of free fits
// (and is released again).
func wantFill(t *testing.T, m *storage.Module, typ pkg.DeviceType, free uint64) {
	t.Helper()
	if _, err := m.CreateFilesystem("fill", free+1, typ); !errors.As(err, new(pkg.ErrNotEnoughSpace)) {
		t.Fatalf("volume of free+1 bytes (%d): %v, want ErrNotEnoughSpace", free+1, err)
	}
	if _, err := m.CreateFilesystem("fill", free, typ); err != nil {
		t.Fatalf("volume of exactly the free %d bytes: %v", free, err)
	}
	if err := m.ReleaseFilesystem("fill"); err != nil {
		t.Fatal(err)
	}
}

func TestResizeEnforcedAndReadopted(t *testing.T) {
	testutil.RequireRoot(t, rootTools...)
	testutil.CheckLeaks(t)
	for _, mode := range []storage.QuotaMode{storage.QuotaSimple, storage.QuotaFull} {
		t.Run(string(mode), func(t *testing.T) {
			ctx := t.Context()
			cfg := testConfig(t, testutil.TempDir(t), testutil.LoopDisk(t, 512*mib, false))
			cfg.Quota = mode
			a := openModule(t, cfg)
			fs, err := a.CreateFilesystem("grow", 8*mib, pkg.SSDDevice)
			if err != nil {
				t.Fatal(err)
			}
			mnt := poolOf(fs)
			file := func(name string) string { return filepath.Join(fs.Path, name) }
			if err := writeBytes(file("a"), 6*mib); err != nil {
				t.Fatal(err)
			}
			if err := writeBytes(file("b"), 4*mib); !errors.Is(err, unix.EDQUOT) {
				t.Fatalf("write past the old limit: %v, want EDQUOT", err)
			}
			if err := os.Remove(file("b")); err != nil {
				t.Fatal(err)
			}

			// grow: writes past the old limit succeed, past the new one fail
			got, err := a.ResizeFilesystem(ctx, "grow", 24*mib)
			if err != nil || got.ID != fs.ID || got.Usage.Size != 24*mib {
				t.Fatalf("grow = %+v, %v", got, err)
			}
			if l := cliLimit(t, mnt, fs.ID); l != strconv.Itoa(24*mib) {
				t.Fatalf("btrfs CLI sees limit %s after grow", l)
			}
			if err := writeBytes(file("b"), 12*mib); err != nil {
				t.Fatalf("write past the old limit after grow: %v", err)
			}
			if err := writeBytes(file("c"), 16*mib); !errors.Is(err, unix.EDQUOT) {
				t.Fatalf("write past the new limit: %v, want EDQUOT", err)
			}
			if err := os.Remove(file("c")); err != nil {
				t.Fatal(err)
			}

			// shrink: refused below the 18 MiB it holds, fine above
			if _, err := a.ResizeFilesystem(ctx, "grow", 4*mib); !errors.Is(err, storage.ErrInUse) {
				t.Fatalf("shrink below usage: %v, want ErrInUse", err)
			}
			if l := cliLimit(t, mnt, fs.ID); l != strconv.Itoa(24*mib) {
				t.Fatalf("refused shrink changed the limit to %s", l)
			}
			if _, err := a.ResizeFilesystem(ctx, "grow", 20*mib); err != nil {
				t.Fatalf("shrink above usage: %v", err)
			}
			if l := cliLimit(t, mnt, fs.ID); l != strconv.Itoa(20*mib) {
				t.Fatalf("btrfs CLI sees limit %s after shrink", l)
			}

			// accounting: the pool minus the cache (16 MiB) and the volume
			total, err := a.Total(pkg.SSDDevice)
			if err != nil {
				t.Fatal(err)
			}
			free := total - 16*mib - 20*mib
			wantFill(t, a, pkg.SSDDevice, free)
			if _, err := a.ResizeFilesystem(ctx, "grow", 20*mib+free+1); !errors.As(err, new(pkg.ErrNotEnoughSpace)) {
				t.Fatalf("grow past the free space: %v", err)
			}
			if l := cliLimit(t, mnt, fs.ID); l != strconv.Itoa(20*mib) {
				t.Fatalf("refused grow changed the limit to %s", l)
			}

			// an agent restart while the pools stay mounted: the new
			// size is what is read back
			b := openModule(t, cfg)
			if got, err := b.Path("grow"); err != nil || got.Usage.Size != 20*mib {
				t.Fatalf("after restart, Path = %+v, %v", got, err)
			}
			wantFill(t, b, pkg.SSDDevice, free)
			if err := a.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if err := b.Close(ctx); err != nil {
				t.Fatal(err)
			}

			// a cold start: mounted again, same size, still enforced
			c := openModule(t, cfg)
			if got, err := c.Path("grow"); err != nil || got.Usage.Size != 20*mib || got.ID != fs.ID {
				t.Fatalf("after cold start, Path = %+v, %v", got, err)
			}
			if l := cliLimit(t, mnt, fs.ID); l != strconv.Itoa(20*mib) {
				t.Fatalf("btrfs CLI sees limit %s after cold start", l)
			}
			if err := writeBytes(file("c"), 8*mib); !errors.Is(err, unix.EDQUOT) {
				t.Fatalf("write past the limit after cold start: %v, want EDQUOT", err)
			}
			wantFill(t, c, pkg.SSDDevice, free)
		})
	}
}

func TestZDBReservationsReadopted(t *testing.T) {
	testutil.RequireRoot(t, rootTools...)
	testutil.CheckLeaks(t)
	ctx := t.Context()
	cfg := testConfig(t, testutil.TempDir(t), testutil.LoopDisk(t, 256*mib, false), testutil.LoopDisk(t, 512*mib, true))
	a, err := storage.New(cfg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	if err := a.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	alloc, err := a.Allocate("grown", pkg.HDDDevice, 64*mib, pkg.ZDBModeUser)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"deleted", "crashed"} {
		if _, err := a.Allocate(ns, pkg.HDDDevice, 64*mib, pkg.ZDBModeUser); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.ResizeNamespace(ctx, "grown", 128*mib); err != nil {
		t.Fatal(err)
	}
	// "deleted": 0-db's NSDEL removed its directory, then the release
	if err := os.RemoveAll(filepath.Join(alloc.VolumePath, "deleted")); err != nil {
		t.Fatal(err)
	}
	if err := a.ReleaseNamespace(ctx, "deleted"); err != nil {
		t.Fatal(err)
	}
	total, _ := a.Total(pkg.HDDDevice)
	wantFill(t, a, pkg.HDDDevice, total-128*mib-64*mib)
	// "crashed": a release that died right after its commit point
	dir := filepath.Join(alloc.VolumePath, "crashed")
	if err := writeBytes(filepath.Join(dir, "zdb-data-00000"), mib); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, storage.NamespaceFile), filepath.Join(dir, storage.NamespaceReleasedFile)); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}

	b := openModule(t, cfg)
	if found, err := b.Find("grown"); err != nil || found != alloc {
		t.Fatalf("Find(grown) after restart = %+v, %v", found, err)
	}
	for _, ns := range []string{"deleted", "crashed"} {
		if _, err := b.Find(ns); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Find(%s) after restart: %v, want ErrNotFound", ns, err)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("leftover of the interrupted release not removed: %v", err)
	}
	// only the grown namespace is reserved, at its new size
	wantFill(t, b, pkg.HDDDevice, total-128*mib)
}
