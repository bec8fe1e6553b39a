package flist

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zos-go/zos/pkg/zinit"
)

// ErrUnknownService is returned by Runner.Status for a service the runner
// does not supervise.
var ErrUnknownService = errors.New("unknown service")

// Runner supervises the flistfs processes: long-lived services restarted
// when they exit, until stopped. On a node it is zinit (ZinitRunner), so
// mounts outlive zosd; ProcessRunner runs them as children (development,
// tests). Implementations are safe for concurrent use.
type Runner interface {
	// Start runs argv as service name, restarted when it exits. It is
	// idempotent: a service already running the same argv is left alone,
	// one with another argv is replaced.
	Start(ctx context.Context, name string, argv []string) error
	// Stop stops the service (SIGTERM, then SIGKILL after a grace
	// period), waits for it to exit and forgets it; nil if unknown.
	Stop(ctx context.Context, name string) error
	// Status returns the pid of the service (0 while it is not running)
	// or ErrUnknownService.
	Status(ctx context.Context, name string) (pid int, err error)
	// List returns the names of the services starting with prefix.
	List(ctx context.Context, prefix string) ([]string, error)
}

// ZinitRunner runs services under zinit: a service file per mount in the
// client's config directory, then monitor.
type ZinitRunner struct {
	Client *zinit.Client
}

var _ Runner = ZinitRunner{}

// Start implements Runner.
func (z ZinitRunner) Start(ctx context.Context, name string, argv []string) error {
	exec := shellJoin(argv)
	if exists, err := z.Client.Exists(name); err != nil {
		return fmt.Errorf("service %s: %w", name, err)
	} else if exists {
		cur, err := z.Client.Get(name)
		if err == nil && cur.Exec == exec {
			return nil
		}
		if err := z.Client.Destroy(ctx, name); err != nil {
			return fmt.Errorf("service %s: replace: %w", name, err)
		}
	}
	if err := z.Client.AddService(name, zinit.InitService{Exec: exec, Log: zinit.RingLogType}); err != nil {
		return fmt.Errorf("service %s: %w", name, err)
	}
	if err := z.Client.Monitor(name); err != nil && !errors.Is(err, zinit.ErrAlreadyMonitored) {
		_ = z.Client.RemoveService(name)
		return fmt.Errorf("service %s: monitor: %w", name, err)
	}
	return nil
}

// Stop implements Runner.
func (z ZinitRunner) Stop(ctx context.Context, name string) error {
	if err := z.Client.Destroy(ctx, name); err != nil && !errors.Is(err, zinit.ErrUnknownService) && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("service %s: %w", name, err)
	}
	return nil
}

// Status implements Runner.
func (z ZinitRunner) Status(ctx context.Context, name string) (int, error) {
	st, err := z.Client.StatusContext(ctx, name)
	if errors.Is(err, zinit.ErrUnknownService) {
		return 0, fmt.Errorf("service %s: %w", name, ErrUnknownService)
	}
	if err != nil {
		return 0, fmt.Errorf("service %s: %w", name, err)
	}
	return st.Pid, nil
}

// List implements Runner.
func (z ZinitRunner) List(ctx context.Context, prefix string) ([]string, error) {
	all, err := z.Client.ListContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("services: %w", err)
	}
	var out []string
	for name := range all {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// shellJoin quotes argv for zinit's shell-style split.
func shellJoin(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`;&|<>(){}*?[]#~") {
			parts[i] = a
			continue
		}
		parts[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(parts, " ")
}

// ProcessRunner supervises services as child processes of this process,
// restarting them RestartDelay after they exit. Children get SIGTERM when
// this process dies. Close stops them all.
type ProcessRunner struct {
	// LogDir, when set, receives <service>.out with each service's
	// stdout and stderr.
	LogDir string
	// RestartDelay before a service that exited is started again
	// (default 1 s, as zinit).
	RestartDelay time.Duration
	// StopTimeout between SIGTERM and SIGKILL (default 5 s).
	StopTimeout time.Duration

	mu       sync.Mutex
	services map[string]*procService // guarded by mu
}

var _ Runner = (*ProcessRunner)(nil)

type procService struct {
	argv []string
	stop chan struct{}
	done chan struct{}

	mu  sync.Mutex
	cmd *exec.Cmd // guarded by mu; nil between runs
}

func (p *ProcessRunner) delay() time.Duration {
	if p.RestartDelay > 0 {
		return p.RestartDelay
	}
	return time.Second
}

func (p *ProcessRunner) grace() time.Duration {
	if p.StopTimeout > 0 {
		return p.StopTimeout
	}
	return 5 * time.Second
}

// Start implements Runner.
func (p *ProcessRunner) Start(ctx context.Context, name string, argv []string) error {
	if len(argv) == 0 {
		return fmt.Errorf("service %s: empty command", name)
	}
	p.mu.Lock()
	if p.services == nil {
		p.services = map[string]*procService{}
	}
	cur, ok := p.services[name]
	p.mu.Unlock()
	if ok {
		if slices.Equal(cur.argv, argv) {
			return nil
		}
		if err := p.Stop(ctx, name); err != nil {
			return err
		}
	}
	s := &procService{argv: slices.Clone(argv), stop: make(chan struct{}), done: make(chan struct{})}
	if err := p.spawn(name, s); err != nil {
		return err
	}
	p.mu.Lock()
	p.services[name] = s
	p.mu.Unlock()
	go p.supervise(name, s)
	return nil
}

func (p *ProcessRunner) spawn(name string, s *procService) error {
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if p.LogDir != "" {
		f, err := os.OpenFile(filepath.Join(p.LogDir, name+".out"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("service %s: %w", name, err)
		}
		defer f.Close()
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("service %s: %w", name, err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	return nil
}

func (p *ProcessRunner) supervise(name string, s *procService) {
	defer close(s.done)
	for {
		s.mu.Lock()
		cmd := s.cmd
		s.mu.Unlock()
		if cmd != nil {
			_ = cmd.Wait()
			s.mu.Lock()
			s.cmd = nil
			s.mu.Unlock()
		}
		select {
		case <-s.stop:
			return
		case <-time.After(p.delay()):
		}
		select {
		case <-s.stop: // both ready: stopping wins
			return
		default:
		}
		if err := p.spawn(name, s); err != nil {
			select {
			case <-s.stop:
				return
			case <-time.After(p.delay()):
			}
		}
	}
}

// Stop implements Runner.
func (p *ProcessRunner) Stop(ctx context.Context, name string) error {
	p.mu.Lock()
	s, ok := p.services[name]
	delete(p.services, name)
	p.mu.Unlock()
	if !ok {
		return nil
	}
	close(s.stop)
	signal := func(sig syscall.Signal) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.cmd != nil && s.cmd.Process != nil {
			_ = syscall.Kill(-s.cmd.Process.Pid, sig)
		}
	}
	signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return nil
	case <-time.After(p.grace()):
	case <-ctx.Done():
	}
	signal(syscall.SIGKILL)
	<-s.done
	return nil
}

// Status implements Runner.
func (p *ProcessRunner) Status(_ context.Context, name string) (int, error) {
	p.mu.Lock()
	s, ok := p.services[name]
	p.mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("service %s: %w", name, ErrUnknownService)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0, nil
	}
	return s.cmd.Process.Pid, nil
}

// List implements Runner.
func (p *ProcessRunner) List(_ context.Context, prefix string) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for name := range p.services {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Close stops every service.
func (p *ProcessRunner) Close(ctx context.Context) error {
	names, _ := p.List(ctx, "")
	for _, n := range names {
		_ = p.Stop(ctx, n)
	}
	return nil
}
