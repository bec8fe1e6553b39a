// Package storagetest has a Fake storage module for unit tests of other
// packages and the conformance suite (Run) that the real storage.Module, on
// btrfs loop disks, and the Fake both pass.
package storagetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/storage"
)

// Factory returns a fresh storage.Storage for one subtest, cleaned up by
// t.Cleanup. It must have exactly one usable pool of each type (SSD, HDD),
// nothing allocated but the cache, which must reserve less than a fifth of
// its pool, and a Monitor interval under one second.
type Factory func(t *testing.T) storage.Storage

// Run runs the conformance suite against the implementations made by newS.
func Run(t *testing.T, newS Factory) {
	tests := []struct {
		name string
		fn   func(*testing.T, storage.Storage)
	}{
		{"VolumeLifecycle", testVolumeLifecycle},
		{"BadInputCreatesNothing", testBadInput},
		{"NameTakenWithOtherSize", testNameTaken},
		{"ResizeVolume", testResize},
		{"ResizeBadInput", testResizeBadInput},
		{"ZDBResizeAndRelease", testZDBResizeRelease},
		{"NotEnoughSpace", testNotEnoughSpace},
		{"Total", testTotal},
		{"CacheFS", testCacheFS},
		{"ZDBAllocation", testZDB},
		{"ZDBBadInput", testZDBBadInput},
		{"SnapshotRestore", testSnapshots},
		{"VDiskAreaCounts", testVDiskArea},
		{"Monitor", testMonitor},
		{"ConcurrentCreates", testConcurrent},
		{"NothingBroken", testNothingBroken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newS(t)) })
	}
}

const mib = 1 << 20

func mustTotal(t *testing.T, s storage.Storage, kind pkg.DeviceType) uint64 {
	t.Helper()
	n, err := s.Total(kind)
	if err != nil || n == 0 {
		t.Fatalf("Total(%s) = %d, %v; want > 0", kind, n, err)
	}
	return n
}

func names(t *testing.T, s storage.Storage) []string {
	t.Helper()
	fss, err := s.ListFilesystems()
	if err != nil {
		t.Fatalf("ListFilesystems: %v", err)
	}
	var out []string
	for _, fs := range fss {
		out = append(out, fs.Name)
	}
	slices.Sort(out)
	return out
}

func testVolumeLifecycle(t *testing.T, s storage.Storage) {
	for _, typ := range []pkg.DeviceType{pkg.SSDDevice, pkg.HDDDevice} {
		name := "vol-" + string(typ)
		fs, err := s.CreateFilesystem(name, 16*mib, typ)
		if err != nil {
			t.Fatalf("CreateFilesystem(%s): %v", name, err)
		}
		if fs.Name != name || fs.DiskType != typ || fs.FsType != "btrfs" || fs.Usage.Size != 16*mib || fs.ID == 0 {
			t.Fatalf("CreateFilesystem = %+v", fs)
		}
		data := []byte("hello " + name)
		if err := os.WriteFile(filepath.Join(fs.Path, "f"), data, 0o644); err != nil {
			t.Fatalf("write into volume: %v", err)
		}
		again, err := s.CreateFilesystem(name, 16*mib, typ)
		if err != nil || again.Path != fs.Path || again.ID != fs.ID {
			t.Fatalf("second CreateFilesystem = %+v, %v; want the same volume %+v", again, err, fs)
		}
		got, err := s.Path(name)
		if err != nil || got.Path != fs.Path || got.DiskType != typ || got.Usage.Size != 16*mib {
			t.Fatalf("Path(%s) = %+v, %v", name, got, err)
		}
		if b, err := os.ReadFile(filepath.Join(got.Path, "f")); err != nil || string(b) != string(data) {
			t.Fatalf("read back %q, %v; want %q", b, err, data)
		}
	}
	if got, want := names(t, s), []string{"vol-hdd", "vol-ssd"}; !slices.Equal(got, want) {
		t.Fatalf("ListFilesystems names = %v, want %v", got, want)
	}
	for _, name := range []string{"vol-ssd", "vol-hdd"} {
		fs, _ := s.Path(name)
		if err := s.ReleaseFilesystem(name); err != nil {
			t.Fatalf("ReleaseFilesystem(%s): %v", name, err)
		}
		if _, err := s.Path(name); !errors.Is(err, storage.ErrNotFound) || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Path after release: %v, want ErrNotFound", err)
		}
		if _, err := os.Stat(filepath.Join(fs.Path, "f")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("volume data still there after release: %v", err)
		}
		if err := s.ReleaseFilesystem(name); err != nil {
			t.Fatalf("second ReleaseFilesystem(%s): %v, want nil", name, err)
		}
	}
	if got := names(t, s); len(got) != 0 {
		t.Fatalf("ListFilesystems after release = %v", got)
	}
}

func testBadInput(t *testing.T, s storage.Storage) {
	before := names(t, s)
	for _, name := range []string{"", ".", "..", "../x", "a/b", "/abs", ".hidden", "nul\x00x",
		strings.Repeat("n", storage.MaxNameLen+1), "zdbx", storage.CacheVolume, storage.VDisksVolume} {
		if _, err := s.CreateFilesystem(name, mib, pkg.SSDDevice); !errors.Is(err, storage.ErrInvalidName) {
			t.Errorf("CreateFilesystem(%q): %v, want ErrInvalidName", name, err)
		}
	}
	for _, size := range []uint64{0, storage.MaxSizeBytes + 1, math.MaxUint64} {
		if _, err := s.CreateFilesystem("ok", size, pkg.SSDDevice); !errors.Is(err, storage.ErrInvalidSize) {
			t.Errorf("CreateFilesystem(size %d): %v, want ErrInvalidSize", size, err)
		}
	}
	for _, typ := range []pkg.DeviceType{"", "nvme", "SSD "} {
		_, err := s.CreateFilesystem("ok", mib, typ)
		if e, ok := errors.AsType[pkg.ErrInvalidDeviceType](err); !ok || e.DeviceType != typ {
			t.Errorf("CreateFilesystem(type %q): %v, want ErrInvalidDeviceType", typ, err)
		}
	}
	for _, name := range []string{"", "../x", "a/b"} {
		if err := s.ReleaseFilesystem(name); !errors.Is(err, storage.ErrInvalidName) {
			t.Errorf("ReleaseFilesystem(%q): %v, want ErrInvalidName", name, err)
		}
		if _, err := s.Path(name); !errors.Is(err, storage.ErrInvalidName) {
			t.Errorf("Path(%q): %v, want ErrInvalidName", name, err)
		}
	}
	if after := names(t, s); !slices.Equal(before, after) {
		t.Fatalf("bad input changed the volumes: %v → %v", before, after)
	}
}

func testNameTaken(t *testing.T, s storage.Storage) {
	if _, err := s.CreateFilesystem("taken", 8*mib, pkg.SSDDevice); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateFilesystem("taken", 9*mib, pkg.SSDDevice); !errors.Is(err, storage.ErrExists) {
		t.Errorf("same name, other size: %v, want ErrExists", err)
	}
	if _, err := s.CreateFilesystem("taken", 8*mib, pkg.HDDDevice); !errors.Is(err, storage.ErrExists) {
		t.Errorf("same name, other type: %v, want ErrExists", err)
	}
	if fs, err := s.Path("taken"); err != nil || fs.Usage.Size != 8*mib || fs.DiskType != pkg.SSDDevice {
		t.Errorf("Path(taken) = %+v, %v; want unchanged", fs, err)
	}
}

func wantNoSpace(t *testing.T, err error, typ pkg.DeviceType, what string) {
	t.Helper()
	e, ok := errors.AsType[pkg.ErrNotEnoughSpace](err)
	if !ok || e.DeviceType != typ {
		t.Fatalf("%s: %v, want ErrNotEnoughSpace{%s}", what, err, typ)
	}
}

func testNotEnoughSpace(t *testing.T, s storage.Storage) {
	for _, typ := range []pkg.DeviceType{pkg.SSDDevice, pkg.HDDDevice} {
		total := mustTotal(t, s, typ)
		_, err := s.CreateFilesystem("huge", total+1, typ)
		wantNoSpace(t, err, typ, "volume over the total")
		big := total / 5 * 3
		a := "a-" + string(typ)
		if _, err := s.CreateFilesystem(a, big, typ); err != nil {
			t.Fatalf("3/5 of the pool: %v", err)
		}
		_, err = s.CreateFilesystem("b", big, typ)
		wantNoSpace(t, err, typ, "reservations over the pool")
		if _, err := s.Path("b"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("refused volume exists: %v", err)
		}
		if err := s.ReleaseFilesystem(a); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateFilesystem("b", big, typ); err != nil {
			t.Fatalf("after release, space is back: %v", err)
		}
		if err := s.ReleaseFilesystem("b"); err != nil {
			t.Fatal(err)
		}
	}
}

func testTotal(t *testing.T, s storage.Storage) {
	mustTotal(t, s, pkg.SSDDevice)
	mustTotal(t, s, pkg.HDDDevice)
	if _, err := s.Total("floppy"); !errors.As(err, new(pkg.ErrInvalidDeviceType)) {
		t.Fatalf("Total(floppy): %v, want ErrInvalidDeviceType", err)
	}
}

func testCacheFS(t *testing.T, s storage.Storage) {
	fs, err := s.GetCacheFS()
	if err != nil {
		t.Fatalf("GetCacheFS: %v", err)
	}
	if fs.Name != storage.CacheVolume {
		t.Fatalf("GetCacheFS name %q", fs.Name)
	}
	p := filepath.Join(fs.Path, "state")
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatalf("cache not writable: %v", err)
	}
	if slices.Contains(names(t, s), storage.CacheVolume) {
		t.Fatal("cache listed by ListFilesystems")
	}
}

func readNS(t *testing.T, a pkg.Allocation, ns string) storage.NamespaceDescriptor {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(a.VolumePath, ns, storage.NamespaceFile))
	if err != nil {
		t.Fatalf("namespace descriptor: %v", err)
	}
	d, err := storage.DecodeNamespace(b)
	if err != nil {
		t.Fatalf("namespace descriptor: %v", err)
	}
	return d
}

func testZDB(t *testing.T, s storage.Storage) {
	a1, err := s.Allocate("ns1", pkg.HDDDevice, 10*mib, pkg.ZDBModeUser)
	if err != nil {
		t.Fatalf("Allocate(ns1): %v", err)
	}
	if !strings.HasPrefix(a1.VolumeID, storage.ZDBPrefix) || filepath.Base(a1.VolumePath) != a1.VolumeID {
		t.Fatalf("allocation %+v", a1)
	}
	if d := readNS(t, a1, "ns1"); d.Name != "ns1" || d.MaxSizeBytes != 10*mib {
		t.Fatalf("descriptor %+v", d)
	}
	if again, err := s.Allocate("ns1", pkg.HDDDevice, 10*mib, pkg.ZDBModeUser); err != nil || again != a1 {
		t.Fatalf("second Allocate = %+v, %v; want %+v", again, err, a1)
	}
	if _, err := s.Allocate("ns1", pkg.HDDDevice, 10*mib, pkg.ZDBModeSeq); !errors.Is(err, storage.ErrModeMismatch) {
		t.Fatalf("Allocate with another mode: %v, want ErrModeMismatch", err)
	}
	if found, err := s.Find("ns1"); err != nil || found != a1 {
		t.Fatalf("Find(ns1) = %+v, %v", found, err)
	}
	if _, err := s.Find("nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Find(nope): %v, want ErrNotFound", err)
	}
	a2, err := s.Allocate("ns2", pkg.HDDDevice, 10*mib, pkg.ZDBModeSeq)
	if err != nil {
		t.Fatal(err)
	}
	if a2.VolumeID == a1.VolumeID {
		t.Fatalf("seq namespace placed in the user-mode volume %s", a1.VolumeID)
	}
	a3, err := s.Allocate("ns3", pkg.HDDDevice, 10*mib, pkg.ZDBModeUser)
	if err != nil || a3 != a1 {
		t.Fatalf("ns3 = %+v, %v; want it packed with ns1 in %s", a3, err, a1.VolumeID)
	}
	if !slices.Contains(names(t, s), a1.VolumeID) {
		t.Fatalf("zdb volume %s not listed", a1.VolumeID)
	}
	total := mustTotal(t, s, pkg.HDDDevice)
	_, err = s.Allocate("big", pkg.HDDDevice, total, pkg.ZDBModeUser)
	wantNoSpace(t, err, pkg.HDDDevice, "namespace over the free space")
	_, err = s.CreateFilesystem("v", total-25*mib, pkg.HDDDevice)
	wantNoSpace(t, err, pkg.HDDDevice, "volume over what namespaces left")
}

func testZDBBadInput(t *testing.T, s storage.Storage) {
	if _, err := s.Allocate("../x", pkg.HDDDevice, mib, pkg.ZDBModeUser); !errors.Is(err, storage.ErrInvalidName) {
		t.Errorf("bad namespace name: %v", err)
	}
	if _, err := s.Allocate("n", "tape", mib, pkg.ZDBModeUser); !errors.As(err, new(pkg.ErrInvalidDeviceType)) {
		t.Errorf("bad type: %v", err)
	}
	if _, err := s.Allocate("n", pkg.HDDDevice, 0, pkg.ZDBModeUser); !errors.Is(err, storage.ErrInvalidSize) {
		t.Errorf("zero size: %v", err)
	}
	if _, err := s.Allocate("n", pkg.HDDDevice, mib, "direct"); !errors.Is(err, storage.ErrInvalidMode) {
		t.Errorf("bad mode: %v", err)
	}
	if _, err := s.Find("n"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("refused namespace exists: %v", err)
	}
}

func testSnapshots(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	fs, err := s.CreateFilesystem("snapvol", 32*mib, pkg.SSDDevice)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(fs.Path, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a", "one")
	snap, err := s.SnapshotVolume(ctx, "snapvol", "s1")
	if err != nil {
		t.Fatalf("SnapshotVolume: %v", err)
	}
	if again, err := s.SnapshotVolume(ctx, "snapvol", "s1"); err != nil || again != snap {
		t.Fatalf("second SnapshotVolume = %+v, %v; want %+v", again, err, snap)
	}
	write("a", "two")
	write("b", "new")
	if b, err := os.ReadFile(filepath.Join(snap.Path, "a")); err != nil || string(b) != "one" {
		t.Fatalf("snapshot content %q, %v", b, err)
	}
	list, err := s.Snapshots(ctx, "snapvol")
	if err != nil || len(list) != 1 || list[0].Name != "s1" || list[0].Volume != "snapvol" {
		t.Fatalf("Snapshots = %+v, %v", list, err)
	}
	if err := s.RestoreSnapshot(ctx, "snapvol", "s1"); err != nil {
		t.Fatalf("RestoreSnapshot: %v", err)
	}
	after, err := s.Path("snapvol")
	if err != nil || after.Path != fs.Path || after.Usage.Size != 32*mib {
		t.Fatalf("Path after restore = %+v, %v", after, err)
	}
	if b, err := os.ReadFile(filepath.Join(fs.Path, "a")); err != nil || string(b) != "one" {
		t.Fatalf("restored content %q, %v; want one", b, err)
	}
	if _, err := os.Stat(filepath.Join(fs.Path, "b")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file written after the snapshot survived the restore: %v", err)
	}
	write("c", "after restore")
	if err := s.RestoreSnapshot(ctx, "snapvol", "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("restore of a missing snapshot: %v", err)
	}
	if _, err := s.SnapshotVolume(ctx, "novol", "s"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("snapshot of a missing volume: %v", err)
	}
	for _, bad := range []string{"", "../x", "a/b", "."} {
		if _, err := s.SnapshotVolume(ctx, "snapvol", bad); !errors.Is(err, storage.ErrInvalidName) {
			t.Fatalf("snapshot name %q: %v", bad, err)
		}
	}
	if err := s.DeleteSnapshot(ctx, "snapvol", "s1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSnapshot(ctx, "snapvol", "s1"); err != nil {
		t.Fatalf("second DeleteSnapshot: %v", err)
	}
	if list, err := s.Snapshots(ctx, "snapvol"); err != nil || len(list) != 0 {
		t.Fatalf("Snapshots after delete = %+v, %v", list, err)
	}
	if _, err := s.SnapshotVolume(ctx, "snapvol", "s2"); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseFilesystem("snapvol"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Snapshots(ctx, "snapvol"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("snapshots of a released volume: %v", err)
	}
	if got := names(t, s); len(got) != 0 {
		t.Fatalf("volumes left after release: %v", got)
	}
}

func testVDiskArea(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	total := mustTotal(t, s, pkg.SSDDevice)
	big := total / 5 * 3
	var file string
	dir, err := s.ReserveVDisk(ctx, big, func(dir string) error {
		file = filepath.Join(dir, "disk1")
		f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Truncate(int64(big))
	})
	if err != nil {
		t.Fatalf("ReserveVDisk: %v", err)
	}
	dirs, err := s.VDiskDirs(ctx)
	if err != nil || !slices.Contains(dirs, dir) {
		t.Fatalf("VDiskDirs = %v, %v; want %s", dirs, err, dir)
	}
	if slices.Contains(names(t, s), storage.VDisksVolume) {
		t.Fatal("vdisks volume listed by ListFilesystems")
	}
	_, err = s.CreateFilesystem("v", big, pkg.SSDDevice)
	wantNoSpace(t, err, pkg.SSDDevice, "volume over what vdisks left")
	_, err = s.ReserveVDisk(ctx, big, func(string) error { t.Error("create called without room"); return nil })
	wantNoSpace(t, err, pkg.SSDDevice, "vdisk over the free space")
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateFilesystem("v", big, pkg.SSDDevice); err != nil {
		t.Fatalf("space of a removed vdisk not back: %v", err)
	}
	wantErr := errors.New("create failed")
	if _, err := s.ReserveVDisk(ctx, mib, func(string) error { return wantErr }); !errors.Is(err, wantErr) {
		t.Fatalf("ReserveVDisk create error: %v", err)
	}
}

func testMonitor(t *testing.T, s storage.Storage) {
	ctx, cancel := context.WithCancel(t.Context())
	ch := s.Monitor(ctx)
	select {
	case stats, ok := <-ch:
		if !ok || len(stats) < 2 {
			t.Fatalf("Monitor sent %v (open %v), want 2 pools", stats, ok)
		}
		for label, st := range stats {
			if st.Total == 0 || st.Counters == nil {
				t.Fatalf("pool %s stats %+v", label, st)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Monitor sent nothing in 10s")
	}
	cancel()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("Monitor channel not closed after cancel")
		}
	}
}

func testConcurrent(t *testing.T, s storage.Storage) {
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			typ := pkg.SSDDevice
			if i%2 == 1 {
				typ = pkg.HDDDevice
			}
			_, errs[i] = s.CreateFilesystem(fmt.Sprintf("c%d", i), 4*mib, typ)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := names(t, s); len(got) != n {
		t.Fatalf("ListFilesystems = %v, want %d volumes", got, n)
	}
}

func testNothingBroken(t *testing.T, s storage.Storage) {
	if b := s.BrokenPools(); len(b) != 0 {
		t.Errorf("BrokenPools = %v", b)
	}
	if b := s.BrokenDevices(); len(b) != 0 {
		t.Errorf("BrokenDevices = %v", b)
	}
}
