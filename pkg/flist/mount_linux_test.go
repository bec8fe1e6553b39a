package flist

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/flist/format"
	"github.com/zos-go/zos/pkg/flist/internal/mnt"
	"github.com/zos-go/zos/pkg/flist/store"
	"github.com/zos-go/zos/pkg/storage"
	"github.com/zos-go/zos/pkg/zinit/zinittest"
)

const mib = 1 << 20

// storageModule is the real storage module on one 512 MiB SSD loop disk.
func storageModule(t *testing.T) *storage.Module {
	t.Helper()
	dev := testutil.LoopDisk(t, 512*mib, false)
	cfg := storage.DefaultConfig()
	cfg.Root = testutil.TempDir(t)
	cfg.Discover = false
	cfg.Devices = []string{dev}
	cfg.TypeProbe = storage.ProbeRotational
	cfg.LabelPrefix = testutil.Prefix()
	cfg.CacheSizeBytes = 16 * mib
	cfg.CacheTmpfsBytes = 8 * mib
	m, err := storage.New(cfg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Errorf("storage close: %v", err)
		}
	})
	if err := m.Scan(t.Context()); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMountRoundTripRFS(t *testing.T)  { testRoundTrip(t, format.KindRFS) }
func TestMountRoundTripZero(t *testing.T) { testRoundTrip(t, format.KindZero) }

func testRoundTrip(t *testing.T, kind format.Kind) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t)
	runner := processRunner(t)
	m := newModule(t, testConfig(t), nil, runner)
	src := testutil.TempDir(t)
	makeTree(t, src, true)
	fl := filepath.Join(testutil.TempDir(t), "tree.flist")
	packTree(t, src, fl, "dir://"+testutil.TempDir(t), kind)

	path, err := m.NamedMount(testutil.Name(t, "rt"), fl, "", pkg.ReadOnlyMountOptions)
	if err != nil {
		t.Fatal(err)
	}
	want := snapshotTree(t, src, kind == format.KindRFS)
	if kind == format.KindZero {
		// 0-flists keep neither hard links nor xattrs: a link is a copy
		for p, e := range want {
			if e.linkedTo != "" || e.nlink > 1 {
				e.linkedTo, e.nlink = "", 1
				want[p] = e
			}
		}
		for p, e := range want {
			if e.nlink > 1 {
				e.nlink = 1
				want[p] = e
			}
		}
	}
	if len(want) < 20 || (kind == format.KindRFS && want["etc/hosts"].xattr == "") || want["dev/null"].rdev == 0 {
		t.Fatalf("the source tree lacks what the test checks: %d entries, xattr %q", len(want), want["etc/hosts"].xattr)
	}
	compareTrees(t, want, snapshotTree(t, path, kind == format.KindRFS))
	// device nodes are metadata only: the mount is nodev
	if f, err := os.Open(filepath.Join(path, "dev/null")); !errors.Is(err, syscall.EACCES) {
		if err == nil {
			f.Close()
		}
		t.Errorf("opening a device node of the flist: %v, want EACCES", err)
	}
	// read-only
	if err := os.WriteFile(filepath.Join(path, "new"), []byte("x"), 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("write to a read-only mount: %v", err)
	}
	// idempotent
	if again, err := m.NamedMount(filepath.Base(path), "/does/not/matter", "", pkg.ReadOnlyMountOptions); err != nil || again != path {
		t.Errorf("second NamedMount: %q %v", again, err)
	}
	hash, err := m.HashFromRootPath(path)
	data, _ := os.ReadFile(fl)
	if err != nil || hash != md5hex(data) {
		t.Errorf("HashFromRootPath: %q %v", hash, err)
	}
}

func md5hex(b []byte) string { h := md5sum(b); return hex.EncodeToString(h[:]) }

// countingBlocks serves a dir store over HTTP, counting GETs per block id.
type countingBlocks struct {
	st   store.Store
	mu   sync.Mutex
	gets map[string]int
}

func (c *countingBlocks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := filepath.Base(r.URL.Path)
	key, err := hex.DecodeString(id)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	c.mu.Lock()
	c.gets[id]++
	c.mu.Unlock()
	data, err := c.st.Get(r.Context(), key)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Write(data)
}

func (c *countingBlocks) fetched() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.gets {
		out[k] = v
	}
	return out
}

func TestMountIsLazy(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t)
	runner := processRunner(t)
	m := newModule(t, testConfig(t), nil, runner)
	src := testutil.TempDir(t)
	makeTree(t, src, false)
	storeDir := testutil.TempDir(t)
	st, _ := store.Open("dir://"+storeDir, store.Options{})
	blocks := &countingBlocks{st: st, gets: map[string]int{}}
	srv := httptest.NewServer(blocks)
	defer srv.Close()
	fl := filepath.Join(testutil.TempDir(t), "tree.fl")
	packTree(t, src, fl, "dir://"+storeDir, format.KindRFS)
	// the flist names the http store
	rewriteRoutes(t, fl, srv.URL+"/blocks")

	path, err := m.NamedMount(testutil.Name(t, "lz"), fl, "", pkg.ReadOnlyMountOptions)
	if err != nil {
		t.Fatal(err)
	}
	snapshotWithoutContent(t, path)
	if got := blocks.fetched(); len(got) != 0 {
		t.Fatalf("listing and stat fetched blocks: %v", got)
	}
	data, err := os.ReadFile(filepath.Join(path, "var/lib/data/big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	want := fileBlockIDs(t, fl, "var/lib/data/big.bin")
	got := blocks.fetched()
	if len(got) != len(want) {
		t.Errorf("reading one file fetched %d blocks, want its %d", len(got), len(want))
	}
	for id, n := range got {
		if !want[id] {
			t.Errorf("fetched block %s of another file", id)
		}
		if n != 1 {
			t.Errorf("block %s fetched %d times", id, n)
		}
	}
	// the copy has the same blocks: already cached, nothing fetched
	copyData, err := os.ReadFile(filepath.Join(path, "var/lib/data/copy.bin"))
	if err != nil || !bytes.Equal(copyData, data) {
		t.Fatalf("copy: %v", err)
	}
	if after := blocks.fetched(); len(after) != len(got) {
		t.Errorf("reading a file of cached blocks fetched %d more", len(after)-len(got))
	}
}

func snapshotWithoutContent(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		_, err = os.Lstat(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fileBlockIDs returns the hex block ids of a file of an flist.
func fileBlockIDs(t *testing.T, fl, p string) map[string]bool {
	t.Helper()
	r, err := format.Open(context.Background(), fl, format.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	in, err := format.Lookup(context.Background(), r, p)
	if err != nil {
		t.Fatal(err)
	}
	bs, err := r.Blocks(context.Background(), in.Ino)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, b := range bs {
		out[hex.EncodeToString(b.ID)] = true
	}
	return out
}

// sqlExec runs statements on an rfs flist.
func sqlExec(t *testing.T, fl string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", fl)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func rewriteRoutes(t *testing.T, fl, url string) {
	t.Helper()
	sqlExec(t, fl, "DELETE FROM route", "INSERT INTO route (start, end, url) VALUES (0, 255, '"+url+"')")
}

func TestWritableLayerQuotaAndUmount(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t, "mkfs.btrfs", "btrfs")
	vols := storageModule(t)
	runner := processRunner(t)
	cfg := testConfig(t)
	cacheFS, err := vols.GetCacheFS()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Root = filepath.Join(cacheFS.Path, "flistd") // as on a node: on the btrfs cache volume
	m := newModule(t, cfg, vols, runner)
	src := testutil.TempDir(t)
	makeTree(t, src, false)
	fl := filepath.Join(testutil.TempDir(t), "tree.fl")
	packTree(t, src, fl, "dir://"+testutil.TempDir(t), format.KindRFS)
	name := testutil.Name(t, "rw")
	path, err := m.NamedMount(name, fl, "", pkg.MountOptions{Limit: 16, Type: pkg.SSDDevice})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := vols.Path(name)
	if err != nil {
		t.Fatalf("writable layer volume: %v", err)
	}
	// writes land in the upper layer; the flist's files can be changed
	if err := os.WriteFile(filepath.Join(path, "etc/hosts"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(fs.Path, "rw", "etc/hosts")); string(b) != "changed\n" {
		t.Errorf("upper layer holds %q", b)
	}
	want, _ := os.ReadFile(filepath.Join(src, "var/lib/data/big.bin"))
	for i := range 2 { // the second open is served by passthrough
		if b, err := os.ReadFile(filepath.Join(path, "var/lib/data/big.bin")); err != nil || !bytes.Equal(b, want) {
			t.Errorf("read %d of a lower file through the overlay: %d bytes, %v", i, len(b), err)
		}
	}
	assembled := 0
	filepath.WalkDir(filepath.Join(cfg.Root, "cache", "files"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if st, _ := os.Stat(p); st != nil && st.Size() == int64(len(want)) {
				assembled++
			}
		}
		return nil
	})
	if assembled != 1 {
		t.Errorf("%d assembled cache files for the fully read file, want 1", assembled)
	}
	// the quota stops a big write
	f, err := os.Create(filepath.Join(path, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{1}, mib)
	written := 0
	var werr error
	for written < 64*mib {
		if _, werr = f.Write(chunk); werr == nil {
			werr = f.Sync()
		}
		if werr != nil {
			break
		}
		written += mib
	}
	f.Close()
	if !errors.Is(werr, syscall.EDQUOT) && !errors.Is(werr, syscall.ENOSPC) {
		t.Fatalf("wrote %d MiB into a 16 MiB layer, last error %v", written/mib, werr)
	}
	t.Logf("the 16 MiB layer took %d MiB before %v", written/mib, werr)
	if written > 24*mib {
		t.Errorf("wrote %d MiB into a 16 MiB layer", written/mib)
	}
	pid, _ := runner.Status(context.Background(), m.service(name))
	if err := m.Umount(path); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, filepath.Join(fs.Path, "ro")} {
		if ok, _ := mnt.IsMounted(p); ok {
			t.Errorf("%s still mounted", p)
		}
	}
	if _, err := runner.Status(context.Background(), m.service(name)); !errors.Is(err, ErrUnknownService) {
		t.Errorf("service still known: %v", err)
	}
	if pid == 0 || testutil.ProcessAlive(pid) {
		t.Errorf("flistfs pid %d still alive", pid)
	}
	if _, err := vols.Path(name); err == nil {
		t.Errorf("writable layer volume not released")
	}
	for _, p := range []string{path, m.pidFile(name), m.logFile(name), m.runLink(name)} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left: %v", p, err)
		}
	}
}

func TestKilledMountRestartsUnderZinit(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t, "mkfs.btrfs", "btrfs")
	vols := storageModule(t)
	client, _ := zinittest.Start(t)
	runner := ZinitRunner{Client: client}
	cfg := testConfig(t)
	m := newModule(t, cfg, vols, runner)
	src := testutil.TempDir(t)
	makeTree(t, src, false)
	fl := filepath.Join(testutil.TempDir(t), "tree.fl")
	packTree(t, src, fl, "dir://"+testutil.TempDir(t), format.KindRFS)
	name := testutil.Name(t, "zi")
	path, err := m.NamedMount(name, fl, "", pkg.MountOptions{Limit: 32, Type: pkg.SSDDevice})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "kept"), []byte("upper data"), 0o644); err != nil {
		t.Fatal(err)
	}
	pid, err := runner.Status(context.Background(), m.service(name))
	if err != nil || pid == 0 {
		t.Fatalf("status: %d %v", pid, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "mount working again", func() error {
		b, err := os.ReadFile(filepath.Join(path, "etc/hosts"))
		if err != nil {
			return err
		}
		if string(b) != "127.0.0.1 localhost\n" {
			return errors.New("wrong content")
		}
		now, _ := runner.Status(context.Background(), m.service(name))
		if now == pid || now == 0 {
			return errors.New("same process")
		}
		return nil
	})
	if b, err := os.ReadFile(filepath.Join(path, "kept")); err != nil || string(b) != "upper data" {
		t.Errorf("upper layer after restart: %q %v", b, err)
	}
	// the agent restarts: a new module re-discovers the mount
	m2 := newModule(t, cfg, vols, runner)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m2.Run(ctx) }()
	defer func() { cancel(); <-done }()
	time.Sleep(300 * time.Millisecond)
	if again, err := m2.NamedMount(name, fl, "", pkg.MountOptions{Limit: 32, Type: pkg.SSDDevice}); err != nil || again != path {
		t.Fatalf("mount after agent restart: %q %v", again, err)
	}
	if _, err := os.Lstat(m2.runLink(name)); err != nil {
		t.Errorf("record lost: %v", err)
	}
	if err := m2.NamedUmount(name); err != nil {
		t.Fatal(err)
	}
	if ok, _ := mnt.IsMounted(path); ok {
		t.Error("still mounted after umount")
	}
	if names, _ := runner.List(context.Background(), cfg.ServicePrefix); len(names) != 0 {
		t.Errorf("zinit services left: %v", names)
	}
}

func TestBadFlistMountFailsCleanly(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t, "mkfs.btrfs", "btrfs")
	vols := storageModule(t)
	runner := processRunner(t)
	cfg := testConfig(t)
	cfg.MountTimeout = 3 * time.Second
	m := newModule(t, cfg, vols, runner)
	bad := filepath.Join(testutil.TempDir(t), "bad.fl")
	os.WriteFile(bad, append([]byte("SQLite format 3\x00"), bytes.Repeat([]byte{0xee}, 8192)...), 0o644)
	name := testutil.Name(t, "bad")
	_, err := m.NamedMount(name, bad, "", pkg.MountOptions{Limit: 16, Type: pkg.SSDDevice})
	if !errors.Is(err, ErrMount) {
		t.Fatalf("corrupt flist: %v", err)
	}
	if !strings.Contains(err.Error(), "corrupt flist") {
		t.Errorf("error does not say why: %v", err)
	}
	if ok, _ := mnt.IsMounted(m.mountpoint(name)); ok {
		t.Error("mounted")
	}
	if names, _ := runner.List(context.Background(), ""); len(names) != 0 {
		t.Errorf("services left: %v", names)
	}
	if _, err := vols.Path(name); err == nil {
		t.Error("volume left")
	}
	if _, err := os.Stat(m.mountpoint(name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("mount dir left: %v", err)
	}
}

func TestBadBlocksAndEntries(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t)
	runner := processRunner(t)
	cfg := testConfig(t)
	cfg.FetchTimeout = 2 * time.Second
	m := newModule(t, cfg, nil, runner)
	src := testutil.TempDir(t)
	makeTree(t, src, false)
	storeDir := testutil.TempDir(t)
	fl := filepath.Join(testutil.TempDir(t), "tree.fl")
	packTree(t, src, fl, "dir://"+storeDir, format.KindRFS)
	ids := func(p string) []string {
		var out []string
		for id := range fileBlockIDs(t, fl, p) {
			out = append(out, id)
		}
		return out
	}
	blockFile := func(id string) string { return filepath.Join(storeDir, id[:2], id) }
	// missing block: etc/hosts
	hostsID := ids("etc/hosts")[0]
	if err := os.Remove(blockFile(hostsID)); err != nil {
		t.Fatal(err)
	}
	// corrupt block: bin/tool
	toolID := ids("bin/tool")[0]
	good, _ := os.ReadFile(blockFile(toolID))
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 0x55
	os.WriteFile(blockFile(toolID), bad, 0o644)
	// wrong key: usr/share/exactly-one-block, and entries that try to escape
	sqlExec(t, fl,
		`UPDATE block SET key = zeroblob(32) WHERE ino = (SELECT ino FROM inode WHERE name = 'exactly-one-block')`,
		`INSERT INTO inode (parent, name, size, uid, gid, mode, rdev, ctime, mtime) VALUES (1, '..', 0, 0, 0, 16877, 0, 0, 0)`,
		`INSERT INTO inode (parent, name, size, uid, gid, mode, rdev, ctime, mtime) VALUES (1, '../../../../etc', 0, 0, 0, 16877, 0, 0, 0)`,
		`INSERT INTO inode (parent, name, size, uid, gid, mode, rdev, ctime, mtime) VALUES (1, 'x/y', 5, 0, 0, 33188, 0, 0, 0)`,
		`INSERT INTO inode (parent, name, size, uid, gid, mode, rdev, ctime, mtime) VALUES (1, '.', 0, 0, 0, 16877, 0, 0, 0)`,
	)
	path, err := m.NamedMount(testutil.Name(t, "bb"), fl, "", pkg.ReadOnlyMountOptions)
	if err != nil {
		t.Fatal(err)
	}
	names, err := os.ReadDir(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range names {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != "bin,dangling,etc,fifo,sock,usr,var" {
		t.Errorf("root lists %v", got)
	}
	for _, p := range []string{"x/y", "../../../../etc/passwd"} {
		if _, err := os.Lstat(filepath.Join(path, p)); err == nil {
			t.Errorf("%s reachable", p)
		}
	}
	for _, p := range []string{"etc/hosts", "bin/tool", "usr/share/exactly-one-block"} {
		if _, err := os.ReadFile(filepath.Join(path, p)); !isEIO(err) {
			t.Errorf("%s: %v, want EIO", p, err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(path, "usr/share/ünïcode name.txt")); err != nil || string(b) != "names are bytes\n" {
		t.Errorf("good file next to bad ones: %q %v", b, err)
	}
	// repaired store: the next read fetches again and works
	os.WriteFile(blockFile(toolID), good, 0o644)
	if b, err := os.ReadFile(filepath.Join(path, "bin/tool")); err != nil || string(b) != "#!/bin/sh\necho tool\n" {
		t.Errorf("after repair: %q %v", b, err)
	}
}

func TestStoreDownGivesEIO(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t)
	runner := processRunner(t)
	cfg := testConfig(t)
	cfg.FetchTimeout = 2 * time.Second
	m := newModule(t, cfg, nil, runner)
	src := testutil.TempDir(t)
	makeTree(t, src, false)
	fl := filepath.Join(testutil.TempDir(t), "tree.fl")
	packTree(t, src, fl, "dir://"+testutil.TempDir(t), format.KindRFS)
	// a store that accepts connections and never answers
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	rewriteRoutes(t, fl, "zdb://"+l.Addr().String())
	path, err := m.NamedMount(testutil.Name(t, "sd"), fl, "", pkg.ReadOnlyMountOptions)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = os.ReadFile(filepath.Join(path, "etc/hosts"))
	if !isEIO(err) {
		t.Fatalf("read with the store down: %v, want EIO", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("EIO after %v", d)
	}
	// metadata needs no store
	if _, err := os.Stat(filepath.Join(path, "var/lib/data/big.bin")); err != nil {
		t.Errorf("stat with the store down: %v", err)
	}
}

// TestStaleMountIsReplaced: a mount at a mount point that no service
// serves (its supervisor lost it) is detached and the flist mounted.
func TestStaleMountIsReplaced(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t)
	runner := processRunner(t)
	m := newModule(t, testConfig(t), nil, runner)
	src := testutil.TempDir(t)
	makeTree(t, src, false)
	fl := filepath.Join(testutil.TempDir(t), "tree.fl")
	packTree(t, src, fl, "dir://"+testutil.TempDir(t), format.KindRFS)
	name := testutil.Name(t, "st")
	if err := m.ensureDirs(); err != nil {
		t.Fatal(err)
	}
	target := m.mountpoint(name)
	os.MkdirAll(target, 0o755)
	if err := syscall.Mount("tmpfs", target, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	path, err := m.NamedMount(name, fl, "", pkg.ReadOnlyMountOptions)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(path, "etc/hosts")); err != nil || string(b) != "127.0.0.1 localhost\n" {
		t.Fatalf("after replacing a stale mount: %q %v", b, err)
	}
	if err := m.Umount(path); err != nil {
		t.Fatal(err)
	}
	if ok, _ := mnt.IsMounted(path); ok {
		t.Error("still mounted")
	}
}
