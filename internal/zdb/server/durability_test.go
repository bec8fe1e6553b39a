package server_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/internal/zdb/resp"
	"github.com/zos-go/zos/pkg/zdb/zdbtest"
)

// TestRestartAndRotation writes enough to rotate the data files several
// times, overwrites and deletes across files, restarts, and reads it all.
func TestRestartAndRotation(t *testing.T) {
	srv := zdbtest.Start(t, zdbtest.Options{Mode: "user", DataSize: 4096})
	c := dialTCP(t, srv)
	val := func(i, gen int) string { return fmt.Sprintf("value-%d-%d-%s", i, gen, strings.Repeat("x", 200)) }
	for i := 0; i < 100; i++ {
		c.expect(bulk("k"+strconv.Itoa(i)), "SET", "k"+strconv.Itoa(i), val(i, 0))
	}
	for i := 0; i < 100; i += 3 {
		c.expect(bulk("k"+strconv.Itoa(i)), "SET", "k"+strconv.Itoa(i), val(i, 1))
	}
	for i := 1; i < 100; i += 10 {
		c.expect(ok, "DEL", "k"+strconv.Itoa(i))
	}
	c.expect(ok, "NSJUMP")
	files, _ := filepath.Glob(filepath.Join(srv.Dir, "data", "default", "d*"))
	if len(files) < 5 {
		t.Fatalf("only %d data files: rotation did not happen", len(files))
	}
	check := func(c *conn) {
		t.Helper()
		for i := 0; i < 100; i++ {
			k := "k" + strconv.Itoa(i)
			switch {
			case i%10 == 1:
				c.expect(null, "GET", k)
			case i%3 == 0:
				c.expect(bulk(val(i, 1)), "GET", k)
			default:
				c.expect(bulk(val(i, 0)), "GET", k)
			}
		}
		c.expect(":90\r\n", "DBSIZE")
		// SCAN crosses every file and returns each live key once
		seen := map[string]bool{}
		raw := c.do("SCAN")
		for !strings.HasPrefix(raw, "-") {
			page := arrayItems(t, raw)
			for _, it := range arrayItems(t, page[1]) {
				k := bulkValue(t, it[strings.Index(it, "$"):])
				if seen[k] {
					t.Fatalf("SCAN returned %s twice", k)
				}
				seen[k] = true
			}
			raw = c.do("SCAN", bulkValue(t, page[0]))
		}
		if len(seen) != 90 {
			t.Fatalf("SCAN saw %d keys, want 90", len(seen))
		}
	}
	check(c)
	srv.Restart(t)
	check(dialUnix(t, srv))
}

// TestKillDuringSyncWrites kills the server (SIGKILL) while 8 clients write
// in --sync mode: after a restart every acknowledged key reads back.
func TestKillDuringSyncWrites(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := zdbtest.Start(t, zdbtest.Options{Mode: "user", Sync: true, DataSize: 1 << 20})
	var (
		mu    sync.Mutex
		acked = map[string]string{}
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(srv.Port))
			if err != nil {
				return
			}
			defer c.Close()
			rd := bufio.NewReader(c)
			for i := 0; ctx.Err() == nil; i++ {
				k := fmt.Sprintf("w%d-%d", w, i)
				v := strings.Repeat(k, 1+i%50)
				if _, err := c.Write(resp.AppendCommand(nil, []byte("SET"), []byte(k), []byte(v))); err != nil {
					return
				}
				r, err := readReply(rd)
				if err != nil {
					return // killed
				}
				if r != bulk(k) {
					t.Errorf("SET %s: %q", k, r)
					return
				}
				mu.Lock()
				acked[k] = v
				mu.Unlock()
			}
		}()
	}
	testutil.WaitFor(t, 20*time.Second, "writes", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(acked) < 2000 {
			return fmt.Errorf("%d acknowledged", len(acked))
		}
		return nil
	})
	srv.Kill()
	wg.Wait()
	srv.Restart(t)
	c := dialTCP(t, srv)
	for k, v := range acked {
		if got := c.do("GET", k); got != bulk(v) {
			t.Fatalf("acknowledged %s lost after kill -9: %q", k, got)
		}
	}
	t.Logf("%d acknowledged keys survived", len(acked))
}

// TestTornTail cuts and pads the newest files as a crash would: the server
// repairs them at start and keeps every complete record.
func TestTornTail(t *testing.T) {
	srv := zdbtest.Start(t, zdbtest.Options{Mode: "user"})
	c := dialTCP(t, srv)
	for i := 0; i < 10; i++ {
		c.expect(bulk("k"+strconv.Itoa(i)), "SET", "k"+strconv.Itoa(i), "v"+strconv.Itoa(i))
	}
	srv.Stop()
	idx := filepath.Join(srv.Dir, "index", "default", "i0")
	dat := filepath.Join(srv.Dir, "data", "default", "d0")
	// the last record's data is cut in the middle, its index entry too
	cut := func(path string, n int64) {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, st.Size()-n); err != nil {
			t.Fatal(err)
		}
	}
	cut(dat, 1)
	cut(idx, 5)
	srv.Restart(t)
	c = dialTCP(t, srv)
	for i := 0; i < 9; i++ {
		c.expect(bulk("v"+strconv.Itoa(i)), "GET", "k"+strconv.Itoa(i))
	}
	c.expect(null, "GET", "k9")
	c.expect(bulk("k9"), "SET", "k9", "again")
	srv.Stop()

	// an index entry whose data never reached the disk, and a zero-filled tail
	cut(dat, int64(len("again"))+2+18)
	f, err := os.OpenFile(idx, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, 100))
	f.Close()
	srv.Restart(t)
	c = dialUnix(t, srv)
	c.expect(null, "GET", "k9")
	c.expect(bulk("v8"), "GET", "k8")
	c.expect(":9\r\n", "DBSIZE")
}

// TestCorruptFile: damage that is not a torn tail stops the start-up with an
// error naming the file.
func TestCorruptFile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		file  string
		write func(b []byte) []byte
	}{
		{"bad index magic", "index/default/i0", func(b []byte) []byte { copy(b, "XXXX"); return b }},
		{"v1 index version", "index/default/i0", func(b []byte) []byte { b[4] = 2; return b }},
		{"bad data magic", "data/default/d0", func(b []byte) []byte { copy(b, "XXXX"); return b }},
		{"data checksum in the middle", "data/default/d0", func(b []byte) []byte { b[28+18+4+1] ^= 0xff; return b }},
		{"index garbage in the middle", "index/default/i0", func(b []byte) []byte { b[29] = 0; b[30] = 9; return b }},
		{"descriptor", "index/default/zdb-namespace", func(b []byte) []byte { return b[:3] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := zdbtest.Start(t, zdbtest.Options{Mode: "user"})
			c := dialTCP(t, srv)
			for i := 0; i < 5; i++ {
				c.expect(bulk("key"+strconv.Itoa(i)), "SET", "key"+strconv.Itoa(i), "value")
			}
			srv.Stop()
			path := filepath.Join(srv.Dir, tc.file)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tc.write(b), 0o600); err != nil {
				t.Fatal(err)
			}
			p := testutil.StartProcess(t, nil, zdbtest.Binary(t), srv.Args()...)
			testutil.WaitFor(t, 10*time.Second, "zdb exit", func() error {
				if !p.Exited() {
					return fmt.Errorf("still running")
				}
				return nil
			})
			if err := p.Wait(); err == nil {
				t.Fatal("server started on a corrupt file")
			}
			if log := p.Log(); !strings.Contains(log, path) || strings.Contains(log, "panic") {
				t.Fatalf("error does not name %s (or panicked):\n%s", path, log)
			}
		})
	}
}

// TestHooks: the hook runs on events, and a failing ready hook aborts the
// start-up.
func TestHooks(t *testing.T) {
	dir := testutil.TempDir(t)
	logf := filepath.Join(dir, "events")
	hook := filepath.Join(dir, "hook.sh")
	script := "#!/bin/sh\necho \"$@\" >> " + logf + "\n[ \"$1\" = ready ] && [ -e " + filepath.Join(dir, "fail") + " ] && exit 3\nexit 0\n"
	if err := os.WriteFile(hook, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	srv := zdbtest.Start(t, zdbtest.Options{Mode: "user", Hook: hook})
	c := dialTCP(t, srv)
	c.expect(ok, "NSNEW", "hooked")
	c.expect(ok, "NSDEL", "hooked")
	testutil.WaitFor(t, 5*time.Second, "hook events", func() error {
		b, _ := os.ReadFile(logf)
		for _, ev := range []string{"ready ", "namespace-created ", "namespace-deleted "} {
			if !strings.Contains(string(b), ev) {
				return fmt.Errorf("no %q in %q", ev, b)
			}
		}
		return nil
	})
	if got := c.do("HOOKS"); !strings.HasPrefix(got, "*3\r\n*6\r\n") {
		t.Fatalf("HOOKS = %q", got)
	}
	srv.Stop()
	if err := os.WriteFile(filepath.Join(dir, "fail"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p := testutil.StartProcess(t, nil, zdbtest.Binary(t), srv.Args()...)
	if err := p.Wait(); err == nil {
		t.Fatal("server ran although the ready hook failed")
	}
}

// TestWait: WAIT returns when another client runs the command.
func TestWait(t *testing.T) {
	srv := zdbtest.Start(t, zdbtest.Options{Mode: "user"})
	a, b := dialTCP(t, srv), dialTCP(t, srv)
	a.expect(errReply("Invalid timeout"), "WAIT", "SET", "5")
	a.expect(errReply("Unknown command to watch"), "WAIT", "NOPE")
	a.expect(errReply("Timeout"), "WAIT", "SET", "100")
	done := make(chan string)
	go func() {
		_, _ = a.c.Write(resp.AppendCommand(nil, []byte("WAIT"), []byte("set"), []byte("5000")))
		r, _ := readReply(a.rd)
		done <- r
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.expect(bulk("k"), "SET", "k", time.Now().String())
		select {
		case r := <-done:
			if r != "+SET\r\n" {
				t.Fatalf("WAIT = %q", r)
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("WAIT did not return")
		}
	}
}
