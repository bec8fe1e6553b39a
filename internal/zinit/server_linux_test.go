package zinit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/internal/zinit/proto"
)

// runManager runs a Manager on a config dir holding files, with its line,
// JSON and log servers on sockets in a test directory; everything is shut
// down at the end of the test.
func runManager(t *testing.T, files map[string]string) (m *Manager, sockets map[string]string) {
	t.Helper()
	dir := testutil.TempDir(t)
	m = testManager(t, func(c *Config) {
		c.ConfigDir = filepath.Join(dir, "etc")
		c.StateDir = filepath.Join(dir, "run")
		c.Env = []string{"PATH=" + os.Getenv("PATH")}
		c.RestartDelay = 50 * time.Millisecond
		c.StopTimeout = time.Second
	})
	if err := os.MkdirAll(m.cfg.ConfigDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(m.cfg.ConfigDir, name+".yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srv := NewServer(m, m.log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var servers []chan error
	sockets = map[string]string{}
	for kind, serve := range map[string]func(context.Context, net.Listener) error{
		"line": srv.ServeLine, "json": srv.ServeJSON, "log": srv.ServeLog,
	} {
		path := filepath.Join(dir, kind+".sock")
		l, err := Listen(path)
		if err != nil {
			t.Fatal(err)
		}
		sockets[kind] = path
		ch := make(chan error, 1)
		servers = append(servers, ch)
		go func() { ch <- serve(ctx, l) }()
	}
	go func() { _ = m.Run(ctx); close(done) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := m.Shutdown(sctx, false); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		m.Finish()
		<-done
		cancel()
		for _, ch := range servers {
			if err := <-ch; err != nil {
				t.Errorf("server: %v", err)
			}
		}
	})
	testutil.WaitFor(t, 5*time.Second, "manager running", func() error {
		if len(m.List()) != len(files) {
			return errors.New("services not loaded")
		}
		return nil
	})
	return m, sockets
}

func waitKind(t *testing.T, m *Manager, name string, kind StateKind) Status {
	t.Helper()
	var st Status
	testutil.WaitFor(t, 10*time.Second, name+" "+kind.String(), func() error {
		var err error
		if st, err = m.Status(name); err != nil {
			return err
		}
		if st.State.Kind != kind {
			return errors.New(st.State.String())
		}
		return nil
	})
	return st
}

// The line protocol, byte for byte as the spec shows it, several commands
// on one connection.
func TestLineProtocolCompatibility(t *testing.T) {
	testutil.RequireTools(t, "sleep", "true")
	testutil.CheckLeaks(t)
	m, socks := runManager(t, map[string]string{
		"networkd": "exec: sleep 100\nafter: [redis, boot]\n",
		"redis":    "exec: sleep 100\n",
		"boot":     "exec: 'true'\noneshot: true\n",
	})
	st := waitKind(t, m, "networkd", Running)
	c, err := net.Dial("unix", socks["line"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	exchange := func(req string) string {
		t.Helper()
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		resp, err := proto.ReadResponse(r)
		if err != nil {
			t.Fatalf("%q: %v", req, err)
		}
		var b strings.Builder
		_ = proto.WriteResponse(&b, resp.Body(), resp.Err())
		return b.String()
	}
	for _, tc := range []struct{ req, want string }{
		{"list\n", "status: ok\nlines: 3\n\nboot: Success\nnetworkd: Running\nredis: Running\n"},
		{"status networkd\n", "status: ok\nlines: 7\n\nname: networkd\npid: " + itoa(st.Pid) +
			"\nstate: Running\ntarget: Up\nafter:\n - redis: Running\n - boot: Success\n"},
		{"status nope\n", "status: error\nlines: 1\n\nunknown service name nope\n"},
		{"frobnicate\n", "status: error\nlines: 1\n\nunknown command\n"},
		{"start 'unterminated\n", "status: error\nlines: 1\n\ninvalid command\n"},
		{"monitor redis\n", "status: error\nlines: 1\n\nservice redis already monitored\n"},
		{"forget redis\n", "status: error\nlines: 1\n\nservice target must be set to `Down`\n"},
		{"kill boot SIGTERM\n", "status: error\nlines: 1\n\nservice is not running\n"},
		{"stop boot\n", "status: ok\nlines: 0\n\n"},
		{"forget boot\n", "status: ok\nlines: 0\n\n"},
		{"list\n", "status: ok\nlines: 2\n\nnetworkd: Running\nredis: Running\n"},
	} {
		if got := exchange(tc.req); got != tc.want {
			t.Errorf("%q:\ngot  %q\nwant %q", tc.req, got, tc.want)
		}
	}
	// Several requests in one write are answered in order.
	if _, err := c.Write([]byte("status redis\nlist\n")); err != nil {
		t.Fatal(err)
	}
	first, err1 := proto.ReadResponse(r)
	second, err2 := proto.ReadResponse(r)
	if err1 != nil || err2 != nil || first.Lines[0] != "name: redis" || len(second.Lines) != 2 {
		t.Fatalf("pipelined: %v %v / %v %v", first, err1, second, err2)
	}
}

// The JSON form of zinit v0.2: one command per connection.
func TestJSONProtocolCompatibility(t *testing.T) {
	testutil.RequireTools(t, "sleep")
	testutil.CheckLeaks(t)
	m, socks := runManager(t, map[string]string{"redis": "exec: sleep 100\n", "web": "exec: sleep 100\nafter: [redis]\n"})
	st := waitKind(t, m, "web", Running)
	call := func(req string) string {
		c, err := net.Dial("unix", socks["json"])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte(req + "\n")); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(line)
	}
	for req, want := range map[string]string{
		"list":        `{"state":"ok","body":{"redis":"Running","web":"Running"}}`,
		"status web":  `{"state":"ok","body":{"after":{"redis":"Running"},"name":"web","pid":` + itoa(st.Pid) + `,"state":"Running","target":"Up"}}`,
		"status nope": `{"state":"error","body":"unknown service name nope"}`,
		"reboot":      `{"state":"error","body":"not supported: reboot: zinit is not PID 1"}`,
	} {
		if got := call(req); got != want {
			t.Errorf("%s:\ngot  %s\nwant %s", req, got, want)
		}
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(call("start web")), &v); err != nil || v["state"] != "ok" {
		t.Errorf("start: %v %v", v, err)
	}
}

// The log socket dumps the ring, then streams.
func TestLogSocket(t *testing.T) {
	testutil.RequireTools(t, "sh", "sleep")
	testutil.CheckLeaks(t)
	m, socks := runManager(t, map[string]string{"talk": "exec: sh -c 'echo one; echo two >&2; sleep 0.3; echo three; exec sleep 100'\n"})
	testutil.WaitFor(t, 5*time.Second, "first lines in the ring", func() error {
		if len(m.Ring().Snapshot()) < 2 {
			return errors.New("not yet")
		}
		return nil
	})
	c, err := net.Dial("unix", socks["log"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	var got []string
	for len(got) < 3 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		if strings.HasPrefix(line, "[") {
			got = append(got, strings.TrimSpace(line))
		}
	}
	want := []string{"[+] talk: one", "[-] talk: two", "[+] talk: three"}
	// stdout and stderr are separate pipes: one and two may swap.
	if got[2] != want[2] || !(got[0] == want[0] && got[1] == want[1] || got[0] == want[1] && got[1] == want[0]) {
		t.Fatalf("log lines %q, want %q", got, want)
	}
}

// A zinit killed between spawning a service and saving its pid finds the
// process by its output FIFO instead of starting a second one.
func TestAdoptWithoutRecordedPid(t *testing.T) {
	testutil.RequireTools(t, "sleep")
	testutil.CheckLeaks(t)
	m, _ := runManager(t, map[string]string{"svc": "exec: sleep 100\n"})
	pid := waitKind(t, m, "svc", Running).Pid
	m2 := testManager(t, func(c *Config) { *c = m.cfg })
	// The state file as it is right after a spawn whose pid was not saved.
	if err := writeState(m.cfg.StateDir, "svc", runState{}); err != nil {
		t.Fatal(err)
	}
	m2.mu.Lock()
	s := m2.addLocked("svc", m.services["svc"].cfg)
	ok := m2.adoptLocked(s)
	m2.mu.Unlock()
	if !ok || s.proc == nil || s.proc.pid != pid {
		t.Fatalf("adopted %v (proc %+v), want pid %d", ok, s.proc, pid)
	}
	s.proc.release()
	if rs, err := readState(m.cfg.StateDir, "svc"); err != nil || rs.Pid != pid || rs.Start == 0 {
		t.Fatalf("state after adoption: %+v, %v", rs, err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
