package vm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/zos-go/zos/internal/detached"
)

// ProcessLauncher starts each QEMU as a detached process (own session, so
// it outlives the agent) and records it in <Dir>/<name>.json, so a new
// agent process finds it again. Output goes to <Dir>/<name>.log. It is the
// Launcher for development and tests without zinit.
type ProcessLauncher struct {
	Dir string

	mu    sync.Mutex
	exits map[string]*detached.Child // children of this process; guarded by mu
}

var _ Launcher = (*ProcessLauncher)(nil)

// NewProcessLauncher returns a ProcessLauncher keeping its records in dir.
func NewProcessLauncher(dir string) *ProcessLauncher {
	return &ProcessLauncher{Dir: dir, exits: map[string]*detached.Child{}}
}

// dir is the detached directory; each start gets a fresh log.
func (p *ProcessLauncher) dir() detached.Dir {
	return detached.Dir{Path: p.Dir, TruncateLog: true}
}

// Start implements Launcher.
func (p *ProcessLauncher) Start(ctx context.Context, name string, argv []string) error {
	c, err := p.dir().Start(ctx, name, argv)
	if err != nil {
		return err
	}
	p.mu.Lock()
	if p.exits == nil {
		p.exits = map[string]*detached.Child{}
	}
	p.exits[name] = c
	p.mu.Unlock()
	return nil
}

// Stop implements Launcher: SIGTERM, SIGKILL after 5 s.
func (p *ProcessLauncher) Stop(ctx context.Context, name string) error {
	d := p.dir()
	if err := d.Stop(ctx, name); err != nil {
		return err
	}
	p.mu.Lock()
	c := p.exits[name]
	delete(p.exits, name)
	p.mu.Unlock()
	if c != nil {
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
		}
	}
	if err := os.Remove(d.LogPath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("service %s: %w", name, err)
	}
	return nil
}

// Status implements Launcher.
func (p *ProcessLauncher) Status(ctx context.Context, name string) (Proc, error) {
	r, ok := p.dir().Load(name)
	if !ok {
		return Proc{}, fmt.Errorf("service %s: %w", name, ErrNoService)
	}
	p.mu.Lock()
	c := p.exits[name]
	p.mu.Unlock()
	if c != nil && c.Pid == r.Pid {
		select {
		case <-c.Done():
			if err := c.Err(); err != nil {
				return Proc{Exit: err.Error()}, nil
			}
			return Proc{Exit: "exited 0"}, nil
		default:
			return Proc{PID: r.Pid, Running: true}, nil
		}
	}
	if r.Alive() {
		return Proc{PID: r.Pid, Running: true}, nil
	}
	return Proc{Exit: "exited (status unknown: not a child of this agent)"}, nil
}

// List implements Launcher.
func (p *ProcessLauncher) List(ctx context.Context, prefix string) ([]string, error) {
	return p.dir().List(prefix)
}

// Output implements Launcher: the tail of <Dir>/<name>.log.
func (p *ProcessLauncher) Output(ctx context.Context, name string) string {
	b, _ := readTail(p.dir().LogPath(name), 2048)
	return string(b)
}
