package vm

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestProcessLauncher runs real processes: start, status, exit reason of a
// killed child, a second launcher (a new agent) finding the running one,
// stop.
func TestProcessLauncher(t *testing.T) {
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skip("needs sleep")
	}
	ctx := context.Background()
	l := NewProcessLauncher(t.TempDir())
	if _, err := l.Status(ctx, "a"); !errors.Is(err, ErrNoService) {
		t.Fatalf("status of unknown: %v", err)
	}
	if err := l.Start(ctx, "a", []string{"sleep", "100"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Stop(ctx, "a") })
	p, err := l.Status(ctx, "a")
	if err != nil || !p.Running || p.PID == 0 {
		t.Fatalf("status = %+v, %v", p, err)
	}
	if err := l.Start(ctx, "a", []string{"sleep", "100"}); err == nil {
		t.Error("second Start of a running service succeeded")
	}
	other := NewProcessLauncher(l.Dir) // another agent process
	if p2, err := other.Status(ctx, "a"); err != nil || !p2.Running || p2.PID != p.PID {
		t.Errorf("other launcher sees %+v, %v", p2, err)
	}
	if names, _ := other.List(ctx, ""); len(names) != 1 || names[0] != "a" {
		t.Errorf("list = %v", names)
	}
	if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, _ = l.Status(ctx, "a")
		if !p.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("kill not seen")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(p.Exit, "killed") {
		t.Errorf("exit reason %q", p.Exit)
	}
	if err := l.Start(ctx, "a", []string{"sleep", "100"}); err != nil {
		t.Fatalf("restart after exit: %v", err)
	}
	if err := l.Stop(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Status(ctx, "a"); !errors.Is(err, ErrNoService) {
		t.Errorf("status after stop: %v", err)
	}
}
