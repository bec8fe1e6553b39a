package vm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zos-go/zos/internal/atomicfile"
)

// ProcessLauncher starts each QEMU as a detached process (own session, so
// it outlives the agent) and records it in <Dir>/<name>.json, so a new
// agent process finds it again. Output goes to <Dir>/<name>.log. It is the
// Launcher for development and tests without zinit.
type ProcessLauncher struct {
	Dir string

	mu    sync.Mutex
	exits map[string]*procWait // children of this process; guarded by mu
}

type procWait struct {
	pid  int
	done chan struct{}
	exit string // set before done is closed
}

type procRecord struct {
	Pid   int      `json:"pid"`
	Start uint64   `json:"start"` // start time in clock ticks, against pid reuse
	Argv  []string `json:"argv"`
}

var _ Launcher = (*ProcessLauncher)(nil)

// NewProcessLauncher returns a ProcessLauncher keeping its records in dir.
func NewProcessLauncher(dir string) *ProcessLauncher {
	return &ProcessLauncher{Dir: dir, exits: map[string]*procWait{}}
}

func (p *ProcessLauncher) file(name, ext string) string { return filepath.Join(p.Dir, name+ext) }

func (p *ProcessLauncher) load(name string) (procRecord, bool) {
	b, err := os.ReadFile(p.file(name, ".json"))
	if err != nil {
		return procRecord{}, false
	}
	var r procRecord
	if json.Unmarshal(b, &r) != nil || r.Pid <= 0 {
		return procRecord{}, false
	}
	return r, true
}

// alive reports whether the recorded process still runs.
func (r procRecord) alive() bool {
	st, state, ok := procStat(r.Pid)
	return ok && st == r.Start && state != 'Z' && state != 'X'
}

// procStat returns the start time and state of pid from /proc.
func procStat(pid int) (uint64, byte, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
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

// Start implements Launcher.
func (p *ProcessLauncher) Start(ctx context.Context, name string, argv []string) error {
	if len(argv) == 0 {
		return fmt.Errorf("service %s: empty command", name)
	}
	if r, ok := p.load(name); ok && r.alive() {
		return fmt.Errorf("service %s: already running (pid %d)", name, r.Pid)
	}
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return fmt.Errorf("service %s: %w", name, err)
	}
	logf, err := os.OpenFile(p.file(name, ".log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
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
	w := &procWait{pid: cmd.Process.Pid, done: make(chan struct{})}
	p.mu.Lock()
	if p.exits == nil {
		p.exits = map[string]*procWait{}
	}
	p.exits[name] = w
	p.mu.Unlock()
	// Reap the child while this process runs; after it exits, init does.
	go func() {
		err := cmd.Wait()
		w.exit = "exited 0"
		if err != nil {
			w.exit = err.Error()
		}
		close(w.done)
	}()
	st, _, _ := procStat(w.pid)
	b, _ := json.Marshal(procRecord{Pid: w.pid, Start: st, Argv: argv})
	if err := atomicfile.WriteFile(p.file(name, ".json"), b, 0o600); err != nil {
		_ = syscall.Kill(w.pid, syscall.SIGKILL)
		<-w.done
		return fmt.Errorf("service %s: %w", name, err)
	}
	return nil
}

// Stop implements Launcher: SIGTERM, SIGKILL after 5 s.
func (p *ProcessLauncher) Stop(ctx context.Context, name string) error {
	if r, ok := p.load(name); ok && r.alive() {
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
		if r.alive() {
			return fmt.Errorf("service %s: pid %d does not die", name, r.Pid)
		}
	}
	p.mu.Lock()
	w := p.exits[name]
	delete(p.exits, name)
	p.mu.Unlock()
	if w != nil {
		select {
		case <-w.done:
		case <-time.After(5 * time.Second):
		}
	}
	for _, ext := range []string{".json", ".log"} {
		if err := os.Remove(p.file(name, ext)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("service %s: %w", name, err)
		}
	}
	return nil
}

// Status implements Launcher.
func (p *ProcessLauncher) Status(ctx context.Context, name string) (Proc, error) {
	r, ok := p.load(name)
	if !ok {
		return Proc{}, fmt.Errorf("service %s: %w", name, ErrNoService)
	}
	p.mu.Lock()
	w := p.exits[name]
	p.mu.Unlock()
	if w != nil && w.pid == r.Pid {
		select {
		case <-w.done:
			return Proc{Exit: w.exit}, nil
		default:
			return Proc{PID: r.Pid, Running: true}, nil
		}
	}
	if r.alive() {
		return Proc{PID: r.Pid, Running: true}, nil
	}
	return Proc{Exit: "exited (status unknown: not a child of this agent)"}, nil
}

// List implements Launcher.
func (p *ProcessLauncher) List(ctx context.Context, prefix string) ([]string, error) {
	entries, err := os.ReadDir(p.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("services: %w", err)
	}
	var out []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".json"); ok && strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out, nil
}

// Output implements Launcher: the tail of <Dir>/<name>.log.
func (p *ProcessLauncher) Output(ctx context.Context, name string) string {
	b, _ := readTail(p.file(name, ".log"), 2048)
	return string(b)
}
