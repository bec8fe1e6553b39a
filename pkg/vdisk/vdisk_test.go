package vdisk

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/storage"
	"github.com/zos-go/zos/pkg/storage/storagetest"
)

func newOnFake(t *testing.T, capacity uint64) *Module {
	t.Helper()
	m, err := New(DefaultConfig(), storagetest.NewFake(t.TempDir(), capacity), slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// checkLifecycle is run on the Fake and on real btrfs.
func checkLifecycle(t *testing.T, m *Module) {
	path, err := m.Allocate("100-1-vda", 64)
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	if filepath.Base(path) != "100-1-vda" {
		t.Fatalf("path %s", path)
	}
	st, err := os.Stat(path)
	if err != nil || st.Size() != 64*MiB {
		t.Fatalf("file %v, %v; want 64 MiB", st, err)
	}
	again, err := m.Allocate("100-1-vda", 64)
	if !errors.Is(err, os.ErrExist) || again != path {
		t.Fatalf("second Allocate = %q, %v; want the path and ErrExist", again, err)
	}
	if !m.Exists("100-1-vda") || m.Exists("nope") {
		t.Fatal("Exists wrong")
	}
	info, err := m.Inspect("100-1-vda")
	if err != nil || info != (pkg.VDisk{Path: path, Size: 64 * MiB}) {
		t.Fatalf("Inspect = %+v, %v", info, err)
	}
	if _, err := m.Inspect("nope"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Inspect(nope): %v", err)
	}
	if _, err := m.Allocate("100-2-vda", 16); err != nil {
		t.Fatal(err)
	}
	list, err := m.List()
	if err != nil || len(list) != 2 || list[0].Path != path || list[1].Size != 16*MiB {
		t.Fatalf("List = %+v, %v", list, err)
	}
	for _, bad := range []string{"", "../x", "a/b", ".", ".."} {
		if _, err := m.Allocate(bad, 1); !errors.Is(err, storage.ErrInvalidName) {
			t.Errorf("Allocate(%q): %v", bad, err)
		}
		if err := m.Deallocate(bad); !errors.Is(err, storage.ErrInvalidName) {
			t.Errorf("Deallocate(%q): %v", bad, err)
		}
	}
	for _, size := range []int64{0, -1, 1 << 50} {
		if _, err := m.Allocate("sz", size); !errors.Is(err, storage.ErrInvalidSize) {
			t.Errorf("Allocate(size %d): %v", size, err)
		}
	}
	if err := m.Deallocate("100-1-vda"); err != nil {
		t.Fatal(err)
	}
	if err := m.Deallocate("100-1-vda"); err != nil {
		t.Fatalf("second Deallocate: %v", err)
	}
	if m.Exists("100-1-vda") {
		t.Fatal("exists after Deallocate")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file after Deallocate: %v", err)
	}
	if list, _ := m.List(); len(list) != 1 {
		t.Fatalf("List after Deallocate = %+v", list)
	}
}

func TestLifecycleOnFake(t *testing.T) {
	checkLifecycle(t, newOnFake(t, 1<<30))
}

func TestSizesCountAgainstThePool(t *testing.T) {
	m := newOnFake(t, 100*MiB)
	if _, err := m.Allocate("a", 60); err != nil {
		t.Fatal(err)
	}
	_, err := m.Allocate("b", 60)
	if e, ok := errors.AsType[pkg.ErrNotEnoughSpace](err); !ok || e.DeviceType != pkg.SSDDevice {
		t.Fatalf("over capacity: %v, want ErrNotEnoughSpace{ssd}", err)
	}
	if m.Exists("b") {
		t.Fatal("refused disk exists")
	}
	if err := m.Deallocate("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Allocate("b", 60); err != nil {
		t.Fatalf("space of a deallocated disk not back: %v", err)
	}
}

func TestConfig(t *testing.T) {
	if err := (Config{}).Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Fatal(err)
	}
	if _, err := New(DefaultConfig(), nil, slog.New(slog.DiscardHandler)); !errors.Is(err, ErrInvalidConfig) {
		t.Fatal(err)
	}
}
