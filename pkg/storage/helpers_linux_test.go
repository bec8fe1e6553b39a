package storage_test

import (
	"context"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/btrfs"
	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/storage"
)

const mib = 1 << 20

// testConfig is the config of a test module on the given devices.
func testConfig(t *testing.T, root string, devices ...string) storage.Config {
	cfg := storage.DefaultConfig()
	cfg.Root = root
	cfg.Discover = false
	cfg.Devices = devices
	cfg.TypeProbe = storage.ProbeRotational
	cfg.LabelPrefix = testutil.Prefix()
	cfg.CacheSizeBytes = 16 * mib
	cfg.CacheTmpfsBytes = 8 * mib
	cfg.MonitorInterval = 100 * time.Millisecond
	cfg.ScanInterval = 200 * time.Millisecond
	return cfg
}

// openModule makes a module, scans once, and closes it at the end.
func openModule(t *testing.T, cfg storage.Config) *storage.Module {
	t.Helper()
	m, err := storage.New(cfg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if err := m.Scan(t.Context()); err != nil {
		t.Fatal(err)
	}
	return m
}

// twoPoolModule is a module with one SSD and one HDD pool of 512 MiB.
func twoPoolModule(t *testing.T) *storage.Module {
	ssd := testutil.LoopDisk(t, 512*mib, false)
	hdd := testutil.LoopDisk(t, 512*mib, true)
	return openModule(t, testConfig(t, testutil.TempDir(t), ssd, hdd))
}

func btrfsCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("btrfs", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("btrfs %v: %v: %s", args, err, out)
	}
	return string(out)
}

// staleQgroups returns the level-0 qgroups of a pool, seen by the btrfs
// CLI, that have no subvolume.
func staleQgroups(t *testing.T, mnt string) []string {
	t.Helper()
	subs := map[string]bool{"0/5": true}
	for _, line := range strings.Split(btrfsCLI(t, "subvolume", "list", mnt), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && f[0] == "ID" {
			subs["0/"+f[1]] = true
		}
	}
	var stale []string
	for _, line := range strings.Split(btrfsCLI(t, "qgroup", "show", "--raw", mnt), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], "0/") && !subs[f[0]] {
			stale = append(stale, f[0])
		}
	}
	return stale
}

// cliLimit is the limit of qgroup 0/id as the btrfs CLI sees it.
func cliLimit(t *testing.T, mnt string, id int) string {
	t.Helper()
	if err := btrfs.Sync(mnt); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(btrfsCLI(t, "qgroup", "show", "-re", "--raw", mnt), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == "0/"+strconv.Itoa(id) {
			return f[3]
		}
	}
	return "absent"
}

// poolOf returns the mount point of the pool holding a volume.
func poolOf(fs pkg.Filesystem) string {
	return fs.Path[:strings.LastIndex(fs.Path, "/")]
}

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}
