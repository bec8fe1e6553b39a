package flist

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/flist/block"
	"github.com/zos-go/zos/pkg/flist/format"
	"github.com/zos-go/zos/pkg/flist/store"
)

// Sizes of the interrupt storm flist: files of stormBlocks blocks (their
// block lists take a while to load, so interrupts land during the load),
// a directory of stormEntries entries (same for its listing), stormFiles
// plain files and the bytes each reader compares.
const (
	stormBlocks  = 40000
	stormEntries = 4000
	stormFiles   = 6
	stormPrefix  = 3 * block.ChunkSize
)

// stormFlist is an rfs flist of big sparse-looking files: bin/busybox (the
// host's static busybox, padded with zero blocks), data/f<i> (a random
// first block, then zero blocks), many/e<i> (empty files) and data/broken
// (a block list with a malformed id: real corruption). Its blocks live in
// storeDir.
type stormFlist struct {
	path     string
	storeDir string
	busybox  []byte            // content of bin/busybox up to its first zero block
	prefix   map[string][]byte // relative path -> its first stormPrefix bytes
}

func writeStormFlist(t *testing.T) stormFlist {
	t.Helper()
	ctx := context.Background()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal(err)
	}
	busybox, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	sf := stormFlist{storeDir: testutil.TempDir(t), prefix: map[string][]byte{}, busybox: busybox}
	st, err := store.Open("dir://"+sf.storeDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	put := func(plain []byte) block.Block {
		b, data, err := block.RFS.Encode(plain)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Set(ctx, b.ID, data); err != nil {
			t.Fatal(err)
		}
		return b
	}
	zero := put(make([]byte, block.ChunkSize))
	// file returns the blocks of content, its last chunk padded with
	// zeros; the zero blocks that follow up to stormBlocks are added by
	// one statement at the end (40,000 inserts one by one take a minute
	// under -race)
	file := func(content []byte) []block.Block {
		var out []block.Block
		for off := 0; off < len(content); off += block.ChunkSize {
			chunk := make([]byte, block.ChunkSize)
			copy(chunk, content[off:])
			out = append(out, put(chunk))
		}
		return out
	}
	var padStmts []string
	pad := func(ino uint64, have int) {
		padStmts = append(padStmts, fmt.Sprintf(`INSERT INTO block (ino, id, key)
			WITH RECURSIVE n(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM n WHERE i < %d)
			SELECT %d, X'%x', X'%x' FROM n`, have+1, stormBlocks, ino, zero.ID, zero.Key))
	}
	padded := func(content []byte) []byte {
		out := make([]byte, stormPrefix)
		copy(out, content)
		return out
	}

	sf.path = filepath.Join(testutil.TempDir(t), "storm.fl")
	w, err := format.CreateRFS(ctx, sf.path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	add := func(e format.Entry) uint64 {
		ino, err := w.Add(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		return ino
	}
	const size = uint64(stormBlocks) * block.ChunkSize
	root := add(format.Entry{Mode: syscall.S_IFDIR | 0o755})
	bin := add(format.Entry{Parent: root, Name: "bin", Mode: syscall.S_IFDIR | 0o755})
	bbBlocks := file(busybox)
	pad(add(format.Entry{Parent: bin, Name: "busybox", Mode: syscall.S_IFREG | 0o755, Size: size, Blocks: bbBlocks}), len(bbBlocks))
	sf.prefix["bin/busybox"] = padded(busybox)
	data := add(format.Entry{Parent: root, Name: "data", Mode: syscall.S_IFDIR | 0o755})
	for i := range stormFiles {
		first := make([]byte, block.ChunkSize)
		rand.Read(first)
		name := fmt.Sprintf("f%d", i)
		blocks := file(first)
		pad(add(format.Entry{Parent: data, Name: name, Mode: syscall.S_IFREG | 0o644, Size: size, Blocks: blocks}), len(blocks))
		sf.prefix["data/"+name] = padded(first)
	}
	bad := put([]byte("broken"))
	bad.ID = bad.ID[:5]
	add(format.Entry{Parent: data, Name: "broken", Mode: syscall.S_IFREG | 0o644, Size: 6, Blocks: []block.Block{bad}})
	many := add(format.Entry{Parent: root, Name: "many", Mode: syscall.S_IFDIR | 0o755})
	for i := range stormEntries {
		add(format.Entry{Parent: many, Name: fmt.Sprintf("e%05d", i), Mode: syscall.S_IFREG | 0o644})
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	sqlExec(t, sf.path, padStmts...)
	r, err := format.Open(ctx, sf.path, format.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	in, err := format.Lookup(ctx, r, "bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if bs, err := r.Blocks(ctx, in.Ino); err != nil || len(bs) != stormBlocks || !bytes.Equal(bs[0].ID, bbBlocks[0].ID) {
		t.Fatalf("bin/busybox has %d blocks (%v), want %d", len(bs), err, stormBlocks)
	}
	return sf
}

// slowBlocks serves a dir store over HTTP, each block after delay: reads
// wait on fetches long enough to be interrupted and killed meanwhile.
type slowBlocks struct {
	st    store.Store
	delay time.Duration
}

func (s slowBlocks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key, err := hex.DecodeString(filepath.Base(r.URL.Path))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	select {
	case <-time.After(s.delay):
	case <-r.Context().Done():
		return
	}
	data, err := s.st.Get(r.Context(), key)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Write(data)
}

// stormReader is one reading process of the storm.
type stormReader struct {
	what   string
	cmd    *exec.Cmd
	out    bytes.Buffer
	killAt time.Duration // > 0: SIGKILLed this long after its start
	done   chan struct{}
	err    error
}

// TestInterruptedFirstReads is the race the container module saw ("file
// blocks failed ... context canceled: corrupt flist", EIO on the first
// exec of a file). Many processes exec, open and read files of a fresh
// mount at once, and look entries up in a big directory, while the test
// keeps stopping and continuing them: every signal a process gets while it
// waits on a FUSE request makes the kernel send an INTERRUPT for it (Go
// programs get such signals all the time: goroutine preemption). Some
// readers are killed in the middle of a read while others wait on the same
// blocks. Every reader that is not killed must get its bytes; only the
// malformed block list of data/broken may give EIO, and the mount log must
// never call an interrupted request a corrupt flist.
func TestInterruptedFirstReads(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t, "busybox")
	sf := writeStormFlist(t)
	st, err := store.Open("dir://"+sf.storeDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := httptest.NewServer(slowBlocks{st: st, delay: 150 * time.Millisecond})
	defer srv.Close()
	rewriteRoutes(t, sf.path, srv.URL+"/blocks")

	runner := processRunner(t)
	cfg := testConfig(t)
	cfg.FetchTimeout = 30 * time.Second // the loads take seconds under -race
	m := newModule(t, cfg, nil, runner)
	name := testutil.Name(t, "ir")
	path, err := m.NamedMount(name, sf.path, "", pkg.ReadOnlyMountOptions)
	if err != nil {
		t.Fatal(err)
	}
	bb, _ := exec.LookPath("busybox")
	refDir := testutil.TempDir(t)
	ref := func(rel string) string {
		p := filepath.Join(refDir, strings.ReplaceAll(rel, "/", "_"))
		if _, err := os.Stat(p); err != nil {
			if err := os.WriteFile(p, sf.prefix[rel], 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}

	var readers []*stormReader
	addReader := func(what string, kill time.Duration, argv ...string) {
		r := &stormReader{what: what, killAt: kill, done: make(chan struct{})}
		r.cmd = exec.Command(argv[0], argv[1:]...)
		r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
		r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		readers = append(readers, r)
	}
	// readers run through a shell: what they do must happen while the
	// test signals them, which it starts once Start returned; each does
	// it a few times, the first ones racing the first loads
	const rounds = 3
	seq := strings.TrimSpace(strings.Repeat("x ", rounds))
	for i := range 8 {
		addReader(fmt.Sprintf("exec %d of bin/busybox", i), 0, bb, "sh", "-c",
			fmt.Sprintf("sleep 0.0%d; for i in %s; do %s echo exec-ok || exit 1; done", i+1, seq, filepath.Join(path, "bin/busybox")))
	}
	cmpLoop := func(rel string) string {
		return fmt.Sprintf("for i in %s; do %s cmp -n %d %s %s || exit 1; done", seq, bb, stormPrefix, filepath.Join(path, rel), ref(rel))
	}
	for i := range 3 * stormFiles {
		rel := fmt.Sprintf("data/f%d", i%stormFiles)
		addReader("read of "+rel, 0, bb, "sh", "-c", cmpLoop(rel))
	}
	for i := range 6 {
		rel := fmt.Sprintf("data/f%d", i%stormFiles)
		kill := time.Duration(50+randN(250)) * time.Millisecond
		addReader("killed read of "+rel, kill, bb, "sh", "-c", cmpLoop(rel))
	}
	for range 4 {
		addReader("read of bin/busybox", 0, bb, "sh", "-c", cmpLoop("bin/busybox"))
	}
	for i := range 8 {
		e := fmt.Sprintf("many/e%05d", randN(stormEntries))
		addReader(fmt.Sprintf("lookup %d of %s", i, e), 0, bb, "stat", "-c", "size=%s", filepath.Join(path, e))
	}

	// start everyone; stop and continue every reader's group over and
	// over from its start until it is done (after a collection: one
	// during the storm would hold the signals back)
	runtime.GC()
	defer func() {
		for _, r := range readers {
			if r.cmd.Process != nil {
				_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
				<-r.done
			}
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	for _, r := range readers {
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			r.err = r.cmd.Wait()
			close(r.done)
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			pg := -r.cmd.Process.Pid
			begin := time.Now()
			for {
				if r.killAt > 0 && time.Since(begin) > r.killAt {
					_ = syscall.Kill(pg, syscall.SIGKILL)
					<-r.done
					return
				}
				if time.Since(begin) > time.Minute {
					_ = syscall.Kill(pg, syscall.SIGKILL)
					return
				}
				_ = syscall.Kill(pg, syscall.SIGSTOP)
				_ = syscall.Kill(pg, syscall.SIGCONT)
				select {
				case <-r.done:
					return
				case <-time.After(time.Duration(200+randN(800)) * time.Microsecond):
				}
			}
		}()
	}
	wg.Wait()

	failed := 0
	for _, r := range readers {
		<-r.done
		if r.killAt > 0 {
			continue
		}
		out := strings.TrimSpace(r.out.String())
		ok := r.err == nil
		switch {
		case strings.HasPrefix(r.what, "exec"):
			ok = ok && out == strings.TrimSpace(strings.Repeat("exec-ok\n", rounds))
		case strings.HasPrefix(r.what, "lookup"):
			ok = ok && out == "size=0"
		default:
			ok = ok && out == ""
		}
		if !ok {
			failed++
			t.Errorf("%s: %v, output %q", r.what, r.err, out)
		}
	}
	t.Logf("%d readers (%d failed) in %v", len(readers), failed, time.Since(start).Round(time.Millisecond))

	// after the storm: every file reads whole, real corruption is EIO
	got, err := os.ReadFile(filepath.Join(path, "data/broken"))
	if !isEIO(err) {
		t.Errorf("data/broken: %q, %v, want EIO", got, err)
	}
	for rel, want := range sf.prefix {
		f, err := os.Open(filepath.Join(path, rel))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		buf := make([]byte, len(want))
		n, err := f.ReadAt(buf, 0)
		f.Close()
		if n != len(want) || !bytes.Equal(buf, want) {
			t.Errorf("%s after the storm: %d bytes, %v", rel, n, err)
		}
	}
	logs, _ := os.ReadFile(m.logFile(name))
	for _, l := range strings.Split(string(logs), "\n") {
		if (strings.Contains(l, "corrupt") && !strings.Contains(l, "name=broken")) || strings.Contains(l, "context canceled") {
			t.Errorf("mount log: %s", l)
		}
	}
}

func randN(n int64) int64 {
	v, _ := rand.Int(rand.Reader, big.NewInt(n))
	return v.Int64()
}
