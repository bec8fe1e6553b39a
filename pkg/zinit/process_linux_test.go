package zinit_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/zinit"
	"github.com/zos-go/zos/pkg/zinit/zinittest"
)

// b runs only after a is Running, and a is Running only once its test
// passes: while the test fails, a is Spawned and b Blocked (saying why).
func TestDependencyOrderAndTestGate(t *testing.T) {
	testutil.RequireTools(t, "sh", "sleep", "test", "date")
	testutil.CheckLeaks(t)
	cl, _ := zinittest.Start(t)
	dir := testutil.TempDir(t)
	ready := filepath.Join(dir, "ready")
	a, b, c := testutil.Name(t, "a"), testutil.Name(t, "b"), testutil.Name(t, "c")
	// b and c are Running once they wrote their start time (their test).
	stamped := func(name string, after string) zinit.InitService {
		path := filepath.Join(dir, name)
		return zinit.InitService{
			Exec:  fmt.Sprintf("sh -c %s", shq(stampCmd(path)+"; exec sleep 100")),
			Test:  "test -s " + path,
			After: []string{after},
		}
	}
	add(t, cl, c, stamped("c", b))
	add(t, cl, b, stamped("b", a))
	add(t, cl, a, zinit.InitService{Exec: "sleep 100", Test: "test -f " + ready})

	waitState(t, cl, a, zinit.ServiceStateSpawned)
	time.Sleep(600 * time.Millisecond) // a few test rounds
	st, err := cl.Status(b)
	if err != nil {
		t.Fatal(err)
	}
	if !st.State.Is(zinit.ServiceStateBlocked) || !strings.Contains(st.State.Reason(), a) || st.Pid != 0 {
		t.Fatalf("b while a is not ready: %+v, want blocked on %s", st, a)
	}
	if len(st.Deps) != 1 || st.Deps[0].Name != a || !st.Deps[0].State.Is(zinit.ServiceStateSpawned) {
		t.Fatalf("b deps: %+v", st.Deps)
	}
	if _, err := os.Stat(filepath.Join(dir, "b")); err == nil {
		t.Fatal("b ran before a was ready")
	}
	if err := os.WriteFile(ready, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitState(t, cl, c, zinit.ServiceStateRunning)
	tb, tc := readTimes(t, filepath.Join(dir, "b")), readTimes(t, filepath.Join(dir, "c"))
	if len(tb) != 1 || len(tc) != 1 || tc[0].Before(tb[0]) {
		t.Fatalf("start times b=%v c=%v: want one each, c after b", tb, tc)
	}
}

// A crashing service is restarted with a growing delay: 100ms, 200ms,
// 400ms, 800ms ... (the daemon's backoff), never in a tight loop.
func TestCrashRestartBackoff(t *testing.T) {
	testutil.RequireTools(t, "sh", "date")
	testutil.CheckLeaks(t)
	cl, _ := zinittest.Start(t)
	stamps := filepath.Join(testutil.TempDir(t), "starts")
	name := testutil.Name(t, "crash")
	add(t, cl, name, zinit.InitService{Exec: fmt.Sprintf("sh -c %s", shq(stampCmd(stamps)+"; exit 3"))})
	testutil.WaitFor(t, 10*time.Second, "5 starts", func() error {
		if n := len(readTimes(t, stamps)); n < 5 {
			return fmt.Errorf("%d starts", n)
		}
		return nil
	})
	// Between two starts the service is in error, with its exit code.
	st := waitState(t, cl, name, zinit.ServiceStateError)
	if !strings.Contains(st.State.Reason(), ", 3)") {
		t.Fatalf("state %v, want error with exit code 3", st.State)
	}
	if err := cl.StopAndWait(ctxT(t, 10*time.Second), name); err != nil {
		t.Fatal(err)
	}
	starts := readTimes(t, stamps)
	var gaps []time.Duration
	for i := 1; i < len(starts); i++ {
		gaps = append(gaps, starts[i].Sub(starts[i-1]))
	}
	t.Logf("gaps between starts: %v", gaps)
	for i, min := range []time.Duration{100, 200, 400, 800} {
		if gaps[i] < min*time.Millisecond {
			t.Fatalf("gap %d = %v, want at least %v (gaps %v)", i, gaps[i], min*time.Millisecond, gaps)
		}
	}
	time.Sleep(2 * time.Second) // stopped: no more restarts
	if n := len(readTimes(t, stamps)); n != len(starts) {
		t.Fatalf("%d starts after stop, want %d", n, len(starts))
	}
}

// A service that ignores its stop signal is killed, with its whole process
// group, once the stop timeout (1s here) passes.
func TestStopEscalatesToSIGKILL(t *testing.T) {
	testutil.RequireTools(t, "sh", "sleep")
	testutil.CheckLeaks(t)
	cl, _ := zinittest.StartWith(t, zinittest.Options{StopTimeout: time.Second})
	m := marker()
	name := testutil.Name(t, "stub")
	// The shell ignores TERM, and so do its children.
	add(t, cl, name, zinit.InitService{Exec: fmt.Sprintf(`sh -c "trap '' TERM; sleep %s & sleep %s; wait"`, m, m)})
	st := waitState(t, cl, name, zinit.ServiceStateRunning)
	testutil.WaitFor(t, 5*time.Second, "two sleeps", func() error {
		if n, _ := countProcs("sleep", m); n != 2 {
			return fmt.Errorf("%d sleeps", n)
		}
		return nil
	})
	start := time.Now()
	if err := cl.StopAndWait(ctxT(t, 10*time.Second), name); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("stopped after %v: the stop signal should have been ignored for 1s", d)
	}
	if testutil.ProcessAlive(st.Pid) {
		t.Fatalf("pid %d alive", st.Pid)
	}
	if n, pids := countProcs("sleep", m); n != 0 {
		t.Fatalf("process group members left: %v", pids)
	}
	if st, _ := cl.Status(name); !st.State.Is(zinit.ServiceStateSuccess) || st.Target != zinit.ServiceTargetDown {
		t.Fatalf("after stop: %+v", st)
	}
}

// forget refuses a service whose target is up or whose process still runs.
func TestForget(t *testing.T) {
	testutil.RequireTools(t, "sh", "sleep")
	testutil.CheckLeaks(t)
	cl, _ := zinittest.StartWith(t, zinittest.Options{StopTimeout: 3 * time.Second})
	name := testutil.Name(t, "fgt")
	ready := filepath.Join(testutil.TempDir(t), "trapped")
	add(t, cl, name, zinit.InitService{
		Exec: fmt.Sprintf(`sh -c "trap 'sleep 0.5; exit 0' TERM; touch %s; while :; do sleep 0.1; done"`, ready),
		Test: "test -e " + ready, // Running once the trap is set
	})
	waitState(t, cl, name, zinit.ServiceStateRunning)
	if err := cl.Forget(name); !errors.Is(err, zinit.ErrTargetNotDown) {
		t.Fatalf("forget with target up: %v", err)
	}
	if err := cl.Stop(name); err != nil {
		t.Fatal(err)
	}
	if err := cl.Forget(name); !errors.Is(err, zinit.ErrServiceRunning) {
		t.Fatalf("forget while the process ends: %v", err)
	}
	if err := cl.StopAndWait(ctxT(t, 10*time.Second), name); err != nil {
		t.Fatal(err)
	}
	if err := cl.Forget(name); err != nil {
		t.Fatal(err)
	}
	if ok, err := cl.Exists(name); ok || err != nil {
		t.Fatalf("exists after forget: %v, %v", ok, err)
	}
	if err := cl.Forget(name); !errors.Is(err, zinit.ErrUnknownService) {
		t.Fatalf("second forget: %v", err)
	}
	// The file is still there: monitor brings it back.
	if err := cl.Monitor(name); err != nil {
		t.Fatal(err)
	}
	waitState(t, cl, name, zinit.ServiceStateRunning)
}

func TestOneshot(t *testing.T) {
	testutil.RequireTools(t, "sh", "sleep", "true", "false")
	testutil.CheckLeaks(t)
	cl, _ := zinittest.Start(t)
	ok, bad := testutil.Name(t, "ok"), testutil.Name(t, "bad")
	afterOK, afterBad := testutil.Name(t, "aok"), testutil.Name(t, "abd")
	add(t, cl, afterOK, zinit.InitService{Exec: "sleep 100", After: []string{ok}})
	add(t, cl, afterBad, zinit.InitService{Exec: "sleep 100", After: []string{bad}})
	add(t, cl, ok, zinit.InitService{Exec: "true", Oneshot: true})
	add(t, cl, bad, zinit.InitService{Exec: "sh -c 'exit 7'", Oneshot: true})

	waitState(t, cl, ok, zinit.ServiceStateSuccess)
	waitState(t, cl, afterOK, zinit.ServiceStateRunning)
	st := waitState(t, cl, bad, zinit.ServiceStateError)
	if !strings.Contains(st.State.Reason(), ", 7)") {
		t.Fatalf("failed oneshot: %v, want exit code 7", st.State)
	}
	time.Sleep(500 * time.Millisecond) // a oneshot is not restarted
	st, _ = cl.Status(bad)
	if !st.State.Is(zinit.ServiceStateError) || st.Pid != 0 {
		t.Fatalf("failed oneshot later: %+v", st)
	}
	dep, err := cl.Status(afterBad)
	if err != nil {
		t.Fatal(err)
	}
	if !dep.State.Is(zinit.ServiceStateBlocked) || !strings.Contains(dep.State.Reason(), bad+" is error(exited(") {
		t.Fatalf("dependent of a failed oneshot: %v, want blocked saying why", dep.State)
	}
	if len(dep.Deps) != 1 || !dep.Deps[0].State.Is(zinit.ServiceStateError) {
		t.Fatalf("deps: %+v", dep.Deps)
	}
	// start runs a finished oneshot again.
	if err := cl.Start(ok); err != nil {
		t.Fatal(err)
	}
	waitState(t, cl, ok, zinit.ServiceStateSuccess)
}

func TestKillRestarts(t *testing.T) {
	testutil.RequireTools(t, "sleep")
	testutil.CheckLeaks(t)
	cl, _ := zinittest.Start(t)
	name := testutil.Name(t, "kil")
	add(t, cl, name, zinit.InitService{Exec: "sleep 100"})
	st := waitState(t, cl, name, zinit.ServiceStateRunning)
	if err := cl.Kill(name, "SIGFOO"); !errors.Is(err, zinit.ErrInvalidSignal) {
		t.Fatalf("bad signal: %v", err)
	}
	if err := cl.Kill(name, zinit.SIGKILL); err != nil {
		t.Fatal(err)
	}
	next, err := cl.WaitStatus(ctxT(t, 10*time.Second), name, 20*time.Millisecond, func(s zinit.ServiceStatus) bool {
		return s.Pid != 0 && s.Pid != st.Pid && s.State.Is(zinit.ServiceStateRunning)
	})
	if err != nil {
		t.Fatal(err)
	}
	if testutil.ProcessAlive(st.Pid) || !testutil.ProcessAlive(next.Pid) {
		t.Fatalf("old pid %d alive or new pid %d dead", st.Pid, next.Pid)
	}
	if err := cl.StopWait(10*time.Second, name); err != nil {
		t.Fatal(err)
	}
	if err := cl.Kill(name, zinit.SIGTERM); !errors.Is(err, zinit.ErrNotRunning) {
		t.Fatalf("kill a stopped service: %v", err)
	}
	if err := cl.StartWait(10*time.Second, name); err != nil {
		t.Fatal(err)
	}
}

func TestLogs(t *testing.T) {
	testutil.RequireTools(t, "sh", "sleep")
	testutil.CheckLeaks(t)
	cl, _ := zinittest.Start(t)
	loud, quiet := testutil.Name(t, "lou"), testutil.Name(t, "qui")
	got := make(chan zinit.LogLine, 100)
	ctx := ctxT(t, 20*time.Second)
	streamDone := make(chan error, 1)
	go func() {
		streamDone <- cl.Logs(ctx, loud, func(l zinit.LogLine) error {
			got <- l
			if l.Text == "line 3" {
				return errors.New("enough")
			}
			return nil
		})
	}()
	add(t, cl, quiet, zinit.InitService{Exec: `sh -c "echo from-quiet; exec sleep 100"`, Log: zinit.NoneLogType})
	add(t, cl, loud, zinit.InitService{Exec: `sh -c 'echo oops >&2; i=0; while :; do i=$((i+1)); echo "line $i"; sleep 0.1; done'`})
	var lines []zinit.LogLine
	for {
		select {
		case l := <-got:
			lines = append(lines, l)
			continue
		case err := <-streamDone:
			if err == nil || err.Error() != "enough" {
				t.Fatalf("Logs ended with %v", err)
			}
		}
		break
	}
	for len(got) > 0 {
		lines = append(lines, <-got)
	}
	var texts []string
	sawErr := false
	for _, l := range lines {
		if l.Service != loud {
			t.Fatalf("line of another service: %+v", l)
		}
		if l.Stderr && l.Text == "oops" {
			sawErr = true
		}
		if !l.Stderr {
			texts = append(texts, l.Text)
		}
	}
	if !sawErr || strings.Join(texts, ",") != "line 1,line 2,line 3" {
		t.Fatalf("lines %+v", lines)
	}
	all, err := cl.LogSnapshot(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range all {
		if l.Service == quiet {
			t.Fatalf("log none service logged %q", l.Raw)
		}
	}
}
