package zinit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/internal/zinit/proto"
)

// Run ends with one of these when a client asked zinit to end.
var (
	ErrShutdown = errors.New("zinit shutdown requested")
	ErrReboot   = errors.New("zinit reboot requested")
)

// Config configures a Manager.
type Config struct {
	// ConfigDir holds the service files (<name>.yaml).
	ConfigDir string
	// StateDir holds the runtime state (pids, output pipes). It should not
	// survive a reboot (a tmpfs such as /run).
	StateDir string
	// LogLines is the size of the log ring in lines.
	LogLines int
	// RestartDelay is the delay before the first restart of a service that
	// exited; each further consecutive crash doubles it up to
	// MaxRestartDelay. A run of at least StableAfter resets it.
	RestartDelay    time.Duration
	MaxRestartDelay time.Duration
	StableAfter     time.Duration
	// StopTimeout is how long stop waits after the stop signal before it
	// kills the service's process group.
	StopTimeout time.Duration
	// TestDelayStep and TestDelayMax pace the retries of a test command:
	// 0, step, 2*step ... capped at max.
	TestDelayStep time.Duration
	TestDelayMax  time.Duration
	// ReapOrphans makes zinit wait for every child, including orphans
	// reparented to it (PID 1 or a child subreaper). Without it only the
	// processes zinit spawned are waited for.
	ReapOrphans bool
	// Env is the base environment of every service (KEY=VALUE).
	Env []string
	// StdbufPath is a libstdbuf.so preloaded (line-buffered output) when
	// the file exists; empty disables.
	StdbufPath string
}

// DefaultConfig returns the configuration of a zinit on a node.
func DefaultConfig() Config {
	return Config{
		ConfigDir:       "/etc/zinit",
		StateDir:        "/run/zinit",
		LogLines:        2000,
		RestartDelay:    time.Second,
		MaxRestartDelay: time.Minute,
		StableAfter:     time.Minute,
		StopTimeout:     10 * time.Second,
		TestDelayStep:   250 * time.Millisecond,
		TestDelayMax:    2 * time.Second,
		StdbufPath:      "/usr/lib/libstdbuf.so",
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case !filepath.IsAbs(c.ConfigDir):
		return fmt.Errorf("config dir %q: not an absolute path", c.ConfigDir)
	case !filepath.IsAbs(c.StateDir):
		return fmt.Errorf("state dir %q: not an absolute path", c.StateDir)
	case c.LogLines < 1:
		return fmt.Errorf("log lines %d: must be at least 1", c.LogLines)
	case c.RestartDelay <= 0 || c.MaxRestartDelay < c.RestartDelay:
		return fmt.Errorf("restart delay %v, max %v: want 0 < delay <= max", c.RestartDelay, c.MaxRestartDelay)
	case c.StopTimeout <= 0:
		return fmt.Errorf("stop timeout %v: must be positive", c.StopTimeout)
	case c.TestDelayStep <= 0 || c.TestDelayMax < c.TestDelayStep:
		return fmt.Errorf("test delay step %v, max %v: want 0 < step <= max", c.TestDelayStep, c.TestDelayMax)
	}
	return nil
}

// service is one managed service. All fields are guarded by Manager.mu.
type service struct {
	name      string
	cfg       Service
	target    Target
	state     State
	proc      *proc
	rs        runState // what the state file says
	done      bool     // a oneshot that ended, or a service in Failure: wait for start
	kick      bool     // start asked while waiting to restart: skip the delay
	spawning  bool     // between waitStartable and the end of spawn
	forgotten bool
	wake      chan struct{} // capacity 1: something changed for this service

	out    *output    // reading side of the output FIFOs, nil until the first spawn
	fileMu sync.Mutex // serialises writes of the state file; taken before mu
}

func (s *service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Manager supervises the services of one config directory. Its methods are
// safe for concurrent use; they act once Run has started.
type Manager struct {
	cfg    Config
	log    *slog.Logger
	stdout io.Writer
	ring   *Ring
	procs  *procTable

	outMu sync.Mutex // serialises writes to stdout

	mu          sync.Mutex
	services    map[string]*service // guarded by mu
	changed     chan struct{}       // guarded by mu; closed and replaced on every change
	runCtx      context.Context     // guarded by mu; the lifetime of runners, nil before Run
	shutting    bool                // guarded by mu
	stateClosed bool                // guarded by mu; after Shutdown no state file is written
	endReq      error               // guarded by mu; ErrShutdown or ErrReboot once asked
	loaded      chan struct{}       // closed once Run loaded the config directory
	end         chan struct{}       // closed by Finish
	endOnce     sync.Once
	runners     sync.WaitGroup
	pumps       sync.WaitGroup
}

// New returns a Manager; it starts nothing. Service output goes to ring (a
// new one of cfg.LogLines when nil); output of services with log stdout is
// also copied to stdout (nil discards it).
func New(cfg Config, ring *Ring, log *slog.Logger, stdout io.Writer) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("zinit config: %w", err)
	}
	if stdout == nil {
		stdout = io.Discard
	}
	if ring == nil {
		ring = NewRing(cfg.LogLines)
	}
	return &Manager{
		cfg:      cfg,
		log:      log,
		stdout:   stdout,
		ring:     ring,
		procs:    newProcTable(cfg.ReapOrphans, log),
		services: map[string]*service{},
		changed:  make(chan struct{}),
		loaded:   make(chan struct{}),
		end:      make(chan struct{}),
	}, nil
}

// Loaded returns a channel closed once Run has loaded the config directory
// and adopted the running services; servers answer requests only then.
func (m *Manager) Loaded() <-chan struct{} { return m.loaded }

// Ring returns the log ring.
func (m *Manager) Ring() *Ring { return m.ring }

// Run loads the config directory, adopts the processes a previous zinit left
// running, supervises the services, and returns when ctx ends (leaving the
// services running, to be adopted by the next zinit) or after Finish
// (ErrShutdown or ErrReboot).
func (m *Manager) Run(ctx context.Context) error {
	if err := os.MkdirAll(m.cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("zinit state dir: %w", err)
	}
	if err := os.MkdirAll(m.cfg.ConfigDir, 0o755); err != nil {
		return fmt.Errorf("zinit config dir: %w", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var reaper sync.WaitGroup
	if m.cfg.ReapOrphans {
		reaper.Go(func() { m.procs.runReaper(runCtx) })
	}
	m.mu.Lock()
	if m.runCtx != nil {
		m.mu.Unlock()
		return errors.New("zinit manager already running")
	}
	m.runCtx = runCtx
	m.mu.Unlock()

	m.load(runCtx)
	close(m.loaded)

	var err error
	select {
	case <-ctx.Done():
	case <-m.end:
		m.mu.Lock()
		err = m.endReq
		m.mu.Unlock()
	}
	cancel()
	m.runners.Wait()
	m.mu.Lock()
	for _, s := range m.services {
		m.closeOutputLocked(s, false) // the FIFOs stay for the next zinit
	}
	m.mu.Unlock()
	m.pumps.Wait()
	reaper.Wait()
	return err
}

// notifyLocked tells waiters of Changed that something changed, and wakes
// the runners of the services that depend on name.
func (m *Manager) notifyLocked(name string) {
	close(m.changed)
	m.changed = make(chan struct{})
	for _, s := range m.services {
		if slices.Contains(s.cfg.After, name) {
			s.poke()
		}
	}
}

// Changed returns a channel closed at the next change of any service.
func (m *Manager) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

func (m *Manager) setStateLocked(s *service, st State) {
	if s.state == st {
		return
	}
	s.state = st
	m.notifyLocked(s.name)
}

// persist writes the state file of s with its current runState; call it
// without mu. Writes of one service are serialised and each writes the
// latest state, so a slow writer never overwrites a newer state; writes of
// different services run in parallel.
func (m *Manager) persist(s *service) {
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	m.mu.Lock()
	rs, skip := s.rs, s.forgotten || m.stateClosed
	m.mu.Unlock()
	if skip {
		return
	}
	if err := writeState(m.cfg.StateDir, s.name, rs); err != nil {
		m.log.Error("state not saved", "service", s.name, "err", err)
	}
}

func (m *Manager) lookupLocked(name string) (*service, error) {
	s, ok := m.services[name]
	if !ok {
		return nil, proto.UnknownService(name)
	}
	return s, nil
}

// ServiceInfo is one line of List.
type ServiceInfo struct {
	Name  string
	State State
}

// List returns every service and its state, sorted by name.
func (m *Manager) List() []ServiceInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]ServiceInfo, 0, len(m.services))
	for _, s := range m.services {
		out = append(out, ServiceInfo{s.name, s.state})
	}
	slices.SortFunc(out, func(a, b ServiceInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Status is the status of one service.
type Status struct {
	Name   string
	Pid    int
	State  State
	Target Target
	// After lists the dependencies and their states, in file order; an
	// unknown dependency is in state Unknown.
	After []ServiceInfo
}

// Status returns the status of service name.
func (m *Manager) Status(name string) (Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.lookupLocked(name)
	if err != nil {
		return Status{}, err
	}
	st := Status{Name: name, State: s.state, Target: s.target}
	if s.proc != nil {
		st.Pid = s.proc.pid
	}
	for _, dep := range s.cfg.After {
		info := ServiceInfo{Name: dep}
		if d, ok := m.services[dep]; ok {
			info.State = d.state
		}
		st.After = append(st.After, info)
	}
	return st, nil
}

// Start sets the target of name up; a service without a process is spawned
// as soon as its dependencies are ready, skipping any restart delay.
func (m *Manager) Start(name string) error {
	m.mu.Lock()
	if m.shutting {
		m.mu.Unlock()
		return proto.ShuttingDown()
	}
	s, err := m.lookupLocked(name)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	s.target = Up
	if s.proc == nil {
		s.done = false
		s.kick = true
	}
	changed := s.rs.Down
	s.rs.Down = false
	m.log.Info("service started", "service", name)
	s.poke()
	m.mu.Unlock()
	if changed {
		m.persist(s)
	}
	return nil
}

// Stop sets the target of name down and sends it its stop signal; after
// StopTimeout its process group is killed. It does not wait.
func (m *Manager) Stop(name string) error {
	m.mu.Lock()
	s, err := m.lookupLocked(name)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	changed := m.stopLocked(s)
	m.mu.Unlock()
	if changed {
		m.persist(s)
	}
	return nil
}

// stopLocked sets the target of s down and signals its process. It returns
// whether the state file must be written.
func (m *Manager) stopLocked(s *service) bool {
	s.target = Down
	s.kick = false
	changed := !s.rs.Down
	s.rs.Down = true
	if s.proc != nil {
		if err := s.proc.signal(s.cfg.StopSignal); err != nil {
			m.log.Warn("stop signal not sent", "service", s.name, "err", err)
		}
	}
	m.log.Info("service stopped", "service", s.name)
	s.poke()
	return changed
}

// Kill sends signal sig (a name such as SIGTERM) to the process of name.
func (m *Manager) Kill(name, sig string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, err := m.lookupLocked(name)
	if err != nil {
		return err
	}
	n, ok := ParseSignal(sig)
	if !ok {
		return proto.InvalidSignal(sig)
	}
	if s.proc == nil {
		return proto.NotRunning()
	}
	return s.proc.signal(n)
}

// Forget stops managing name. Its target must be down and it must have no
// process.
func (m *Manager) Forget(name string) error {
	m.mu.Lock()
	s, err := m.lookupLocked(name)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	if s.target == Up {
		m.mu.Unlock()
		return proto.TargetNotDown()
	}
	if s.proc != nil {
		m.mu.Unlock()
		return proto.ServiceRunning()
	}
	delete(m.services, name)
	s.forgotten = true
	m.closeOutputLocked(s, true)
	m.log.Info("service forgotten", "service", name)
	m.notifyLocked(name)
	s.poke()
	m.mu.Unlock()
	s.fileMu.Lock() // after any write in flight; later ones see forgotten
	defer s.fileMu.Unlock()
	if err := removeState(m.cfg.StateDir, name); err != nil {
		m.log.Warn("state not removed", "service", name, "err", err)
	}
	return nil
}

// Monitor loads <name>.yaml from the config directory and starts managing
// it. A bad file, or dependencies that would close a cycle, are an error for
// this request alone.
func (m *Manager) Monitor(name string) error {
	if err := ValidName(name); err != nil {
		return proto.InvalidService(name, err)
	}
	m.mu.Lock()
	_, exists := m.services[name]
	shutting, runCtx := m.shutting, m.runCtx
	m.mu.Unlock()
	if exists {
		return proto.AlreadyMonitored(name)
	}
	if shutting || runCtx == nil {
		return proto.ShuttingDown()
	}
	cfg, err := LoadService(m.cfg.ConfigDir, name)
	if err != nil {
		return proto.InvalidService(name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, exists := m.services[name]; exists {
		return proto.AlreadyMonitored(name)
	}
	if m.shutting {
		return proto.ShuttingDown()
	}
	deps := func(n string) []string {
		if n == name {
			return cfg.After
		}
		if d, ok := m.services[n]; ok {
			return d.cfg.After
		}
		return nil
	}
	if cycle := findCycle(name, deps); cycle != nil {
		return proto.InvalidService(name, fmt.Errorf("dependency cycle %s", strings.Join(cycle, " -> ")))
	}
	s := m.addLocked(name, cfg)
	m.startRunnerLocked(s)
	m.log.Info("service monitored", "service", name)
	return nil
}

func (m *Manager) addLocked(name string, cfg Service) *service {
	s := &service{name: name, cfg: cfg, target: Up, wake: make(chan struct{}, 1)}
	m.services[name] = s
	m.notifyLocked(name)
	return s
}

func (m *Manager) startRunnerLocked(s *service) {
	ctx := m.runCtx
	m.runners.Go(func() { m.runService(ctx, s) })
}

// findCycle returns a dependency cycle through start ("a", "b", "a"), or nil.
func findCycle(start string, deps func(string) []string) []string {
	var path []string
	onPath := map[string]bool{}
	done := map[string]bool{}
	var visit func(n string) []string
	visit = func(n string) []string {
		if onPath[n] {
			i := slices.Index(path, n)
			return append(slices.Clone(path[i:]), n)
		}
		if done[n] {
			return nil
		}
		onPath[n] = true
		path = append(path, n)
		for _, d := range deps(n) {
			if c := visit(d); c != nil {
				return c
			}
		}
		path = path[:len(path)-1]
		onPath[n] = false
		done[n] = true
		return nil
	}
	return visit(start)
}

// Shutdown stops every service, dependents before their dependencies, and
// waits until no service process is left (stop escalates to SIGKILL after
// StopTimeout). New starts are refused from now on. reboot only records
// what Run returns after Finish.
func (m *Manager) Shutdown(ctx context.Context, reboot bool) error {
	m.mu.Lock()
	m.shutting = true
	m.endReq = ErrShutdown
	if reboot {
		m.endReq = ErrReboot
	}
	m.mu.Unlock()
	m.log.Info("shutting down")
	for {
		m.mu.Lock()
		left := 0
		var write []*service
		for _, s := range m.services {
			if s.proc != nil || s.spawning {
				left++
			}
			if s.target == Down {
				continue
			}
			// Stop s once nothing that depends on it still runs.
			needed := false
			for _, o := range m.services {
				if o != s && (o.proc != nil || o.spawning) && slices.Contains(o.cfg.After, s.name) {
					needed = true
					break
				}
			}
			if !needed && m.stopLocked(s) {
				write = append(write, s)
			}
		}
		ch := m.changed
		m.mu.Unlock()
		for _, s := range write {
			m.persist(s)
		}
		if left == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("zinit shutdown: %w", ctx.Err())
		case <-ch:
		case <-time.After(100 * time.Millisecond):
		}
	}
	// A clean end: the next zinit starts every service afresh.
	m.mu.Lock()
	m.stateClosed = true
	services := slices.Collect(maps.Values(m.services))
	m.mu.Unlock()
	for _, s := range services {
		s.fileMu.Lock() // after a write in flight; later ones see stateClosed
		_ = removeState(m.cfg.StateDir, s.name)
		s.fileMu.Unlock()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range services {
		m.closeOutputLocked(s, true)
	}
	return nil
}

// Finish makes Run return; call it after Shutdown, once its reply is sent.
func (m *Manager) Finish() {
	m.endOnce.Do(func() { close(m.end) })
}

// env returns the environment of a service process.
func (m *Manager) env(cfg Service) []string {
	env := slices.Clone(m.cfg.Env)
	set := func(k, v string) {
		env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, k+"=") })
		env = append(env, k+"="+v)
	}
	if m.cfg.StdbufPath != "" {
		if err := unix.Access(m.cfg.StdbufPath, unix.R_OK); err == nil {
			set("LD_PRELOAD", m.cfg.StdbufPath)
			set("_STDBUF_O", "L")
			set("_STDBUF_E", "L")
		}
	}
	keys := make([]string, 0, len(cfg.Env))
	for k := range cfg.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		set(k, cfg.Env[k])
	}
	return env
}
