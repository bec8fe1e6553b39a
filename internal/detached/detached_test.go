package detached

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/atomicfile"
	"github.com/zos-go/zos/internal/testutil"
)

// agentEnv makes the test binary act as an agent process: start one detached
// process, print its pid and exit (see TestMain).
const agentEnv = "DETACHED_TEST_AGENT"

func TestMain(m *testing.M) {
	if spec := os.Getenv(agentEnv); spec != "" {
		var a struct {
			Dir, Name string
			Argv      []string
		}
		if err := json.Unmarshal([]byte(spec), &a); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		c, err := Dir{Path: a.Dir}.Start(context.Background(), a.Name, a.Argv)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(c.Pid)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func needTools(t *testing.T) {
	t.Helper()
	testutil.RequireTools(t, "sh", "sleep")
}

// start starts name in d and makes sure it is gone at the end of the test.
func start(t *testing.T, d Dir, name string, argv ...string) *Child {
	t.Helper()
	c, err := d.Start(t.Context(), name, argv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kill(c) })
	return c
}

func kill(c *Child) {
	_ = syscall.Kill(c.Pid, syscall.SIGKILL)
	<-c.Done()
}

// waitLog waits until the log of name contains want.
func waitLog(t *testing.T, d Dir, name, want string) {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, "log "+want, func() error {
		b, _ := os.ReadFile(d.LogPath(name))
		if !strings.Contains(string(b), want) {
			return fmt.Errorf("log %q", b)
		}
		return nil
	})
}

// parentPid returns the parent of pid, from /proc.
func parentPid(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatal(err)
	}
	return ppid
}

// TestAgentRestart starts a process from another agent process that exits,
// then finds it from a fresh Dir, stops it, and reads its output kept after.
func TestAgentRestart(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	argv := []string{"sh", "-c", "echo started; exec sleep 60"}
	spec, _ := json.Marshal(map[string]any{"Dir": dir, "Name": "svc", "Argv": argv})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), agentEnv+"="+string(spec))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("agent: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("agent printed %q", out)
	}
	t.Cleanup(func() { // not our child: found by pid, not reaped by us
		if r, ok := (Dir{Path: dir}).Find("svc"); ok {
			_ = syscall.Kill(r.Pid, syscall.SIGKILL)
		}
	})

	d := Dir{Path: dir} // the new agent
	r, ok := d.Find("svc")
	if !ok || r.Pid != pid || !slices.Equal(r.Argv, argv) {
		t.Fatalf("Find = %+v, %v; agent started pid %d", r, ok, pid)
	}
	if ppid := parentPid(t, pid); ppid == os.Getpid() || ppid == cmd.Process.Pid {
		t.Errorf("detached process has parent %d: not detached", ppid)
	}
	waitLog(t, d, "svc", "started")
	if _, err := d.Start(t.Context(), "svc", argv); !errors.Is(err, ErrRunning) {
		t.Errorf("Start of a running process: %v, want ErrRunning", err)
	}
	if err := d.Stop(t.Context(), "svc"); err != nil {
		t.Fatal(err)
	}
	if r.Alive() {
		t.Error("process runs after Stop")
	}
	if _, ok := d.Load("svc"); ok {
		t.Error("record kept after Stop")
	}
	if b, err := os.ReadFile(d.LogPath("svc")); err != nil || string(b) != "started\n" {
		t.Errorf("log after Stop = %q, %v", b, err)
	}
	if err := d.Stop(t.Context(), "svc"); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// TestPidReuse fakes a record whose pid now belongs to another process (the
// start time differs): it is not running, Stop leaves that process alone and
// Start starts a new one.
func TestPidReuse(t *testing.T) {
	needTools(t)
	testutil.CheckLeaks(t)
	d := Dir{Path: t.TempDir()}
	other := start(t, d, "svc", "sleep", "60")
	fake := other.Record
	fake.Start++
	b, _ := json.Marshal(fake)
	if err := atomicfile.WriteFile(filepath.Join(d.Path, "svc.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Find("svc"); ok {
		t.Error("Find took a reused pid for the recorded process")
	}
	if err := d.Stop(t.Context(), "svc"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-other.Done():
		t.Fatal("Stop killed the process that reused the pid")
	case <-time.After(100 * time.Millisecond):
	}
	if _, ok := d.Load("svc"); ok {
		t.Error("stale record kept after Stop")
	}
	if err := atomicfile.WriteFile(filepath.Join(d.Path, "svc.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	c := start(t, d, "svc", "sleep", "60")
	if c.Pid == other.Pid {
		t.Error("Start did not start a new process")
	}
	if r, ok := d.Find("svc"); !ok || r.Pid != c.Pid {
		t.Errorf("Find = %+v, %v; want pid %d", r, ok, c.Pid)
	}
}

// TestStop checks that Stop sends SIGTERM first and SIGKILL only to a
// process still there after Grace.
func TestStop(t *testing.T) {
	needTools(t)
	testutil.CheckLeaks(t)
	d := Dir{Path: t.TempDir(), Grace: 300 * time.Millisecond}

	c := start(t, d, "polite", "sh", "-c", "trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.05; done")
	waitLog(t, d, "polite", "ready")
	if err := d.Stop(t.Context(), "polite"); err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	if c.Err() != nil {
		t.Errorf("process handling SIGTERM ended with %v", c.Err())
	}
	waitLog(t, d, "polite", "got-term")

	c = start(t, d, "deaf", "sh", "-c", "trap '' TERM; echo ready; exec sleep 60")
	waitLog(t, d, "deaf", "ready")
	t0 := time.Now()
	if err := d.Stop(t.Context(), "deaf"); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(t0); took < d.Grace {
		t.Errorf("SIGKILL after %v, before the grace of %v", took, d.Grace)
	}
	<-c.Done()
	var ee *exec.ExitError
	if !errors.As(c.Err(), &ee) {
		t.Fatalf("process ignoring SIGTERM ended with %v", c.Err())
	}
	if ws := ee.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("process ignoring SIGTERM ended with %v, want SIGKILL", ee)
	}
}

// TestEnsure: the same argv leaves the process alone, another replaces it,
// none is refused before anything is touched.
func TestEnsure(t *testing.T) {
	needTools(t)
	testutil.CheckLeaks(t)
	d := Dir{Path: t.TempDir()}
	ctx := t.Context()
	t.Cleanup(func() { _ = d.Stop(context.WithoutCancel(ctx), "svc") })
	if err := d.Ensure(ctx, "svc", []string{"sleep", "60"}); err != nil {
		t.Fatal(err)
	}
	first, ok := d.Find("svc")
	if !ok {
		t.Fatal("not running after Ensure")
	}
	if err := d.Ensure(ctx, "svc", []string{"sleep", "60"}); err != nil {
		t.Fatal(err)
	}
	if r, _ := d.Find("svc"); r.Pid != first.Pid {
		t.Errorf("same argv restarted the process (%d → %d)", first.Pid, r.Pid)
	}
	if err := d.Ensure(ctx, "svc", nil); !errors.Is(err, ErrNoCommand) {
		t.Errorf("Ensure with empty argv: %v", err)
	}
	if !first.Alive() {
		t.Error("Ensure with empty argv stopped the process")
	}
	if err := d.Ensure(ctx, "svc", []string{"sleep", "61"}); err != nil {
		t.Fatal(err)
	}
	r, ok := d.Find("svc")
	if !ok || r.Pid == first.Pid || !slices.Equal(r.Argv, []string{"sleep", "61"}) {
		t.Errorf("another argv: Find = %+v, %v (was pid %d)", r, ok, first.Pid)
	}
	if first.Alive() {
		t.Error("replaced process still runs")
	}
}

// TestList lists records by prefix, ended processes included.
func TestList(t *testing.T) {
	needTools(t)
	testutil.CheckLeaks(t)
	d := Dir{Path: filepath.Join(t.TempDir(), "services")}
	if l, err := d.List(""); err != nil || l != nil {
		t.Errorf("List of a missing directory = %v, %v", l, err)
	}
	for _, n := range []string{"b-1", "a-2", "a-1"} {
		start(t, d, n, "sleep", "60")
	}
	if l, err := d.List("a-"); err != nil || !slices.Equal(l, []string{"a-1", "a-2"}) {
		t.Errorf(`List("a-") = %v, %v`, l, err)
	}
	c := start(t, d, "ended", "sh", "-c", "exit 3")
	<-c.Done()
	if _, ok := d.Find("ended"); ok {
		t.Error("Find of an ended process")
	}
	if l, _ := d.List(""); !slices.Equal(l, []string{"a-1", "a-2", "b-1", "ended"}) {
		t.Errorf(`List("") = %v`, l)
	}
}

// TestStartErrors: bad commands leave nothing behind.
func TestStartErrors(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	if _, err := d.Start(t.Context(), "svc", nil); !errors.Is(err, ErrNoCommand) {
		t.Errorf("empty argv: %v", err)
	}
	if _, err := d.Start(t.Context(), "svc", []string{"/nonexistent/prog"}); err == nil {
		t.Error("missing program started")
	}
	if l, _ := d.List(""); len(l) != 0 {
		t.Errorf("records after failed starts: %v", l)
	}
}

// TestLog: Start appends to the log of an earlier run, or empties it with
// TruncateLog.
func TestLog(t *testing.T) {
	needTools(t)
	for _, tc := range []struct {
		truncate bool
		want     string
	}{{false, "one\ntwo\n"}, {true, "two\n"}} {
		d := Dir{Path: t.TempDir(), TruncateLog: tc.truncate}
		for _, word := range []string{"one", "two"} {
			c, err := d.Start(t.Context(), "svc", []string{"sh", "-c", "echo " + word})
			if err != nil {
				t.Fatal(err)
			}
			<-c.Done()
		}
		if b, _ := os.ReadFile(d.LogPath("svc")); string(b) != tc.want {
			t.Errorf("TruncateLog=%v: log %q, want %q", tc.truncate, b, tc.want)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		f.Add(string(b))
	}
	f.Add("1 (a) b) S 0 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 42 0 0")
	f.Add("1 (x")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		_, _, _ = parseStat([]byte(s)) // must not panic
		// A well-formed line with s as the command name parses.
		line := fmt.Sprintf("7 (%s) R 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 %d 0 0\n", s, len(s))
		st, state, ok := parseStat([]byte(line))
		if !ok || state != 'R' || st != uint64(len(s)) {
			t.Errorf("parseStat(%q) = %d, %q, %v", line, st, state, ok)
		}
	})
}
