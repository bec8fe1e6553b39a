package vdisk

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/storage"
)

func realStorage(t *testing.T, rotational bool) *storage.Module {
	t.Helper()
	cfg := storage.DefaultConfig()
	cfg.Root = testutil.TempDir(t)
	cfg.Discover = false
	cfg.Devices = []string{testutil.LoopDisk(t, 512<<20, rotational)}
	cfg.TypeProbe = storage.ProbeRotational
	cfg.LabelPrefix = testutil.Prefix()
	cfg.CacheSizeBytes = 16 << 20
	cfg.ScanInterval = time.Second
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	s, err := storage.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	if err := s.Scan(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOnBtrfsSparseNoCOW(t *testing.T) {
	testutil.RequireRoot(t, "mkfs.btrfs", "btrfs", "blkid", "lsattr")
	testutil.CheckLeaks(t)
	s := realStorage(t, false)
	m, err := New(DefaultConfig(), s, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	path, err := m.Allocate("vm-1", 128)
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != 128<<20 || st.Blocks != 0 {
		t.Fatalf("size %d, %d blocks: want 128 MiB, sparse", st.Size, st.Blocks)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	f.Close()
	if err != nil || flags&fsNoCOW == 0 {
		t.Fatalf("flags %#x, %v: want NOCOW", flags, err)
	}
	out, err := exec.Command("lsattr", path).Output()
	if err != nil || !strings.Contains(strings.Fields(string(out))[0], "C") {
		t.Fatalf("lsattr %q, %v: want the C attribute", out, err)
	}
	// the sparse file's apparent size counts against the pool
	total, _ := s.Total(pkg.SSDDevice)
	if _, err := s.CreateFilesystem("v", total-128<<20, pkg.SSDDevice); !errors.As(err, new(pkg.ErrNotEnoughSpace)) {
		t.Fatalf("volume over what the vdisk left: %v", err)
	}
	if err := m.Deallocate("vm-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateFilesystem("v", total-128<<20, pkg.SSDDevice); err != nil {
		t.Fatalf("space of the deallocated vdisk not back: %v", err)
	}
	if err := s.ReleaseFilesystem("v"); err != nil {
		t.Fatal(err)
	}
	checkLifecycle(t, m)
}

func TestNeedsSSD(t *testing.T) {
	testutil.RequireRoot(t, "mkfs.btrfs", "btrfs", "blkid")
	testutil.CheckLeaks(t)
	m, err := New(DefaultConfig(), realStorage(t, true), slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Allocate("vm-1", 16)
	if e, ok := errors.AsType[pkg.ErrNotEnoughSpace](err); !ok || e.DeviceType != pkg.SSDDevice {
		t.Fatalf("on an HDD-only node: %v, want ErrNotEnoughSpace{ssd}", err)
	}
}
