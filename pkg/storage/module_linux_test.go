package storage_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/internal/btrfs"
	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/storage"
	"github.com/zos-go/zos/pkg/storage/storagetest"
)

var rootTools = []string{"mkfs.btrfs", "btrfs", "blkid"}

func TestModuleConformance(t *testing.T) {
	testutil.RequireRoot(t, rootTools...)
	testutil.CheckLeaks(t)
	storagetest.Run(t, func(t *testing.T) storage.Storage { return twoPoolModule(t) })
}

func writeBytes(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	buf := make([]byte, mib)
	for i := range buf {
		buf[i] = byte(i)
	}
	for written := 0; written < n; written += len(buf) {
		if _, err := f.Write(buf); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func TestQuotaEnforcedAndReleaseLeavesNoQgroup(t *testing.T) {
	testutil.RequireRoot(t, rootTools...)
	testutil.CheckLeaks(t)
	for _, mode := range []storage.QuotaMode{storage.QuotaSimple, storage.QuotaFull} {
		t.Run(string(mode), func(t *testing.T) {
			cfg := testConfig(t, testutil.TempDir(t), testutil.LoopDisk(t, 512*mib, false))
			cfg.Quota = mode
			m := openModule(t, cfg)
			fs, err := m.CreateFilesystem("quota", 8*mib, pkg.SSDDevice)
			if err != nil {
				t.Fatal(err)
			}
			mnt := poolOf(fs)
			if got := cliLimit(t, mnt, fs.ID); got != "8388608" {
				t.Fatalf("btrfs CLI sees limit %s, want 8388608", got)
			}
			if err := writeBytes(filepath.Join(fs.Path, "small"), 4*mib); err != nil {
				t.Fatalf("write under the limit: %v", err)
			}
			if err := writeBytes(filepath.Join(fs.Path, "big"), 16*mib); !errors.Is(err, unix.EDQUOT) {
				t.Fatalf("write past the limit: %v, want EDQUOT", err)
			}
			if err := m.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got, err := m.Path("quota"); err != nil || got.Usage.Used < 4*mib || got.Usage.Size != 8*mib {
				t.Fatalf("usage %+v, %v", got.Usage, err)
			}
			if err := m.ReleaseFilesystem("quota"); err != nil {
				t.Fatal(err)
			}
			testutil.WaitFor(t, 30*time.Second, "no stale qgroup", func() error {
				_ = btrfs.Sync(mnt)
				if err := m.Scan(t.Context()); err != nil {
					return err
				}
				if stale := staleQgroups(t, mnt); len(stale) > 0 {
					return errors.New("stale qgroups: " + strings.Join(stale, " "))
				}
				return nil
			})
		})
	}
}

func TestBadInputCreatesNoSubvolume(t *testing.T) {
	testutil.RequireRoot(t, rootTools...)
	testutil.CheckLeaks(t)
	m := openModule(t, testConfig(t, testutil.TempDir(t), testutil.LoopDisk(t, 256*mib, false)))
	cache, err := m.GetCacheFS()
	if err != nil {
		t.Fatal(err)
	}
	mnt := poolOf(cache)
	before := btrfsCLI(t, "subvolume", "list", mnt)
	for _, name := range []string{"", "../x", "a/b", ".", "..", strings.Repeat("x", 256)} {
		if _, err := m.CreateFilesystem(name, mib, pkg.SSDDevice); !errors.Is(err, storage.ErrInvalidName) {
			t.Errorf("name %q: %v", name, err)
		}
	}
	for _, size := range []uint64{0, 1 << 62} {
		if _, err := m.CreateFilesystem("v", size, pkg.SSDDevice); !errors.Is(err, storage.ErrInvalidSize) {
			t.Errorf("size %d: %v", size, err)
		}
	}
	if _, err := m.CreateFilesystem("v", mib, "nvme"); !errors.As(err, new(pkg.ErrInvalidDeviceType)) {
		t.Errorf("type nvme: %v", err)
	}
	if _, err := m.CreateFilesystem("v", mib, pkg.HDDDevice); !errors.As(err, new(pkg.ErrNotEnoughSpace)) {
		t.Errorf("no HDD pool: %v, want ErrNotEnoughSpace", err)
	}
	if after := btrfsCLI(t, "subvolume", "list", mnt); after != before {
		t.Fatalf("bad input created subvolumes:\n%s\n→\n%s", before, after)
	}
	entries, _ := os.ReadDir(mnt)
	for _, e := range entries {
		if e.Name() == "x" || e.Name() == "v" {
			t.Fatalf("bad input left %s", e.Name())
		}
	}
}

func TestPolicies(t *testing.T) {
	testutil.RequireRoot(t, rootTools...)
	testutil.CheckLeaks(t)
	cases := []struct {
		name      string
		policy    pkg.StoragePolicy
		disks     int
		pools     int
		dataFlag  string // profile in `btrfs filesystem df`
		sizeDisks int    // usable size of one pool, in disks
	}{
		{"single", pkg.DefaultPolicy, 2, 2, "single", 1},
		{"single-2disks", pkg.StoragePolicy{Raid: pkg.Single, Disks: 2}, 2, 1, "single", 2},
		{"raid0", pkg.StoragePolicy{Raid: pkg.Raid0}, 2, 1, "RAID0", 2},
		{"raid1", pkg.StoragePolicy{Raid: pkg.Raid1}, 2, 1, "RAID1", 1},
		{"raid10", pkg.StoragePolicy{Raid: pkg.Raid10}, 4, 1, "RAID10", 2},
		{"maxpools", pkg.StoragePolicy{Raid: pkg.Single, MaxPools: 1}, 3, 1, "single", 1},
		{"null", pkg.NullPolicy, 1, 0, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var devs []string
			for range tc.disks {
				devs = append(devs, testutil.LoopDisk(t, 256*mib, false))
			}
			cfg := testConfig(t, testutil.TempDir(t), devs...)
			cfg.Policy = tc.policy
			m := openModule(t, cfg)
			total, _ := m.Total(pkg.SSDDevice)
			if want := uint64(tc.pools*tc.sizeDisks) * 256 * mib; total != want {
				t.Fatalf("Total(ssd) = %d, want %d", total, want)
			}
			stats := <-m.Monitor(t.Context())
			if len(stats) != tc.pools {
				t.Fatalf("%d pools, want %d", len(stats), tc.pools)
			}
			for _, st := range stats {
				df := btrfsCLI(t, "filesystem", "df", st.Path)
				if !strings.Contains(df, "Data, "+tc.dataFlag) {
					t.Fatalf("pool %s: df %q, want data %s", st.Path, df, tc.dataFlag)
				}
				if len(st.Counters) != tc.disks/max(tc.pools, 1) && tc.name != "maxpools" {
					t.Fatalf("pool %s: counters of %d devices", st.Path, len(st.Counters))
				}
			}
			if tc.pools > 0 {
				if _, err := m.CreateFilesystem("v", 64*mib, pkg.SSDDevice); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestReadoptAfterRestart(t *testing.T) {
	testutil.RequireRoot(t, rootTools...)
	testutil.CheckLeaks(t)
	ssd := testutil.LoopDisk(t, 512*mib, false)
	hdd := testutil.LoopDisk(t, 512*mib, true)
	cfg := testConfig(t, testutil.TempDir(t), ssd, hdd)
	cfg.CacheMount = filepath.Join(cfg.Root, "var-cache")

	a, err := storage.New(cfg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	if err := a.Scan(t.Context()); err != nil {
		t.Fatal(err)
	}
	fs, err := a.CreateFilesystem("keep", 32*mib, pkg.HDDDevice)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fs.Path, "data"), []byte("survives"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.CacheMount, "state"), []byte("cached"), 0o644); err != nil {
		t.Fatal(err)
	}
	alloc, err := a.Allocate("ns", pkg.HDDDevice, 64*mib, pkg.ZDBModeSeq)
	if err != nil {
		t.Fatal(err)
	}
	totalSSD, _ := a.Total(pkg.SSDDevice)

	// a restart while the pools stay mounted (the agent restarts, workloads go on)
	b := openModule(t, cfg)
	if got, err := b.Path("keep"); err != nil || got.Path != fs.Path || got.Usage.Size != 32*mib {
		t.Fatalf("after restart, Path = %+v, %v", got, err)
	}
	if err := a.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	// a leftover of an interrupted create, found at the next start
	mnt := poolOf(fs)
	if err := unix.Mount(hdd, mnt, "btrfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	if err := btrfs.CreateSubvolume(mnt, ".new-0123456789abcdef", 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Unmount(mnt, 0); err != nil {
		t.Fatal(err)
	}

	// a cold start: everything is mounted again, nothing reformatted
	c := openModule(t, cfg)
	got, err := c.Path("keep")
	if err != nil || got.Usage.Size != 32*mib || got.DiskType != pkg.HDDDevice {
		t.Fatalf("after cold start, Path = %+v, %v", got, err)
	}
	if b, err := os.ReadFile(filepath.Join(got.Path, "data")); err != nil || string(b) != "survives" {
		t.Fatalf("data after cold start: %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(cfg.CacheMount, "state")); err != nil || string(b) != "cached" {
		t.Fatalf("cache after cold start: %q, %v", b, err)
	}
	if found, err := c.Find("ns"); err != nil || found != alloc {
		t.Fatalf("Find after cold start = %+v, %v; want %+v", found, err, alloc)
	}
	if _, err := c.Allocate("ns", pkg.HDDDevice, 64*mib, pkg.ZDBModeUser); !errors.Is(err, storage.ErrModeMismatch) {
		t.Fatalf("mode change after restart: %v, want ErrModeMismatch", err)
	}
	if total, _ := c.Total(pkg.SSDDevice); total != totalSSD {
		t.Fatalf("Total(ssd) %d after restart, was %d", total, totalSSD)
	}
	// the reservations came back from the pool: 32 MiB volume + 64 MiB namespace
	totalHDD, _ := c.Total(pkg.HDDDevice)
	if _, err := c.CreateFilesystem("fill", totalHDD-96*mib+1, pkg.HDDDevice); !errors.As(err, new(pkg.ErrNotEnoughSpace)) {
		t.Fatalf("reservations lost after restart: %v", err)
	}
	if _, err := c.CreateFilesystem("fill", totalHDD-96*mib, pkg.HDDDevice); err != nil {
		t.Fatalf("exact fill: %v", err)
	}
	if strings.Contains(btrfsCLI(t, "subvolume", "list", mnt), ".new-") {
		t.Fatal("leftover of an interrupted create not removed")
	}
}

func TestForeignDisksLeftAlone(t *testing.T) {
	testutil.RequireRoot(t, append(rootTools, "mkfs.ext4")...)
	testutil.CheckLeaks(t)
	ext4 := testutil.LoopDisk(t, 256*mib, false)
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", ext4).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	other := testutil.LoopDisk(t, 256*mib, false)
	if err := btrfs.Mkfs(t.Context(), "someone-else", "single", other); err != nil {
		t.Fatal(err)
	}
	free := testutil.LoopDisk(t, 256*mib, false)
	m := openModule(t, testConfig(t, testutil.TempDir(t), ext4, other, free))
	foreign := m.ForeignDevices()
	if len(foreign) != 2 || foreign[0].Path > foreign[1].Path {
		t.Fatalf("ForeignDevices = %+v", foreign)
	}
	byPath := map[string]string{foreign[0].Path: foreign[0].Content, foreign[1].Path: foreign[1].Content}
	if byPath[ext4] != "ext4" || !strings.Contains(byPath[other], "someone-else") {
		t.Fatalf("ForeignDevices = %+v", foreign)
	}
	if out, _ := exec.Command("blkid", "-p", "-s", "TYPE", "-o", "value", ext4).Output(); strings.TrimSpace(string(out)) != "ext4" {
		t.Fatalf("ext4 disk touched: %q", out)
	}
	f, _ := os.Open(other)
	sb, err := btrfs.ReadSuperblock(f)
	f.Close()
	if err != nil || sb.Label != "someone-else" {
		t.Fatalf("foreign btrfs touched: %+v, %v", sb, err)
	}
	if total, _ := m.Total(pkg.SSDDevice); total != 256*mib {
		t.Fatalf("Total = %d, want only the free disk", total)
	}
	if len(m.BrokenDevices()) != 0 {
		t.Fatalf("BrokenDevices = %v", m.BrokenDevices())
	}
}

// vanish makes a loop device look like a disk that went away: its backing
// file is emptied and the device's capacity re-read (0 bytes, I/O fails).
func vanish(t *testing.T, dev string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), "loop/backing_file"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(strings.TrimSpace(string(b)), 0); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.IoctlSetInt(int(f.Fd()), unix.LOOP_SET_CAPACITY, 0); err != nil {
		t.Fatal(err)
	}
}

func TestBrokenDiskAndPool(t *testing.T) {
	testutil.RequireRoot(t, rootTools...)
	testutil.CheckLeaks(t)
	ssd1 := testutil.LoopDisk(t, 256*mib, false)
	ssd2 := testutil.LoopDisk(t, 256*mib, false)
	hdd := testutil.LoopDisk(t, 256*mib, true)
	gone := testutil.LoopDisk(t, 256*mib, true)
	vanish(t, gone)
	missing := filepath.Join(testutil.TempDir(t), "no-such-disk")
	m := openModule(t, testConfig(t, testutil.TempDir(t), ssd1, ssd2, hdd, gone, missing))

	broken := m.BrokenDevices()
	var paths []string
	for _, b := range broken {
		paths = append(paths, b.Path)
		if b.Err == nil {
			t.Fatalf("broken device %s without error", b.Path)
		}
	}
	if !slices.Equal(paths, sortedStrings(gone, missing)) {
		t.Fatalf("BrokenDevices = %v, want %s and %s", broken, gone, missing)
	}
	if total, _ := m.Total(pkg.HDDDevice); total != 256*mib {
		t.Fatalf("Total(hdd) = %d: the working HDD should be the only one", total)
	}
	if _, err := m.CreateFilesystem("h", 16*mib, pkg.HDDDevice); err != nil {
		t.Fatalf("the other disks keep working: %v", err)
	}

	// A pool whose mount disappears is mounted again at the next scan,
	// its volumes as they were.
	s1, err := m.CreateFilesystem("s1", 16*mib, pkg.SSDDevice)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s1.Path, "kept"), []byte("still here"), 0o644); err != nil {
		t.Fatal(err)
	}
	pool := poolOf(s1)
	if err := unix.Unmount(pool, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	if err := m.Scan(t.Context()); err != nil {
		t.Fatal(err)
	}
	if bp := m.BrokenPools(); len(bp) != 0 {
		t.Fatalf("BrokenPools = %+v after the mount came back", bp)
	}
	again, err := m.Path("s1")
	if err != nil {
		t.Fatalf("volume after the pool was mounted again: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(again.Path, "kept")); err != nil || string(b) != "still here" {
		t.Fatalf("data after the pool was mounted again: %q %v", b, err)
	}

	// One that cannot be mounted again (another filesystem took its mount
	// point) is reported, and the others keep working.
	if err := unix.Unmount(pool, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", pool, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(pool, unix.MNT_DETACH) })
	if err := m.Scan(t.Context()); err != nil {
		t.Fatal(err)
	}
	bp := m.BrokenPools()
	if len(bp) != 1 || !strings.HasSuffix(pool, bp[0].Label) || !errors.Is(bp[0].Err, storage.ErrPoolBroken) {
		t.Fatalf("BrokenPools = %+v", bp)
	}
	if total, _ := m.Total(pkg.SSDDevice); total != 256*mib {
		t.Fatalf("Total(ssd) = %d after a pool broke", total)
	}
	if _, err := m.Path("s1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("volume of a broken pool: %v", err)
	}
	s2, err := m.CreateFilesystem("s2", 16*mib, pkg.SSDDevice)
	if err != nil || poolOf(s2) == pool {
		t.Fatalf("create on the healthy SSD pool: %+v, %v", s2, err)
	}
	// Its mount point freed, the next scan brings it back.
	if err := unix.Unmount(pool, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	if err := m.Scan(t.Context()); err != nil {
		t.Fatal(err)
	}
	if bp := m.BrokenPools(); len(bp) != 0 {
		t.Fatalf("BrokenPools = %+v once the mount point is free", bp)
	}
	if _, err := m.Path("s1"); err != nil {
		t.Fatalf("volume once its pool is back: %v", err)
	}
}

func sortedStrings(s ...string) []string { slices.Sort(s); return s }

func TestHotAddedDiskPickedUp(t *testing.T) {
	testutil.RequireRoot(t, rootTools...)
	testutil.CheckLeaks(t)
	dir := testutil.TempDir(t)
	disks := filepath.Join(dir, "disks")
	if err := os.Mkdir(disks, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(testutil.LoopDisk(t, 256*mib, false), filepath.Join(disks, "a")); err != nil {
		t.Fatal(err)
	}
	m := openModule(t, testConfig(t, dir, filepath.Join(disks, "*")))
	if _, err := m.CreateFilesystem("h", 16*mib, pkg.HDDDevice); !errors.As(err, new(pkg.ErrNotEnoughSpace)) {
		t.Fatalf("no HDD yet: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := m.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	defer wg.Wait()
	defer cancel()
	if err := os.Symlink(testutil.LoopDisk(t, 256*mib, true), filepath.Join(disks, "b")); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "hot-added HDD in Total", func() error {
		if total, _ := m.Total(pkg.HDDDevice); total == 0 {
			return errors.New("no HDD capacity yet")
		}
		return nil
	})
	if _, err := m.CreateFilesystem("h", 16*mib, pkg.HDDDevice); err != nil {
		t.Fatalf("volume on the hot-added disk: %v", err)
	}
}

func TestCacheDegradedWhenNoPoolFits(t *testing.T) {
	testutil.RequireRoot(t, rootTools...)
	testutil.CheckLeaks(t)
	cfg := testConfig(t, testutil.TempDir(t), testutil.LoopDisk(t, 256*mib, false))
	cfg.CacheSizeBytes = 1 << 30
	m := openModule(t, cfg)
	if !m.CacheDegraded() {
		t.Fatal("cache of 1 GiB on a 256 MiB pool: not degraded")
	}
	fs, err := m.GetCacheFS()
	if err != nil || fs.FsType != "tmpfs" {
		t.Fatalf("GetCacheFS = %+v, %v", fs, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(fs.Path, &st); err != nil || st.Type != unix.TMPFS_MAGIC {
		t.Fatalf("%s is not a tmpfs: %v", fs.Path, err)
	}
	if err := os.WriteFile(filepath.Join(fs.Path, "state"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// the pool still serves volumes
	if _, err := m.CreateFilesystem("v", 16*mib, pkg.SSDDevice); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotIsReadOnly(t *testing.T) {
	testutil.RequireRoot(t, rootTools...)
	testutil.CheckLeaks(t)
	m := openModule(t, testConfig(t, testutil.TempDir(t), testutil.LoopDisk(t, 256*mib, false)))
	fs, err := m.CreateFilesystem("v", 16*mib, pkg.SSDDevice)
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.SnapshotVolume(t.Context(), "v", "s")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Path, "x"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Fatalf("write into snapshot: %v, want EROFS", err)
	}
	if err := m.RestoreSnapshot(t.Context(), "v", "s"); err != nil {
		t.Fatal(err)
	}
	after, err := m.Path("v")
	if err != nil || after.ID == fs.ID {
		t.Fatalf("restored volume %+v, %v: want a new subvolume", after, err)
	}
	if got := cliLimit(t, poolOf(fs), after.ID); got != "16777216" {
		t.Fatalf("restored volume limit %s, want 16777216", got)
	}
	if err := writeBytes(filepath.Join(fs.Path, "big"), 32*mib); !errors.Is(err, unix.EDQUOT) {
		t.Fatalf("restored volume not limited: %v", err)
	}
	if slices.ContainsFunc(strings.Fields(btrfsCLI(t, "subvolume", "list", poolOf(fs))), func(s string) bool {
		return strings.HasPrefix(s, ".restore-")
	}) {
		t.Fatal("restore left a temporary subvolume")
	}
}

func TestDeviceTypeOverrideAndSeekProbe(t *testing.T) {
	testutil.RequireRoot(t, rootTools...)
	testutil.CheckLeaks(t)
	overridden := testutil.LoopDisk(t, 256*mib, false)
	probed := testutil.LoopDisk(t, 256*mib, true)
	cfg := testConfig(t, testutil.TempDir(t), overridden, probed)
	cfg.TypeProbe = storage.ProbeSeekTime
	cfg.DeviceTypes = map[string]pkg.DeviceType{overridden: pkg.HDDDevice}
	m := openModule(t, cfg)
	// a loop disk over a cached sparse file answers random reads fast: the
	// seek-time probe calls it an SSD whatever its rotational flag says
	for typ, want := range map[pkg.DeviceType]uint64{pkg.HDDDevice: 256 * mib, pkg.SSDDevice: 256 * mib} {
		if got, _ := m.Total(typ); got != want {
			t.Errorf("Total(%s) = %d, want %d", typ, got, want)
		}
	}
}
