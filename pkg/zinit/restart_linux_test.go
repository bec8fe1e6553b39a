package zinit_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/zinit"
	"github.com/zos-go/zos/pkg/zinit/zinittest"
)

// kill -9 of zinit leaves its services running (even one that keeps
// writing output while zinit is down); the next zinit adopts them: same
// pids, no duplicates, output still collected, and stop still works.
func TestRestartAdoptsWithoutDuplicates(t *testing.T) {
	testutil.RequireTools(t, "sh", "sleep", "true")
	testutil.CheckLeaks(t)
	cl, d := zinittest.Start(t)
	m := marker()
	quiet, chatty, gated := testutil.Name(t, "qui"), testutil.Name(t, "cha"), testutil.Name(t, "gat")
	add(t, cl, quiet, zinit.InitService{Exec: "sleep " + m})
	add(t, cl, chatty, zinit.InitService{Exec: `sh -c 'i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.05; done'`})
	add(t, cl, gated, zinit.InitService{Exec: "sleep 100", Test: "true", After: []string{quiet}})
	before := map[string]int{}
	for _, n := range []string{quiet, chatty, gated} {
		before[n] = waitState(t, cl, n, zinit.ServiceStateRunning).Pid
	}
	stopped := testutil.Name(t, "stp")
	add(t, cl, stopped, zinit.InitService{Exec: "sleep 100"})
	waitState(t, cl, stopped, zinit.ServiceStateRunning)
	if err := cl.StopAndWait(ctxT(t, 10*time.Second), stopped); err != nil {
		t.Fatal(err)
	}

	d.Kill()
	time.Sleep(500 * time.Millisecond) // chatty writes ~10 lines while zinit is down: no SIGPIPE
	for n, pid := range before {
		if !testutil.ProcessAlive(pid) {
			t.Fatalf("service %s (pid %d) died with zinit", n, pid)
		}
	}
	d.Restart()
	old := cl
	cl = d.Client()
	// A client made before the restart redials.
	if list, err := old.List(); err != nil || len(list) != 4 {
		t.Fatalf("old client after restart: %v, %v", list, err)
	}
	for n, pid := range before {
		st := waitState(t, cl, n, zinit.ServiceStateRunning)
		if st.Pid != pid {
			t.Fatalf("service %s: pid %d after restart, want the adopted %d", n, st.Pid, pid)
		}
	}
	if n, pids := countProcs("sleep", m); n != 1 {
		t.Fatalf("%d processes of %s after restart (%v), want 1", n, quiet, pids)
	}
	// The stopped target survived the restart.
	if st, err := cl.Status(stopped); err != nil || st.Target != zinit.ServiceTargetDown || st.Pid != 0 {
		t.Fatalf("stopped service after restart: %+v, %v", st, err)
	}
	// The output written while zinit was down, and after, is collected.
	testutil.WaitFor(t, 5*time.Second, "ticks after restart", func() error {
		lines, err := cl.LogSnapshot(t.Context(), chatty)
		if err != nil {
			return err
		}
		if len(lines) < 15 {
			return fmt.Errorf("%d lines", len(lines))
		}
		return nil
	})
	// Adopted processes are not zinit's children, yet their end is seen.
	if err := cl.Kill(quiet, zinit.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st, err := cl.WaitStatus(ctxT(t, 10*time.Second), quiet, 20*time.Millisecond, func(s zinit.ServiceStatus) bool {
		return s.Pid != 0 && s.Pid != before[quiet]
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := countProcs("sleep", m); n != 1 || !testutil.ProcessAlive(st.Pid) {
		t.Fatalf("after killing the adopted process: %d processes, new pid %d", n, st.Pid)
	}
	if err := cl.StopAndWait(ctxT(t, 10*time.Second), chatty); err != nil {
		t.Fatal(err)
	}
	if testutil.ProcessAlive(before[chatty]) {
		t.Fatal("adopted service survived stop")
	}
}

// A state file whose pid now belongs to another process (same pid, another
// start time) is not adopted: zinit starts the service anew and leaves the
// other process alone.
func TestRestartIgnoresReusedPid(t *testing.T) {
	testutil.RequireTools(t, "sleep")
	testutil.CheckLeaks(t)
	cl, d := zinittest.Start(t)
	name := testutil.Name(t, "reu")
	add(t, cl, name, zinit.InitService{Exec: "sleep 100"})
	first := waitState(t, cl, name, zinit.ServiceStateRunning)
	if err := d.Shutdown(ctxT(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	if testutil.ProcessAlive(first.Pid) {
		t.Fatal("service survived shutdown")
	}
	// A stranger, and a state file claiming it is the service.
	stranger := testutil.StartProcess(t, nil, "sleep", "100")
	if err := os.MkdirAll(d.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	state, _ := json.Marshal(map[string]any{"pid": stranger.Pid(), "start": 12345, "running": true})
	if err := os.WriteFile(filepath.Join(d.StateDir, name+".state"), state, 0o600); err != nil {
		t.Fatal(err)
	}
	d.Restart()
	cl = d.Client()
	st, err := cl.WaitStatus(ctxT(t, 10*time.Second), name, 20*time.Millisecond, func(s zinit.ServiceStatus) bool {
		return s.State.Is(zinit.ServiceStateRunning) && s.Pid != 0
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Pid == stranger.Pid() {
		t.Fatalf("zinit adopted pid %d of another process", st.Pid)
	}
	if err := cl.StopAndWait(ctxT(t, 10*time.Second), name); err != nil {
		t.Fatal(err)
	}
	if stranger.Exited() {
		t.Fatal("zinit signalled the process that reused the pid")
	}
}

// Bad input is an error for that service or request alone.
func TestBadInput(t *testing.T) {
	testutil.RequireTools(t, "sleep")
	testutil.CheckLeaks(t)
	cl, d := zinittest.Start(t)
	good := testutil.Name(t, "gd")
	add(t, cl, good, zinit.InitService{Exec: "sleep 100"})
	goodPid := waitState(t, cl, good, zinit.ServiceStateRunning).Pid

	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(d.ConfigDir, name+".yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, tc := range map[string]struct{ content, msg string }{
		testutil.Name(t, "bad"): {"exec: [sleep\n", "yaml"},
		testutil.Name(t, "bad"): {"exec: sleep 1\nrestart: always\n", "field restart not found"},
		testutil.Name(t, "bad"): {"test: true\n", "exec is required"},
		testutil.Name(t, "bad"): {"exec: sleep 1\nsignal: {stop: SIGNOPE}\n", "invalid signal"},
	} {
		write(name, tc.content)
		err := cl.Monitor(name)
		if !errors.Is(err, zinit.ErrInvalidService) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("monitor %s (%q): %v, want ErrInvalidService about %q", name, tc.content, err, tc.msg)
		}
		if ok, _ := cl.Exists(name); ok {
			t.Errorf("bad service %s is monitored", name)
		}
	}
	if err := cl.Monitor("no-such-file"); !errors.Is(err, zinit.ErrInvalidService) {
		t.Errorf("monitor without a file: %v", err)
	}
	if err := cl.Monitor("../etc/passwd"); !errors.Is(err, zinit.ErrInvalidService) {
		t.Errorf("monitor of a path: %v", err)
	}

	// A cycle: the service that would close it is refused.
	x, y := testutil.Name(t, "x"), testutil.Name(t, "y")
	write(x, fmt.Sprintf("exec: sleep 100\nafter: [%s]\n", y))
	write(y, fmt.Sprintf("exec: sleep 100\nafter: [%s]\n", x))
	if err := cl.Monitor(x); err != nil {
		t.Fatal(err)
	}
	err := cl.Monitor(y)
	if !errors.Is(err, zinit.ErrInvalidService) || !strings.Contains(err.Error(), "cycle") {
		t.Fatalf("monitor closing a cycle: %v", err)
	}
	if st, _ := cl.Status(x); !st.State.Is(zinit.ServiceStateBlocked) || !strings.Contains(st.State.Reason(), "unknown") {
		t.Fatalf("service after an unknown one: %v", st.State)
	}

	// A missing executable: Failure with the reason, retried with backoff.
	missing := testutil.Name(t, "mis")
	add(t, cl, missing, zinit.InitService{Exec: "/nonexistent/zinit-test-binary --flag"})
	st := waitState(t, cl, missing, zinit.ServiceStateFailure)
	if !strings.Contains(st.State.Reason(), "no such file") {
		t.Fatalf("missing executable: %v", st.State)
	}
	if err := cl.Stop(missing); err != nil {
		t.Fatal(err)
	}

	// Wire-level garbage: the request fails, the connection and zinit go on.
	for _, tc := range []struct {
		cmd  string
		args []string
		want error
	}{
		{"bogus", nil, zinit.ErrUnknownCommand},
		{"status", nil, zinit.ErrInvalidArguments},
		{"kill", []string{good}, zinit.ErrInvalidArguments},
		{"status", []string{strings.Repeat("n", 5000)}, zinit.ErrRequestTooLong},
		{"reboot", nil, zinit.ErrNotSupported},
		{"start", []string{"nope"}, zinit.ErrUnknownService},
	} {
		if _, err := cl.Do(t.Context(), tc.cmd, tc.args...); !errors.Is(err, tc.want) {
			t.Errorf("%s %.20v: %v, want %v", tc.cmd, tc.args, err, tc.want)
		}
	}
	raw := rawConn(t, d.Socket)
	if got := raw(`status "unterminated` + "\n"); got != "status: error\nlines: 1\n\ninvalid command\n" {
		t.Errorf("bad quoting: %q", got)
	}
	if got := raw(strings.Repeat("x", 100000) + "\n"); !strings.HasPrefix(got, "status: error\nlines: 1\n\nrequest too long") {
		t.Errorf("oversized line: %q", got)
	}
	if got := raw("list\n"); !strings.HasPrefix(got, "status: ok\n") || !strings.Contains(got, good+": Running\n") {
		t.Errorf("list on the same connection after errors: %q", got)
	}
	if st, err := cl.Status(good); err != nil || st.Pid != goodPid || !st.State.Is(zinit.ServiceStateRunning) {
		t.Fatalf("good service after all that: %+v, %v", st, err)
	}

	// At start, zinit skips bad files and cycles and runs the rest.
	if err := d.Shutdown(ctxT(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	d.Restart()
	cl = d.Client()
	waitState(t, cl, good, zinit.ServiceStateRunning)
	list, err := cl.List()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := list[x]; ok {
		t.Fatalf("service %s of a cycle loaded at start: %v", x, list)
	}
	if !strings.Contains(d.Log(), "dependency cycle") {
		t.Fatal("zinit did not log the cycle")
	}
}

// The spec's 100 services start within a second. Wall-clock time depends on
// the machine's load (make test runs other packages' tests beside this one,
// on 2 cores): a slow attempt is retried on a fresh zinit, and on a machine
// shown to be loaded (100 plain fork+execs from this test take over 150 ms;
// about 50 ms when idle) the bound becomes 25 times that baseline, which is
// what the idle ratio of about 5 to 10 grows to under load. Both figures
// are logged; BenchmarkRowStart100 reports them.
func TestHundredServicesStartFast(t *testing.T) {
	testutil.RequireTools(t, "sleep")
	testutil.CheckLeaks(t)
	var times []time.Duration
	var base time.Duration
	for attempt := range 2 {
		elapsed := startHundred(t)
		base = spawnHundredDirectly(t)
		t.Logf("attempt %d: 100 services running after %v (100 direct spawns: %v)", attempt, elapsed, base)
		times = append(times, elapsed)
		if elapsed <= time.Second || base > 150*time.Millisecond && elapsed <= 25*base {
			return
		}
	}
	t.Fatalf("100 services took %v to start, want at most 1s (or 25 x %v on a loaded machine)", times, base)
}

// spawnHundredDirectly returns how long this process takes to start 100
// sleep processes with os/exec (each Start returns after the exec).
func spawnHundredDirectly(t *testing.T) time.Duration {
	start := time.Now()
	var cmds []*exec.Cmd
	defer func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}()
	for range 100 {
		c := exec.Command("sleep", "100")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	return time.Since(start)
}

func startHundred(t *testing.T) time.Duration {
	cl, d := zinittest.Start(t)
	var names []string
	for range 100 {
		n := testutil.Name(t, "h")
		names = append(names, n)
		if err := cl.AddService(n, zinit.InitService{Exec: "sleep 100"}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	for _, n := range names {
		if err := cl.Monitor(n); err != nil {
			t.Fatal(err)
		}
	}
	var elapsed time.Duration
	testutil.WaitFor(t, 10*time.Second, "100 running", func() error {
		list, err := cl.List()
		if err != nil {
			return err
		}
		for _, n := range names {
			if !list[n].Is(zinit.ServiceStateRunning) {
				return fmt.Errorf("%s is %v", n, list[n])
			}
		}
		elapsed = time.Since(start)
		return nil
	})
	if err := d.Shutdown(ctxT(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	return elapsed
}

// Shutdown stops dependents before what they depend on, and leaves no
// process behind.
func TestShutdownOrder(t *testing.T) {
	testutil.RequireTools(t, "sh", "sleep", "date")
	testutil.CheckLeaks(t)
	cl, d := zinittest.Start(t)
	dir := testutil.TempDir(t)
	base, mid, top := testutil.Name(t, "bas"), testutil.Name(t, "mid"), testutil.Name(t, "top")
	svc := func(name string, after ...string) zinit.InitService {
		stop := stampCmd(filepath.Join(dir, name))
		ready := filepath.Join(dir, name+".ready")
		return zinit.InitService{
			Exec:  fmt.Sprintf("sh -c %s", shq(fmt.Sprintf("trap %s TERM; touch %s; while :; do sleep 0.05; done", shq(stop+"; exit 0"), ready))),
			Test:  "test -e " + ready, // Running once the trap is set
			After: after,
		}
	}
	add(t, cl, base, svc(base))
	add(t, cl, mid, svc(mid, base))
	add(t, cl, top, svc(top, mid))
	waitState(t, cl, top, zinit.ServiceStateRunning)
	if err := d.Shutdown(ctxT(t, 20*time.Second)); err != nil {
		t.Fatal(err)
	}
	tb, tm, tt := readTimes(t, filepath.Join(dir, base)), readTimes(t, filepath.Join(dir, mid)), readTimes(t, filepath.Join(dir, top))
	if len(tb) != 1 || len(tm) != 1 || len(tt) != 1 || !tt[0].Before(tm[0]) || !tm[0].Before(tb[0]) {
		t.Fatalf("stop times top=%v mid=%v base=%v: want top, then mid, then base", tt, tm, tb)
	}
}

// Orphans that services leave behind are reparented to zinit (a child
// subreaper) and reaped: no zombies pile up.
func TestOrphansReaped(t *testing.T) {
	testutil.RequireTools(t, "sh", "sleep")
	testutil.CheckLeaks(t)
	cl, d := zinittest.Start(t)
	name := testutil.Name(t, "orp")
	// Every round leaves an orphan that exits 0.1s later.
	add(t, cl, name, zinit.InitService{Exec: `sh -c 'while :; do (sleep 0.1 &); sleep 0.05; done'`})
	waitState(t, cl, name, zinit.ServiceStateRunning)
	time.Sleep(time.Second)
	if z := zombiesOf(d.Pid()); len(z) > 5 { // a few may be in flight on a loaded machine
		t.Fatalf("zombie children of zinit: %v", z)
	}
}

// The JSON protocol of zinit v0.2 on its own socket.
func TestJSONProtocol(t *testing.T) {
	testutil.RequireTools(t, "sleep")
	testutil.CheckLeaks(t)
	sock := filepath.Join(testutil.TempDir(t), "json.sock")
	cl, _ := zinittest.StartWith(t, zinittest.Options{Args: []string{"--json-socket", sock}})
	name := testutil.Name(t, "js")
	add(t, cl, name, zinit.InitService{Exec: "sleep 100"})
	pid := waitState(t, cl, name, zinit.ServiceStateRunning).Pid
	call := func(line string) (state string, body json.RawMessage) {
		var reply struct {
			State string          `json:"state"`
			Body  json.RawMessage `json:"body"`
		}
		out := rawConn(t, sock)(line + "\n")
		if err := json.Unmarshal([]byte(out), &reply); err != nil {
			t.Fatalf("%s: %q: %v", line, out, err)
		}
		return reply.State, reply.Body
	}
	state, body := call("list")
	var list map[string]string
	if err := json.Unmarshal(body, &list); state != "ok" || err != nil || list[name] != "Running" {
		t.Fatalf("list: %s %s", state, body)
	}
	state, body = call("status " + name)
	var st struct {
		Name, State, Target string
		Pid                 int
		After               map[string]string
	}
	if err := json.Unmarshal(body, &st); state != "ok" || err != nil || st.Pid != pid || st.Target != "Up" || st.State != "Running" {
		t.Fatalf("status: %s %s", state, body)
	}
	state, body = call("status nope")
	if state != "error" || string(body) != `"unknown service name nope"` {
		t.Fatalf("unknown: %s %s", state, body)
	}
}

// The zinit command line prints the bodies as the daemon sends them.
func TestCLI(t *testing.T) {
	testutil.RequireTools(t, "sleep")
	testutil.CheckLeaks(t)
	cl, d := zinittest.Start(t)
	name := testutil.Name(t, "cli")
	if err := cl.AddService(name, zinit.InitService{Exec: "sleep 100"}); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		out, err := exec.Command(zinittest.Binary(t), append([]string{"-s", d.Socket}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := run("monitor", name); err != nil || out != "" {
		t.Fatalf("monitor: %q, %v", out, err)
	}
	waitState(t, cl, name, zinit.ServiceStateRunning)
	out, err := run("list")
	if err != nil || out != name+": Running\n" {
		t.Fatalf("list: %q, %v", out, err)
	}
	out, err = run("status", name)
	if err != nil || !strings.HasPrefix(out, "name: "+name+"\npid: ") || !strings.HasSuffix(out, "state: Running\ntarget: Up\n") {
		t.Fatalf("status: %q, %v", out, err)
	}
	out, err = run("status", "nope")
	if err == nil || !strings.Contains(out, "unknown service name nope") {
		t.Fatalf("status of unknown: %q, %v", out, err)
	}
	if out, err := run("stop", name); err != nil {
		t.Fatalf("stop: %q, %v", out, err)
	}
	if err := cl.StopAndWait(ctxT(t, 10*time.Second), name); err != nil {
		t.Fatal(err)
	}
	if out, err := run("forget", name); err != nil {
		t.Fatalf("forget: %q, %v", out, err)
	}
	if out, _ := run("list"); out != "" {
		t.Fatalf("list after forget: %q", out)
	}
}

// rawConn returns a function that writes to one connection to sock and
// reads what arrives within a short time.
func rawConn(t *testing.T, sock string) func(string) string {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return func(req string) string {
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		var out []byte
		buf := make([]byte, 64<<10)
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		for {
			n, err := c.Read(buf)
			out = append(out, buf[:n]...)
			if err != nil || responseComplete(out) {
				return string(out)
			}
		}
	}
}

// responseComplete reports whether b holds a whole line-protocol response,
// or a whole JSON line.
func responseComplete(b []byte) bool {
	s := string(b)
	if strings.HasPrefix(s, "{") {
		return strings.HasSuffix(s, "\n")
	}
	head, body, ok := strings.Cut(s, "\n\n")
	if !ok {
		return false
	}
	var n int
	for _, l := range strings.Split(head, "\n") {
		if v, ok := strings.CutPrefix(l, "lines: "); ok {
			fmt.Sscan(v, &n)
		}
	}
	return strings.Count(body, "\n") >= n
}
