package zinit_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/zinit"
	"github.com/zos-go/zos/pkg/zinit/zinittest"
)

// env, dir and log: stdout reach the process and zinit's output.
func TestServiceEnvDirAndStdoutLog(t *testing.T) {
	testutil.RequireTools(t, "sh", "sleep")
	testutil.CheckLeaks(t)
	cl, d := zinittest.Start(t)
	dir := testutil.TempDir(t)
	name := testutil.Name(t, "env")
	add(t, cl, name, zinit.InitService{
		Exec: `sh -c 'echo "foo=$FOO pwd=$(pwd)"; exec sleep 100'`,
		Env:  map[string]string{"FOO": "bar baz"},
		Dir:  dir,
		Log:  zinit.StdoutLogType,
	})
	want := fmt.Sprintf("[+] %s: foo=bar baz pwd=%s", name, dir)
	testutil.WaitFor(t, 5*time.Second, "line on zinit's stdout", func() error {
		if !strings.Contains(d.Log(), want+"\n") {
			return errors.New("not yet")
		}
		return nil
	})
	got, err := cl.Get(name)
	if err != nil || got.Env["FOO"] != "bar baz" || got.Dir != dir {
		t.Fatalf("Get: %+v, %v", got, err)
	}
	if err := cl.StopWait(10*time.Second, name); err != nil {
		t.Fatal(err)
	}
}

// Destroy is idempotent and suits cleanups; bad files are refused before
// they reach zinit.
func TestDestroyAndWriteValidation(t *testing.T) {
	testutil.RequireTools(t, "sleep")
	testutil.CheckLeaks(t)
	cl, _ := zinittest.Start(t)
	if err := cl.Destroy(t.Context(), testutil.Name(t, "non")); err != nil {
		t.Fatalf("destroy of an unknown service: %v", err)
	}
	name := testutil.Name(t, "des")
	if err := cl.AddService(name, zinit.InitService{Exec: "sleep 100", Signal: zinit.ServiceSignal{Stop: "SIGBOGUS"}}); !errors.Is(err, zinit.ErrInvalidService) {
		t.Fatalf("bad signal written: %v", err)
	}
	if err := cl.AddService(name, zinit.InitService{}); !errors.Is(err, zinit.ErrInvalidService) {
		t.Fatalf("service without exec written: %v", err)
	}
	if err := cl.AddService("../x", zinit.InitService{Exec: "sleep 1"}); !errors.Is(err, zinit.ErrInvalidService) {
		t.Fatalf("bad name written: %v", err)
	}
	add(t, cl, name, zinit.InitService{Exec: "sleep 100", Signal: zinit.ServiceSignal{Stop: "sigint"}})
	st := waitState(t, cl, name, zinit.ServiceStateRunning)
	for range 2 {
		if err := cl.Destroy(ctxT(t, 10*time.Second), name); err != nil {
			t.Fatal(err)
		}
	}
	if testutil.ProcessAlive(st.Pid) {
		t.Fatal("process alive after destroy")
	}
}

// Names that YAML would read as numbers, booleans or null, or that start
// with an indicator, survive list and status.
func TestYAMLLookalikeNames(t *testing.T) {
	testutil.RequireTools(t, "sleep")
	testutil.CheckLeaks(t)
	cl, _ := zinittest.Start(t)
	names := []string{"123", "true", "null", "@at", "0x1F", "1e3"}
	for i, n := range names {
		s := zinit.InitService{Exec: "sleep 100"}
		if i > 0 {
			s.After = []string{names[i-1]}
		}
		add(t, cl, n, s)
	}
	t0 := time.Now()
	waitState(t, cl, names[len(names)-1], zinit.ServiceStateRunning)
	t.Logf("chain running after %v", time.Since(t0))
	list, err := cl.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if !list[n].Is(zinit.ServiceStateRunning) {
			t.Errorf("list[%q] = %v (list %v)", n, list[n], list)
		}
	}
	st, err := cl.Status("null")
	if err != nil || st.Name != "null" || len(st.Deps) != 1 || st.Deps[0].Name != "true" {
		t.Fatalf("status null: %+v, %v", st, err)
	}
}
