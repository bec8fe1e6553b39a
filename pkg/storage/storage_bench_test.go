package storage_test

import (
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/btrfs"
	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/storage"
)

// benchVolumes is how many volumes each row creates and releases.
const benchVolumes = 1000

// benchVolumeBytes is the quota of each benchmark volume.
const benchVolumeBytes = 256 << 10

func percentileMS(d []time.Duration, p float64) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return float64(s[i]) / float64(time.Millisecond)
}

func run(b *testing.B, name string, args ...string) time.Duration {
	start := time.Now()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		b.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
	return time.Since(start)
}

// benchPool is a module with one SSD pool of 1 GiB.
func benchPool(b *testing.B) (*storage.Module, string) {
	testutil.RequireRoot(b, "mkfs.btrfs", "btrfs", "blkid")
	testutil.CheckLeaks(b)
	cfg := storage.DefaultConfig()
	cfg.Root = testutil.TempDir(b)
	cfg.Discover = false
	cfg.Devices = []string{testutil.LoopDisk(b, 1<<30, false)}
	cfg.TypeProbe = storage.ProbeRotational
	cfg.LabelPrefix = testutil.Prefix()
	cfg.CacheSizeBytes = 16 << 20
	m, err := storage.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close(b.Context()) })
	if err := m.Scan(b.Context()); err != nil {
		b.Fatal(err)
	}
	cache, err := m.GetCacheFS()
	if err != nil {
		b.Fatal(err)
	}
	return m, filepath.Dir(cache.Path)
}

// createBoth creates volume i with CreateFilesystem and, interleaved, the
// same with the btrfs command pair; it returns both latencies.
func createBoth(b *testing.B, m *storage.Module, mnt string, round, i int) (ours, cli time.Duration) {
	name := fmt.Sprintf("r%d-v%d", round, i)
	start := time.Now()
	if _, err := m.CreateFilesystem(name, benchVolumeBytes, pkg.SSDDevice); err != nil {
		b.Fatal(err)
	}
	ours = time.Since(start)
	path := filepath.Join(mnt, ".cli-"+name)
	cli = run(b, "btrfs", "subvolume", "create", path) +
		run(b, "btrfs", "qgroup", "limit", strconv.Itoa(benchVolumeBytes), path)
	return ours, cli
}

// releaseBoth releases volume i both ways: ReleaseFilesystem, and the
// original's pair `btrfs subvolume delete` + `btrfs qgroup destroy`.
func releaseBoth(b *testing.B, m *storage.Module, mnt string, round, i int) (ours, cli time.Duration) {
	name := fmt.Sprintf("r%d-v%d", round, i)
	start := time.Now()
	if err := m.ReleaseFilesystem(name); err != nil {
		b.Fatal(err)
	}
	ours = time.Since(start)
	path := filepath.Join(mnt, ".cli-"+name)
	id, err := btrfs.SubvolumeID(path)
	if err != nil {
		b.Fatal(err)
	}
	cli = run(b, "btrfs", "subvolume", "delete", path)
	start = time.Now()
	// the kernel refuses while the subvolume is not dropped yet, as the
	// original's destroy did; the cost of the call is what counts
	_ = exec.Command("btrfs", "qgroup", "destroy", "0/"+strconv.FormatUint(id, 10), mnt).Run()
	cli += time.Since(start)
	return ours, cli
}

func report(b *testing.B, ours, cli []time.Duration) {
	b.ReportMetric(percentileMS(ours, 0.50), "p50-ms")
	b.ReportMetric(percentileMS(ours, 0.99), "p99-ms")
	b.ReportMetric(percentileMS(cli, 0.50), "baseline-p50-ms")
	b.ReportMetric(percentileMS(cli, 0.99), "baseline-p99-ms")
}

// BenchmarkRowCreateFilesystem: CreateFilesystem with its quota limit of
// 1,000 volumes on one pool, against `btrfs subvolume create` + `btrfs
// qgroup limit` on the same pool, interleaved.
func BenchmarkRowCreateFilesystem(b *testing.B) {
	m, mnt := benchPool(b)
	var ours, cli []time.Duration
	round := 0
	for b.Loop() {
		for i := range benchVolumes {
			o, c := createBoth(b, m, mnt, round, i)
			ours, cli = append(ours, o), append(cli, c)
		}
		b.StopTimer()
		for i := range benchVolumes {
			releaseBoth(b, m, mnt, round, i)
		}
		b.StartTimer()
		round++
	}
	report(b, ours, cli)
}

// BenchmarkRowReleaseFilesystem: ReleaseFilesystem of 1,000 volumes
// against `btrfs subvolume delete` + `btrfs qgroup destroy`, interleaved.
func BenchmarkRowReleaseFilesystem(b *testing.B) {
	m, mnt := benchPool(b)
	var ours, cli []time.Duration
	round := 0
	for b.Loop() {
		b.StopTimer()
		for i := range benchVolumes {
			createBoth(b, m, mnt, round, i)
		}
		b.StartTimer()
		for i := range benchVolumes {
			o, c := releaseBoth(b, m, mnt, round, i)
			ours, cli = append(ours, o), append(cli, c)
		}
		round++
	}
	report(b, ours, cli)
}
