package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/internal/zdb/engine"
	"github.com/zos-go/zos/internal/zdb/resp"
	"github.com/zos-go/zos/internal/zdb/server"
	"github.com/zos-go/zos/pkg/zdb/zdbtest"
)

// pipeline sends every request in one write, then reads the replies.
func pipeline(t *testing.T, c *conn, reqs [][]string) []string {
	t.Helper()
	var b []byte
	for _, r := range reqs {
		args := make([][]byte, len(r))
		for i, a := range r {
			args[i] = []byte(a)
		}
		b = resp.AppendCommand(b, args...)
	}
	_ = c.c.SetDeadline(time.Now().Add(60 * time.Second))
	errc := make(chan error, 1)
	go func() { _, err := c.c.Write(b); errc <- err }()
	out := make([]string, len(reqs))
	for i := range reqs {
		r, err := readReply(c.rd)
		if err != nil {
			t.Fatalf("reply %d of %d: %v", i, len(reqs), err)
		}
		out[i] = r
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPipelineMixedCommands: a long pipeline mixing commands the event loop
// runs, commands it hands to a goroutine (KEYTIME, SCAN, NSNEW) and values
// larger than what it buffers, gets every reply, in order, on both server
// models.
func TestPipelineMixedCommands(t *testing.T) {
	for _, loops := range []string{"0", "-1"} {
		t.Run("eventloops="+loops, func(t *testing.T) {
			srv := zdbtest.Start(t, zdbtest.Options{Mode: "user", Args: []string{"--eventloops", loops}})
			c := dialTCP(t, srv)
			var reqs [][]string
			var want []string
			for i := range 400 {
				k := "key-" + strconv.Itoa(i)
				v := strings.Repeat(string(rune('a'+i%26)), 1+i*97%9000)
				reqs = append(reqs, []string{"SET", k, v}, []string{"GET", k}, []string{"EXISTS", k})
				want = append(want, bulk(k), bulk(v), one)
				switch i % 50 {
				case 10:
					reqs = append(reqs, []string{"KEYTIME", k})
					want = append(want, "")
				case 20:
					reqs = append(reqs, []string{"SCAN"})
					want = append(want, "")
				case 30:
					ns := "ns-" + strconv.Itoa(i)
					reqs = append(reqs, []string{"NSNEW", ns}, []string{"DBSIZE"})
					want = append(want, ok, ":"+strconv.Itoa(i+1)+"\r\n")
				case 40:
					reqs = append(reqs, []string{"DEL", k}, []string{"GET", k}, []string{"SET", k, v})
					want = append(want, ok, null, bulk(k))
				}
			}
			got := pipeline(t, c, reqs)
			for i := range reqs {
				if want[i] == "" {
					if !strings.HasPrefix(got[i], ":") && !strings.HasPrefix(got[i], "*2\r\n") {
						t.Fatalf("%v: %q", reqs[i][0], got[i])
					}
					continue
				}
				if got[i] != want[i] {
					t.Fatalf("request %d %v: got %.80q, want %.80q", i, reqs[i][0], got[i], want[i])
				}
			}
			c.expect(pong, "PING")
		})
	}
}

// TestSlowReader: a client that pipelines requests whose replies exceed the
// socket buffers, and reads them late, gets them all; other clients are
// served meanwhile.
func TestSlowReader(t *testing.T) {
	srv := zdbtest.Start(t, zdbtest.Options{Mode: "user"})
	c := dialTCP(t, srv)
	big := strings.Repeat("v", 64<<10)
	c.expect(bulk("big"), "SET", "big", big)
	const n = 400 // 25 MiB of replies
	var b []byte
	for range n {
		b = resp.AppendCommand(b, []byte("GET"), []byte("big"))
	}
	go func() { _, _ = c.c.Write(b) }()
	other := dialTCP(t, srv)
	time.Sleep(200 * time.Millisecond) // the server fills the socket, then waits
	other.expect(pong, "PING")
	other.expect(bulk("x"), "SET", "x", "1")
	_ = c.c.SetDeadline(time.Now().Add(60 * time.Second))
	for i := range n {
		r, err := readReply(c.rd)
		if err != nil || r != bulk(big) {
			t.Fatalf("reply %d: %.40q %v", i, r, err)
		}
	}
	c.expect(pong, "PING")
}

// TestHalfClose: a client that sends its requests and shuts its side down
// still gets every reply before the server closes.
func TestHalfClose(t *testing.T) {
	srv := zdbtest.Start(t, zdbtest.Options{Mode: "user"})
	for _, network := range []string{"tcp", "unix"} {
		addr := "127.0.0.1:" + strconv.Itoa(srv.Port)
		if network == "unix" {
			addr = srv.Socket
		}
		nc, err := net.Dial(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		req := "SET half-" + network + " v\r\nGET half-" + network + "\r\nPING\r\n*1\r\n$4\r\nPI"
		if _, err := nc.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		if err := nc.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(nc)
		nc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if want := bulk("half-"+network) + bulk("v") + pong; string(got) != want {
			t.Fatalf("%s: got %q, want %q", network, got, want)
		}
	}
}

// TestProtocolErrorAfterPipeline: requests before a malformed one are
// answered, then "-Protocol error" and the connection closes.
func TestProtocolErrorAfterPipeline(t *testing.T) {
	srv := zdbtest.Start(t, zdbtest.Options{Mode: "user"})
	nc, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(srv.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write([]byte("PING\r\n*1\r\n$4\r\nPING\r\n*2\r\n:1\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(nc)
	if err != nil {
		t.Fatal(err)
	}
	if want := pong + pong + "-Protocol error\r\n"; string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// evict drops the server's data files from the page cache, so that reads
// must wait for the disk.
func evict(t *testing.T, dir string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "data", "*", "d*"))
	if len(files) == 0 {
		t.Fatalf("no data files under %s", dir)
	}
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			t.Fatal(err)
		}
		if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
}

// TestColdReads: values no longer in the page cache are read (off the
// event loop) and answered in order with the requests around them.
func TestColdReads(t *testing.T) {
	srv := zdbtest.Start(t, zdbtest.Options{Mode: "user"})
	c := dialTCP(t, srv)
	var reqs [][]string
	var want []string
	for i := range 200 {
		k, v := "cold-"+strconv.Itoa(i), strings.Repeat(strconv.Itoa(i), 300)
		c.expect(bulk(k), "SET", k, v)
		reqs = append(reqs, []string{"GET", k}, []string{"SET", "warm-" + k, v}, []string{"GET", "warm-" + k})
		want = append(want, bulk(v), bulk("warm-"+k), bulk(v))
	}
	evict(t, srv.Dir)
	got := pipeline(t, c, reqs)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("request %d %v: got %.60q, want %.60q", i, reqs[i], got[i], want[i])
		}
	}
	mget := []string{"MGET"}
	for i := range 50 {
		mget = append(mget, "cold-"+strconv.Itoa(i))
	}
	evict(t, srv.Dir)
	items := arrayItems(t, c.do(mget...))
	for i, it := range items {
		if want := bulk(strings.Repeat(strconv.Itoa(i), 300)); it != want {
			t.Fatalf("MGET item %d: %.60q", i, it)
		}
	}
}

// TestConcurrentClients runs the server in this process (so that -race
// sees it) with one and two event loops: clients mixing loop commands,
// commands run on goroutines and WAIT (a connection handed over) each read
// back their own writes, while the namespace is synced in the background.
func TestConcurrentClients(t *testing.T) {
	for _, loops := range []int{1, 2} {
		t.Run(fmt.Sprintf("loops=%d", loops), func(t *testing.T) {
			dir := testutil.TempDir(t)
			log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			ecfg := engine.DefaultConfig()
			ecfg.IndexDir, ecfg.DataDir = filepath.Join(dir, "index"), filepath.Join(dir, "data")
			ecfg.DataSize = 256 << 10 // rotations under load
			ecfg.SyncTime = 10 * time.Millisecond
			eng := engine.New(ecfg, log)
			if err := eng.Open(); err != nil {
				t.Fatal(err)
			}
			scfg := server.DefaultConfig()
			scfg.Listen, scfg.Port, scfg.EventLoops = "127.0.0.1", testutil.FreePort(t), loops
			srv := server.New(scfg, eng, log)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 2)
			go func() { done <- eng.Run(ctx) }()
			go func() { done <- srv.Run(ctx) }()
			defer func() {
				cancel()
				for range 2 {
					if err := <-done; err != nil {
						t.Error(err)
					}
				}
				eng.Close()
			}()
			<-srv.Ready()
			addr := srv.Addrs()[0].String()

			var wg sync.WaitGroup
			for w := range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					clientLoad(t, addr, w)
				}()
			}
			wg.Wait()
		})
	}
}

func clientLoad(t *testing.T, addr string, w int) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Error(err)
		return
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(60 * time.Second))
	rd := bufio.NewReader(nc)
	do := func(args ...string) string {
		b := make([][]byte, len(args))
		for i, a := range args {
			b[i] = []byte(a)
		}
		if _, err := nc.Write(resp.AppendCommand(nil, b...)); err != nil {
			return "write: " + err.Error()
		}
		r, err := readReply(rd)
		if err != nil {
			return "read: " + err.Error()
		}
		return r
	}
	rng := rand.New(rand.NewPCG(uint64(w), 7))
	have := map[string]string{}
	for i := range 600 {
		k := fmt.Sprintf("w%d-k%d", w, rng.IntN(50))
		switch op := rng.IntN(20); {
		case op < 8:
			v := strings.Repeat(strconv.Itoa(i), 1+rng.IntN(2000))
			if r := do("SET", k, v); r != bulk(k) && !(r == null && have[k] == v) {
				t.Errorf("SET %s = %.40q", k, r)
				return
			}
			have[k] = v
		case op < 15:
			want := null
			if v, ok := have[k]; ok {
				want = bulk(v)
			}
			if r := do("GET", k); r != want {
				t.Errorf("GET %s = %.40q, want %.40q", k, r, want)
				return
			}
		case op < 17:
			want := errReply("Key not found")
			if _, found := have[k]; found {
				want = ok
			}
			if r := do("DEL", k); r != want {
				t.Errorf("DEL %s = %q, want %q", k, r, want)
				return
			}
			delete(have, k)
		case op < 18:
			if r := do("KEYTIME", k); !strings.HasPrefix(r, ":") && r != null {
				t.Errorf("KEYTIME %s = %q", k, r)
				return
			}
		case op < 19:
			if r := do("SCAN"); !strings.HasPrefix(r, "*2\r\n") && r != errReply("No more data") {
				t.Errorf("SCAN = %.40q", r)
				return
			}
		default:
			if r := do("EXISTS", k); r != one && r != zero {
				t.Errorf("EXISTS = %q", r)
				return
			}
		}
		if i == 200 { // replies that fill the socket: the loop waits to write
			big := strings.Repeat("b", 64<<10)
			bk := fmt.Sprintf("w%d-big", w)
			if r := do("SET", bk, big); r != bulk(bk) && r != null {
				t.Errorf("SET big = %.40q", r)
				return
			}
			var b []byte
			for range 100 {
				b = resp.AppendCommand(b, []byte("GET"), []byte(bk))
			}
			if _, err := nc.Write(b); err != nil {
				t.Error(err)
				return
			}
			for j := range 100 {
				if r, err := readReply(rd); err != nil || r != bulk(big) {
					t.Errorf("pipelined GET %d: %.40q %v", j, r, err)
					return
				}
			}
		}
		if i == 300 { // the connection moves to a goroutine for good
			if r := do("WAIT", "NSNEW", "100"); r != errReply("Timeout") {
				t.Errorf("WAIT = %q", r)
				return
			}
		}
	}
	if r := do("PING"); r != pong {
		t.Errorf("PING = %q", r)
	}
}

// TestWriteFailure: when the data file cannot grow (a file size limit), the
// SETs that cannot be written get "-Cannot write data right now" and their
// keys stay absent, while every SET acknowledged reads back, also after a
// restart; on both server models.
func TestWriteFailure(t *testing.T) {
	testutil.RequireTools(t, "prlimit")
	for _, loops := range []string{"0", "-1"} {
		t.Run("eventloops="+loops, func(t *testing.T) {
			srv := zdbtest.Start(t, zdbtest.Options{Mode: "user", Args: []string{"--eventloops", loops}})
			srv.Stop()
			p := testutil.StartProcess(t, nil, "prlimit", append([]string{"--fsize=65536", zdbtest.Binary(t)}, srv.Args()...)...)
			addr := "127.0.0.1:" + strconv.Itoa(srv.Port)
			testutil.WaitFor(t, 20*time.Second, "zdb under prlimit", func() error {
				nc, err := net.Dial("tcp", addr)
				if err == nil {
					nc.Close()
				}
				return err
			})
			c := dial(t, "tcp", addr)
			var reqs [][]string
			for i := range 150 {
				reqs = append(reqs, []string{"SET", "k" + strconv.Itoa(i), strings.Repeat(strconv.Itoa(i%10), 1000)})
			}
			got := pipeline(t, c, reqs)
			stored := map[string]bool{}
			for i, r := range got {
				k := reqs[i][1]
				switch r {
				case bulk(k):
					stored[k] = true
				case errReply("Cannot write data right now"):
				default:
					t.Fatalf("SET %s: %q", k, r)
				}
			}
			t.Logf("%d of %d SETs stored", len(stored), len(reqs))
			if len(stored) == 0 || len(stored) == len(reqs) {
				t.Fatalf("%d of %d SETs stored: the limit did not bite", len(stored), len(reqs))
			}
			check := func(c *conn) {
				t.Helper()
				for _, r := range reqs {
					want := null
					if stored[r[1]] {
						want = bulk(r[2])
					}
					c.expect(want, "GET", r[1])
				}
				c.expect(":"+strconv.Itoa(len(stored))+"\r\n", "DBSIZE")
			}
			check(c)
			p.Stop(10 * time.Second)
			srv.Restart(t)
			check(dialTCP(t, srv))
		})
	}
}

// TestStop: STOP is answered, then the server exits at once, closing the
// other connections (one served by the loop, one blocked in WAIT).
func TestStop(t *testing.T) {
	srv := zdbtest.Start(t, zdbtest.Options{Mode: "user"})
	other, waiter := dialTCP(t, srv), dialUnix(t, srv)
	other.expect(pong, "PING")
	if _, err := waiter.c.Write(resp.AppendCommand(nil, []byte("WAIT"), []byte("NSNEW"), []byte("60000"))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the WAIT is waiting
	c := dialTCP(t, srv)
	c.expect("+Stopping\r\n", "STOP")
	done := make(chan error, 1)
	go func() { done <- srv.Proc.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("server exit: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("server still running after STOP")
	}
	for _, cc := range []*conn{other, waiter} {
		_ = cc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if b, err := io.ReadAll(cc.rd); err != nil || len(b) > 0 {
			t.Fatalf("connection after STOP: %q %v", b, err)
		}
	}
}
