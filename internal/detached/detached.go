// Package detached runs named processes that outlive the agent which started
// them, and finds them again from a new agent process.
//
// A Dir is a directory of such processes. Each runs in its own session (not
// killed with the agent) and is recorded in <Path>/<name>.json: its pid, its
// start time (from /proc, so that a reused pid is never mistaken for it) and
// its argv. Its stdout and stderr go to <Path>/<name>.log, which Stop keeps.
// Nothing restarts a process that exits: the caller starts it again.
//
// A Dir holds no state besides the directory, so any Dir value with the same
// Path (in this process or a later one) sees the same processes. Only the
// process that started a child can learn its exit status (Child); others
// only see whether it still runs. Operations on different names are safe for
// concurrent use; concurrent Start and Stop of one name are not coordinated.
package detached

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

// DefaultGrace is the time Stop waits after SIGTERM before SIGKILL.
const DefaultGrace = 5 * time.Second

// killWait bounds the wait for a process to be gone after SIGKILL.
const killWait = 5 * time.Second

var (
	// ErrNoCommand is returned by Start for an empty argv.
	ErrNoCommand = errors.New("empty command")
	// ErrRunning is returned by Start when a process of that name runs.
	ErrRunning = errors.New("already running")
	// ErrNotDead is returned by Stop when the process outlives SIGKILL.
	ErrNotDead = errors.New("does not die")
)

// Dir is a directory of detached processes.
type Dir struct {
	// Path holds <name>.json and <name>.log; Start creates it (0700).
	Path string
	// Grace between SIGTERM and SIGKILL in Stop (DefaultGrace when 0).
	Grace time.Duration
	// TruncateLog makes Start empty <name>.log; by default it appends.
	TruncateLog bool
	// ForgetUndead makes Stop forget a process that outlives SIGKILL and
	// return nil; by default Stop keeps its record and returns ErrNotDead.
	ForgetUndead bool
}

// Record is what a Dir remembers of a process.
type Record struct {
	Pid   int      `json:"pid"`
	Start uint64   `json:"start"` // start time in clock ticks since boot, against pid reuse
	Argv  []string `json:"argv"`
}

// Alive reports whether the recorded process still runs: its pid exists
// with the recorded start time (a reused pid has another one) and is neither
// a zombie nor dead.
func (r Record) Alive() bool {
	st, state, ok := procStat(r.Pid)
	return ok && st == r.Start && state != 'Z' && state != 'X'
}

// Child is a process started by this agent process, which reaps it and so
// knows how it ended.
type Child struct {
	Record
	done chan struct{}
	err  error // set before done is closed
}

// Done is closed once the child has exited and been reaped.
func (c *Child) Done() <-chan struct{} { return c.done }

// Err returns how the child ended once Done is closed: nil for exit status
// 0, else an *exec.ExitError.
func (c *Child) Err() error { return c.err }

func (d Dir) file(name string) string { return filepath.Join(d.Path, name+".json") }

// LogPath returns the path of the output file of process name.
func (d Dir) LogPath(name string) string { return filepath.Join(d.Path, name+".log") }

func (d Dir) grace() time.Duration {
	if d.Grace > 0 {
		return d.Grace
	}
	return DefaultGrace
}

// Load returns the record of process name, running or not; false when there
// is none or it cannot be read.
func (d Dir) Load(name string) (Record, bool) {
	b, err := os.ReadFile(d.file(name))
	if err != nil {
		return Record{}, false
	}
	var r Record
	if json.Unmarshal(b, &r) != nil || r.Pid <= 0 {
		return Record{}, false
	}
	return r, true
}

// Find returns the record of process name if that process still runs.
func (d Dir) Find(name string) (Record, bool) {
	r, ok := d.Load(name)
	if !ok || !r.Alive() {
		return Record{}, false
	}
	return r, true
}

// Start starts argv as process name and records it. When a recorded process
// of that name still runs, Start returns ErrRunning and leaves it alone; a
// record of one that ended is replaced. On error nothing runs.
func (d Dir) Start(ctx context.Context, name string, argv []string) (*Child, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("service %s: %w", name, ErrNoCommand)
	}
	if r, ok := d.Find(name); ok {
		return nil, fmt.Errorf("service %s: %w (pid %d)", name, ErrRunning, r.Pid)
	}
	if err := os.MkdirAll(d.Path, 0o700); err != nil {
		return nil, fmt.Errorf("service %s: %w", name, err)
	}
	flags := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	if d.TruncateLog {
		flags = os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	}
	logf, err := os.OpenFile(d.LogPath(name), flags, 0o600)
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", name, err)
	}
	defer logf.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("service %s: %w", name, err)
	}
	c := &Child{Record: Record{Pid: cmd.Process.Pid, Argv: slices.Clone(argv)}, done: make(chan struct{})}
	// Reap the child while this process runs; after it exits, init does.
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	c.Start, _, _ = procStat(c.Pid)
	b, _ := json.Marshal(c.Record)
	if err := atomicfile.WriteFile(d.file(name), b, 0o600); err != nil {
		_ = syscall.Kill(c.Pid, syscall.SIGKILL)
		<-c.done
		return nil, fmt.Errorf("service %s: %w", name, err)
	}
	return c, nil
}

// Ensure makes sure process name runs argv: one that runs the same argv is
// left alone, one that runs another argv is stopped (Stop) and replaced.
func (d Dir) Ensure(ctx context.Context, name string, argv []string) error {
	if len(argv) == 0 {
		return fmt.Errorf("service %s: %w", name, ErrNoCommand)
	}
	if r, ok := d.Find(name); ok {
		if slices.Equal(r.Argv, argv) {
			return nil
		}
		if err := d.Stop(ctx, name); err != nil {
			return err
		}
	}
	_, err := d.Start(ctx, name, argv)
	return err
}

// Stop stops process name and forgets it: SIGTERM, SIGKILL after Grace (or
// as soon as ctx ends), then a wait until it is gone. Its log is kept. Stop
// of an unknown or ended process only removes its record. A process that
// outlives SIGKILL keeps its record and Stop returns ErrNotDead, unless
// ForgetUndead is set.
func (d Dir) Stop(ctx context.Context, name string) error {
	if r, ok := d.Find(name); ok {
		_ = syscall.Kill(r.Pid, syscall.SIGTERM)
		deadline := time.Now().Add(d.grace())
		for r.Alive() && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		if r.Alive() {
			_ = syscall.Kill(r.Pid, syscall.SIGKILL)
			deadline := time.Now().Add(killWait)
			for r.Alive() && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
		}
		if r.Alive() && !d.ForgetUndead {
			return fmt.Errorf("service %s: pid %d %w", name, r.Pid, ErrNotDead)
		}
	}
	if err := os.Remove(d.file(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("service %s: %w", name, err)
	}
	return nil
}

// List returns the names of the recorded processes (running or not) that
// start with prefix, sorted; none when the directory does not exist.
func (d Dir) List(prefix string) ([]string, error) {
	entries, err := os.ReadDir(d.Path)
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

// procStat returns the start time and state of pid from /proc.
func procStat(pid int) (uint64, byte, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	return parseStat(b)
}

// parseStat reads the state (field 3) and start time (field 22) of a
// /proc/<pid>/stat line. The command name (field 2) may hold spaces and
// parentheses, so fields are counted from its last ')'.
func parseStat(b []byte) (uint64, byte, bool) {
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
