package network

import (
	"bytes"
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
	"time"

	"github.com/zos-go/zos/internal/atomicfile"
)

// Supervisor runs the module's long-lived helper processes (userspace
// WireGuard devices, DHCP clients) so that they outlive the agent. On a node
// it is zinit; ProcessSupervisor is a plain implementation for tests and
// development. Implementations must be safe for concurrent use.
type Supervisor interface {
	// Start makes sure service name runs argv. It is idempotent: a running
	// service with the same argv is left alone; one with another argv is
	// restarted with the new one.
	Start(ctx context.Context, name string, argv []string) error
	// Stop stops the service and forgets it; nil when it does not exist.
	Stop(ctx context.Context, name string) error
	// List returns the names of the known services that start with prefix.
	List(ctx context.Context, prefix string) ([]string, error)
}

// ProcessSupervisor starts services as detached processes (own session, not
// killed with the agent) and remembers them in <Dir>/<name>.json, so a new
// agent process finds and stops them. It does not restart a service that
// exits; Start starts it again. Output goes to <Dir>/<name>.log, which Stop
// keeps.
type ProcessSupervisor struct {
	Dir string
}

type procRecord struct {
	Pid   int      `json:"pid"`
	Start uint64   `json:"start"` // process start time (clock ticks), against pid reuse
	Argv  []string `json:"argv"`
}

func (s ProcessSupervisor) file(name string) string {
	return filepath.Join(s.Dir, name+".json")
}

func (s ProcessSupervisor) load(name string) (procRecord, bool) {
	b, err := os.ReadFile(s.file(name))
	if err != nil {
		return procRecord{}, false
	}
	var r procRecord
	if json.Unmarshal(b, &r) != nil {
		return procRecord{}, false
	}
	return r, true
}

// alive reports whether the recorded process still runs (same start time,
// not a zombie).
func (r procRecord) alive() bool {
	st, state, ok := procStart(r.Pid)
	return ok && st == r.Start && state != 'Z'
}

func procStart(pid int) (uint64, byte, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, 0, false
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	return st, f[0][0], err == nil
}

// Start implements Supervisor.
func (s ProcessSupervisor) Start(ctx context.Context, name string, argv []string) error {
	if len(argv) == 0 {
		return fmt.Errorf("service %s: empty command", name)
	}
	if r, ok := s.load(name); ok && r.alive() {
		if slices.Equal(r.Argv, argv) {
			return nil
		}
		if err := s.Stop(ctx, name); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("service %s: %w", name, err)
	}
	logf, err := os.OpenFile(filepath.Join(s.Dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("service %s: %w", name, err)
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("service %s: %w", name, err)
	}
	pid := cmd.Process.Pid
	// Reap it if it exits while we run; after we exit, init does.
	go func() { _ = cmd.Wait() }()
	st, _, _ := procStart(pid)
	b, _ := json.Marshal(procRecord{Pid: pid, Start: st, Argv: argv})
	if err := atomicfile.WriteFile(s.file(name), b, 0o600); err != nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		return fmt.Errorf("service %s: %w", name, err)
	}
	return nil
}

// Stop implements Supervisor: SIGTERM, then SIGKILL after 5 s.
func (s ProcessSupervisor) Stop(ctx context.Context, name string) error {
	r, ok := s.load(name)
	if ok && r.alive() {
		_ = syscall.Kill(r.Pid, syscall.SIGTERM)
		deadline := time.Now().Add(5 * time.Second)
		for r.alive() && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		if r.alive() {
			_ = syscall.Kill(r.Pid, syscall.SIGKILL)
			for i := 0; r.alive() && i < 500; i++ {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	if err := os.Remove(s.file(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("service %s: %w", name, err)
	}
	return nil
}

// List implements Supervisor.
func (s ProcessSupervisor) List(ctx context.Context, prefix string) ([]string, error) {
	entries, err := os.ReadDir(s.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("services: %w", err)
	}
	var out []string
	for _, e := range entries {
		n, ok := strings.CutSuffix(e.Name(), ".json")
		if ok && strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out, nil
}

// Pid returns the pid of a running service (0 when not running). Tests use
// it to check that a restart of the agent left the process alone.
func (s ProcessSupervisor) Pid(name string) int {
	if r, ok := s.load(name); ok && r.alive() {
		return r.Pid
	}
	return 0
}
