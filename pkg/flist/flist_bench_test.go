package flist

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/flist/build"
	"github.com/zos-go/zos/pkg/flist/format"
	"github.com/zos-go/zos/pkg/flist/store"
	"github.com/zos-go/zos/pkg/zdb/zdbtest"
)

// btrfsDir mounts a fresh btrfs on a loop disk of size bytes and returns
// its mount point (unmounted at the end).
func btrfsDir(b *testing.B, size int64) string {
	b.Helper()
	dev := testutil.LoopDisk(b, size, false)
	if out, err := exec.Command("mkfs.btrfs", "-f", "-q", dev).CombinedOutput(); err != nil {
		b.Fatalf("mkfs.btrfs: %v: %s", err, out)
	}
	dir := testutil.TempDir(b)
	if err := unix.Mount(dev, dir, "btrfs", 0, ""); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			_ = unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	return dir
}

// benchModule is a module rooted on dir (its cache on that btrfs).
func benchModule(b *testing.B, dir string) *Module {
	b.Helper()
	cfg := testConfig(b)
	cfg.Root = filepath.Join(dir, "flistd")
	runner := processRunner(b)
	return newModule(b, cfg, nil, runner)
}

func writeRandom(b *testing.B, p string, size int64) {
	b.Helper()
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 4<<20)
	for written := int64(0); written < size; {
		n := min(int64(len(buf)), size-written)
		rng.Read(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			b.Fatal(err)
		}
		written += n
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

// readAll reads p sequentially with 1 MiB reads and returns MiB/s.
func readThroughput(b *testing.B, p string) float64 {
	b.Helper()
	f, err := os.Open(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	start := time.Now()
	n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf)
	if err != nil {
		b.Fatal(err)
	}
	return float64(n) / (1 << 20) / time.Since(start).Seconds()
}

// randomReads does count 4 KiB preads at random aligned offsets and
// returns thousands of reads per second.
func randomReads(b *testing.B, p string, size int64, count int) float64 {
	b.Helper()
	f, err := os.Open(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(7, 7))
	buf := make([]byte, 4096)
	start := time.Now()
	for range count {
		off := rng.Int64N(size/4096) * 4096
		if _, err := f.ReadAt(buf, off); err != nil {
			b.Fatal(err)
		}
	}
	return float64(count) / 1000 / time.Since(start).Seconds()
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkRowCachedRead: a 1 GiB file read through a mount whose blocks
// are in the local cache (and pages in the kernel's cache, the state of a
// file in use), against the same file read natively from btrfs; then
// random 4 KiB reads over it.
func BenchmarkRowCachedRead(b *testing.B) {
	testutil.RequireRoot(b, "mkfs.btrfs")
	const size = 1 << 30
	dir := btrfsDir(b, 5<<30)
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	native := filepath.Join(src, "big.bin")
	writeRandom(b, native, size)
	fl := filepath.Join(dir, "big.fl")
	storeDir := filepath.Join(dir, "store")
	res := packTreeB(b, src, fl, "dir://"+storeDir)
	m := benchModule(b, dir)
	path, err := m.NamedMount(testutil.Name(b, "bn"), fl, "", pkg.ReadOnlyMountOptions)
	if err != nil {
		b.Fatal(err)
	}
	mounted := filepath.Join(path, "big.bin")
	first := readThroughput(b, mounted) // fetches every block into the cache
	readThroughput(b, mounted)          // pages of the assembled cache file
	readThroughput(b, native)
	var ours, base, oursRand, baseRand []float64
	for b.Loop() {
		for range 3 {
			base = append(base, readThroughput(b, native))
			ours = append(ours, readThroughput(b, mounted))
		}
		for range 3 {
			baseRand = append(baseRand, randomReads(b, native, size, 200_000))
			oursRand = append(oursRand, randomReads(b, mounted, size, 200_000))
		}
	}
	b.ReportMetric(median(ours), "seq-MiB/s")
	b.ReportMetric(median(base), "baseline-seq-MiB/s")
	b.ReportMetric(median(oursRand), "rand4k-kops/s")
	b.ReportMetric(median(baseRand), "baseline-rand4k-kops/s")
	b.Logf("first read (blocks fetched from a local dir store): %.0f MiB/s; flist built at %.0f MiB/s", first,
		float64(res.Bytes)/(1<<20)/res.Duration.Seconds())
}

func packTreeB(b *testing.B, src, out, storeURL string) build.Result {
	b.Helper()
	st, err := store.Open(storeURL, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	res, err := build.Build(context.Background(), src, out, st, build.Config{StoreURL: storeURL, Workers: 4}, testLog(b))
	if err != nil {
		b.Fatal(err)
	}
	return res
}

// findStat runs find with a format that stats every entry and returns
// entries per second.
func findStat(b *testing.B, dir string) float64 {
	b.Helper()
	start := time.Now()
	out, err := exec.Command("find", dir, "-printf", "%m %U %G %s %T@\n").Output()
	if err != nil {
		b.Fatal(err)
	}
	return float64(bytes.Count(out, []byte("\n"))) / time.Since(start).Seconds()
}

// BenchmarkRowMetaWalk: find + stat over 20,000 entries of a mount
// against the same tree on btrfs (both walked once before).
func BenchmarkRowMetaWalk(b *testing.B) {
	testutil.RequireRoot(b, "mkfs.btrfs", "find")
	dir := btrfsDir(b, 1<<30)
	src := filepath.Join(dir, "src")
	for d := range 200 {
		sub := filepath.Join(src, fmt.Sprintf("d%03d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 99 {
			p := filepath.Join(sub, fmt.Sprintf("f%02d", f))
			if f%10 == 0 {
				os.Symlink("f01", p)
				continue
			}
			os.WriteFile(p, []byte(p), 0o644)
		}
	}
	fl := filepath.Join(dir, "tree.fl")
	packTreeB(b, src, fl, "dir://"+filepath.Join(dir, "store"))
	m := benchModule(b, dir)
	path, err := m.NamedMount(testutil.Name(b, "mw"), fl, "", pkg.ReadOnlyMountOptions)
	if err != nil {
		b.Fatal(err)
	}
	cold := findStat(b, path)
	findStat(b, src)
	var ours, base []float64
	for b.Loop() {
		for range 5 {
			base = append(base, findStat(b, src))
			ours = append(ours, findStat(b, path))
		}
	}
	b.ReportMetric(median(ours), "walk-entries/s")
	b.ReportMetric(median(base), "baseline-walk-entries/s")
	b.Logf("first walk of the mount (metadata from SQLite): %.0f entries/s", cold)
}

// zdbStore starts our 0-db with a namespace and returns its store URL.
func zdbStore(b *testing.B) (string, *redis.Client) {
	b.Helper()
	srv := zdbtest.Start(b, zdbtest.Options{})
	admin := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(srv.Port), Protocol: 2, DisableIdentity: true})
	b.Cleanup(func() { admin.Close() })
	if err := admin.Do(context.Background(), "NSNEW", "blocks").Err(); err != nil {
		b.Fatal(err)
	}
	return "zdb://127.0.0.1:" + strconv.Itoa(srv.Port) + "/blocks", admin
}

// BenchmarkRowCreate: create throughput of 256 MiB (large and small files)
// into our 0-db, against tar -cz of the same tree.
func BenchmarkRowCreate(b *testing.B) {
	testutil.RequireRoot(b, "mkfs.btrfs", "tar", "gzip")
	dir := btrfsDir(b, 2<<30)
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "small"), 0o755)
	var total int64
	for i := range 48 {
		writeRandom(b, filepath.Join(src, fmt.Sprintf("large%02d", i)), 5<<20)
		total += 5 << 20
	}
	for i := range 2000 {
		data := bytes.Repeat([]byte(fmt.Sprintf("small file %d ", i)), 500) // compressible, ~8 KiB
		os.WriteFile(filepath.Join(src, "small", strconv.Itoa(i)), data, 0o644)
		total += int64(len(data))
	}
	storeURL, _ := zdbStore(b)
	var ours, base float64
	for b.Loop() {
		res := packTreeB(b, src, filepath.Join(dir, "tree.fl"), storeURL)
		ours = float64(res.Bytes) / (1 << 20) / res.Duration.Seconds()
		start := time.Now()
		if out, err := exec.Command("tar", "-czf", filepath.Join(dir, "tree.tgz"), "-C", src, ".").CombinedOutput(); err != nil {
			b.Fatalf("tar: %v: %s", err, out)
		}
		base = float64(total) / (1 << 20) / time.Since(start).Seconds()
	}
	b.ReportMetric(ours, "create-MiB/s")
	b.ReportMetric(base, "baseline-create-MiB/s")
}

// BenchmarkRowFirstRead: latency of the first read of a 4 KiB file whose
// block is not cached, fetched from our 0-db, against a bare GET of a block
// of the same size from that 0-db.
func BenchmarkRowFirstRead(b *testing.B) {
	testutil.RequireRoot(b)
	const files = 300
	src := testutil.TempDir(b)
	rng := rand.NewChaCha8([32]byte{3})
	for i := range files {
		data := make([]byte, 4096)
		rng.Read(data)
		os.WriteFile(filepath.Join(src, strconv.Itoa(i)), data, 0o644)
	}
	storeURL, admin := zdbStore(b)
	fl := filepath.Join(testutil.TempDir(b), "small.fl")
	packTreeB(b, src, fl, storeURL)
	m := benchModule(b, testutil.TempDir(b))
	path, err := m.NamedMount(testutil.Name(b, "fr"), fl, "", pkg.ReadOnlyMountOptions)
	if err != nil {
		b.Fatal(err)
	}
	r, err := format.Open(context.Background(), fl, format.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	var ids [][]byte
	format.Walk(context.Background(), r, func(_ string, in format.Inode) error {
		if in.IsRegular() {
			bs, _ := r.Blocks(context.Background(), in.Ino)
			ids = append(ids, bs[0].ID)
		}
		return nil
	})
	for i := range files {
		if _, err := os.Stat(filepath.Join(path, strconv.Itoa(i))); err != nil { // metadata first: time the data
			b.Fatal(err)
		}
	}
	if err := admin.Do(context.Background(), "SELECT", "blocks").Err(); err != nil {
		b.Fatal(err)
	}
	var ours, base []float64
	for b.Loop() {
		for i := range files {
			start := time.Now()
			if _, err := os.ReadFile(filepath.Join(path, strconv.Itoa(i))); err != nil {
				b.Fatal(err)
			}
			ours = append(ours, float64(time.Since(start).Microseconds())/1000)
		}
		conn := admin.Conn()
		ctx := context.Background()
		if err := conn.Do(ctx, "SELECT", "blocks").Err(); err != nil {
			b.Fatal(err)
		}
		for _, id := range ids {
			start := time.Now()
			if err := conn.Get(ctx, string(id)).Err(); err != nil {
				b.Fatal(err)
			}
			base = append(base, float64(time.Since(start).Microseconds())/1000)
		}
		conn.Close()
	}
	slices.Sort(ours)
	slices.Sort(base)
	b.ReportMetric(ours[len(ours)/2], "first-read-p50-ms")
	b.ReportMetric(base[len(base)/2], "baseline-first-read-p50-ms")
	b.ReportMetric(ours[len(ours)*99/100], "first-read-p99-ms")
	b.ReportMetric(base[len(base)*99/100], "baseline-first-read-p99-ms")
}
