package vm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/zos-go/zos/pkg"
)

func waitABit() { time.Sleep(time.Millisecond) }

// TestKeepAliveBackoff checks the restart delays of a VM that keeps
// crashing (10 s doubling to 5 min), the visibility of its state and
// reason, and the reset after 10 healthy minutes. The VM is never deleted.
func TestKeepAliveBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newUnitEnv(t, func(c *Config) { c.PollInterval = time.Second })
		serve(t, e.m)
		if err := e.m.Run(e.vm("vm1")); err != nil {
			t.Fatal(err)
		}
		svc := e.cfg.ServicePrefix + "vm1"
		want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second,
			160 * time.Second, 5 * time.Minute, 5 * time.Minute}
		for i, d := range want {
			e.l.kill(svc, "signal: killed")
			time.Sleep(time.Second + time.Millisecond) // one poll
			st, err := e.m.Status(t.Context(), "vm1")
			if err != nil || st.State != StateBackoff || st.Reason != "signal: killed" {
				t.Fatalf("crash %d: status %+v, %v", i+1, st, err)
			}
			if got := st.NextRestart.Sub(st.Since); got != d {
				t.Errorf("crash %d: restart delay %v, want %v", i+1, got, d)
			}
			if !e.m.Exists("vm1") {
				t.Errorf("crash %d: Exists false during backoff", i+1)
			}
			_, err = e.m.Inspect("vm1")
			var se *StateError
			if !errors.As(err, &se) || se.State != StateBackoff || !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), "killed") {
				t.Errorf("crash %d: Inspect error %v", i+1, err)
			}
			time.Sleep(time.Until(st.NextRestart) - 10*time.Millisecond)
			if st, _ := e.m.Status(t.Context(), "vm1"); st.State != StateBackoff {
				t.Fatalf("crash %d: restarted before its delay: %+v", i+1, st)
			}
			time.Sleep(time.Second + 20*time.Millisecond)
			st, _ = e.m.Status(t.Context(), "vm1")
			if st.State != StateRunning || st.Restarts != i+1 || e.l.pid(svc) == 0 {
				t.Fatalf("crash %d: not restarted after its delay: %+v", i+1, st)
			}
		}
		// Ten healthy minutes reset the delay.
		time.Sleep(10*time.Minute + time.Second)
		e.l.kill(svc, "exited 1")
		time.Sleep(time.Second + time.Millisecond)
		st, _ := e.m.Status(t.Context(), "vm1")
		if got := st.NextRestart.Sub(st.Since); st.State != StateBackoff || got != 10*time.Second {
			t.Errorf("after 10 healthy minutes: %+v, delay %v; want 10s", st, got)
		}
	})
}

// TestKeepAliveRestartFailure: a restart that cannot spawn counts as a
// failure (the delay grows) and is retried; the reason says why.
func TestKeepAliveRestartFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newUnitEnv(t, func(c *Config) { c.PollInterval = time.Second })
		serve(t, e.m)
		if err := e.m.Run(e.vm("vm1")); err != nil {
			t.Fatal(err)
		}
		svc := e.cfg.ServicePrefix + "vm1"
		e.l.failing = svc
		e.l.kill(svc, "signal: killed")
		time.Sleep(12 * time.Second) // crash seen, restart at +10 s fails
		st, _ := e.m.Status(t.Context(), "vm1")
		if st.State != StateBackoff || !strings.Contains(st.Reason, "cannot spawn") || st.NextRestart.Sub(st.Since) <= 10*time.Second {
			t.Fatalf("after a failed restart: %+v", st)
		}
		e.l.mu.Lock()
		e.l.failing = ""
		e.l.mu.Unlock()
		time.Sleep(time.Until(st.NextRestart) + 2*time.Second)
		if st, _ := e.m.Status(t.Context(), "vm1"); st.State != StateRunning {
			t.Fatalf("not restarted once spawning works: %+v", st)
		}
	})
}

// TestNoKeepAlive: a NoKeepAlive VM that ends stays stopped, does not
// exist any more, keeps its logs until Delete, and its name can be reused.
func TestNoKeepAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newUnitEnv(t, func(c *Config) { c.PollInterval = time.Second })
		serve(t, e.m)
		v := e.vm("installer")
		v.NoKeepAlive = true
		if err := e.m.Run(v); err != nil {
			t.Fatal(err)
		}
		svc := e.cfg.ServicePrefix + "installer"
		if err := os.WriteFile(filepath.Join(e.cfg.Root, "vms", "installer", "console.log"), []byte("install done\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		e.l.kill(svc, "exited 0")
		time.Sleep(time.Minute)
		st, _ := e.m.Status(t.Context(), "installer")
		if st.State != StateStopped || st.Restarts != 0 || e.m.Exists("installer") {
			t.Fatalf("NoKeepAlive VM after exit: %+v exists=%v", st, e.m.Exists("installer"))
		}
		if logs, err := e.m.Logs("installer"); err != nil || !strings.Contains(logs, "install done") {
			t.Errorf("Logs of a stopped VM: %q, %v", logs, err)
		}
		if err := e.m.Run(v); err != nil {
			t.Fatalf("Run over a stopped VM: %v", err)
		}
		if logs, _ := e.m.Logs("installer"); strings.Contains(logs, "install done") {
			t.Errorf("the new VM shows the old console: %q", logs)
		}
	})
}

func TestRunErrors(t *testing.T) {
	e := newUnitEnv(t, nil)
	v := e.vm("vm1")
	if err := e.m.Run(v); !errors.Is(err, ErrNotReady) {
		t.Errorf("Run before Serve: %v, want ErrNotReady", err)
	}
	serve(t, e.m)
	v.Network.Ifaces = []pkg.VMIface{{Tap: "t-missing"}}
	if err := e.m.Run(v); !errors.Is(err, ErrTapNotFound) {
		t.Errorf("missing tap: %v", err)
	}
	v.Network.Ifaces = []pkg.VMIface{{Tap: "t-net1"}}
	e.l.failing = e.cfg.ServicePrefix + "vm1"
	if err := e.m.Run(v); !errors.Is(err, ErrStart) || !strings.Contains(err.Error(), "cannot spawn") {
		t.Errorf("spawn failure: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.Root, "vms", "vm1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed Run left its directory: %v", err)
	}
	e.l.failing = ""
	if err := e.m.Run(v); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := e.l.names(); len(n) != 1 {
		t.Errorf("services %v, want one", n)
	}
	info, err := e.m.Inspect("vm1")
	if err != nil || info.CPU != 1 || info.Memory != 512 {
		t.Errorf("Inspect = %+v, %v", info, err)
	}
}

// TestStartFailureOutput: a QEMU that exits at once makes Run fail with
// its output, and nothing is left behind.
func TestStartFailureOutput(t *testing.T) {
	e := newUnitEnv(t, nil)
	e.hv.failAfterStart = true
	serve(t, e.m)
	err := e.m.Run(e.vm("vm1"))
	if !errors.Is(err, ErrStart) || !strings.Contains(err.Error(), "bad option") {
		t.Fatalf("Run: %v, want ErrStart with the output", err)
	}
	if n := e.l.names(); len(n) != 0 {
		t.Errorf("services left: %v", n)
	}
	if l, _ := e.m.List(t.Context()); len(l) != 0 {
		t.Errorf("VMs left: %v", l)
	}
}

// TestReattach: a new module adopts running VMs without restarting them,
// restarts dead ones, leaves dead NoKeepAlive ones stopped, finishes an
// interrupted Delete, and stops services without a record.
func TestReattach(t *testing.T) {
	e := newUnitEnv(t, nil)
	stop := serve(t, e.m)
	for _, name := range []string{"alive", "dead", "once", "gone"} {
		v := e.vm(name)
		v.NoKeepAlive = name == "once"
		if err := e.m.Run(v); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	p := e.cfg.ServicePrefix
	alivePID := e.l.pid(p + "alive")
	e.l.kill(p+"dead", "signal: killed")
	e.l.kill(p+"once", "exited 0")
	// An interrupted Delete of "gone" and an orphan service.
	rec, err := e.m.store.load("gone")
	if err != nil {
		t.Fatal(err)
	}
	rec.Deleting = true
	if err := e.m.store.save(rec); err != nil {
		t.Fatal(err)
	}
	if err := e.l.Start(context.Background(), p+"orphan", []string{"x"}); err != nil {
		t.Fatal(err)
	}
	// A directory without a record (a crash inside Run).
	if err := os.MkdirAll(filepath.Join(e.cfg.Root, "vms", "half"), 0o700); err != nil {
		t.Fatal(err)
	}

	m2 := e.newModule(t)
	serve(t, m2)
	if got := e.l.pid(p + "alive"); got != alivePID {
		t.Errorf("running VM restarted: pid %d, was %d", got, alivePID)
	}
	st, _ := m2.Status(t.Context(), "alive")
	if st.State != StateRunning || st.PID != alivePID {
		t.Errorf("alive: %+v", st)
	}
	if info, err := m2.Inspect("alive"); err != nil || info.Memory != 512 {
		t.Errorf("Inspect after re-attach: %+v, %v", info, err)
	}
	if st, _ := m2.Status(t.Context(), "once"); st.State != StateStopped || m2.Exists("once") {
		t.Errorf("once: %+v", st)
	}
	testWait(t, "dead restarted", func() bool {
		st, _ := m2.Status(t.Context(), "dead")
		return st.State == StateRunning && e.l.pid(p+"dead") != 0
	})
	if m2.Exists("gone") || e.l.pid(p+"gone") != 0 {
		t.Error("interrupted delete not finished")
	}
	if _, err := os.Stat(filepath.Join(e.cfg.Root, "vms", "gone")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("gone: directory left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.Root, "vms", "half")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("half: directory left: %v", err)
	}
	for _, n := range e.l.names() {
		if n == p+"orphan" || n == p+"gone" {
			t.Errorf("service %s left", n)
		}
	}
}

func TestDelete(t *testing.T) {
	e := newUnitEnv(t, func(c *Config) { c.StopTimeout = 5 * time.Second })
	serve(t, e.m)
	if err := e.m.Run(e.vm("vm1")); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Delete("vm1"); err != nil {
		t.Fatal(err)
	}
	if e.hv.powerdowns != 1 {
		t.Errorf("power button pressed %d times, want 1", e.hv.powerdowns)
	}
	if len(e.l.names()) != 0 || e.m.Exists("vm1") {
		t.Error("Delete left the service or the VM")
	}
	if err := e.m.Delete("vm1"); err != nil {
		t.Errorf("Delete of a deleted VM: %v", err)
	}
	if err := e.m.Delete("../x"); !errors.Is(err, ErrInvalidVM) {
		t.Errorf("Delete of a bad name: %v", err)
	}
}

// testWait polls cond for up to 5 s.
func testWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timeout waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
