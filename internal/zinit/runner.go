package zinit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// backoff computes restart delays: base, 2*base, 4*base ... capped at max;
// a run of at least stable resets it.
type backoff struct {
	base, max, stable time.Duration
	next              time.Duration
}

func (b *backoff) delay(ran time.Duration) time.Duration {
	if ran >= b.stable || b.next == 0 {
		b.next = b.base
	}
	d := b.next
	b.next = min(b.next*2, b.max)
	return d
}

// runService is the goroutine of one service: wait until it may start, spawn,
// supervise, and restart. It returns when ctx ends or the service is
// forgotten; a process still running then is left alone.
func (m *Manager) runService(ctx context.Context, s *service) {
	bo := backoff{base: m.cfg.RestartDelay, max: m.cfg.MaxRestartDelay, stable: m.cfg.StableAfter}
	for {
		if !m.waitStartable(ctx, s) {
			return
		}
		m.mu.Lock()
		p, started := s.proc, time.Now()
		m.mu.Unlock()
		if p == nil {
			var err error
			p, err = m.spawn(s)
			if err != nil {
				m.mu.Lock()
				s.spawning = false
				m.log.Error("service not spawned", "service", s.name, "err", err)
				m.setStateLocked(s, State{Failure, err.Error()})
				if s.cfg.Oneshot {
					s.done = true
				}
				m.mu.Unlock()
				if !s.cfg.Oneshot && !m.waitRestart(ctx, s, bo.delay(0)) {
					return
				}
				continue
			}
		}
		info, ok := m.supervise(ctx, s, p)
		if !ok {
			return
		}
		m.exited(s, p, info)
		m.mu.Lock()
		down := s.target == Down
		m.mu.Unlock()
		if s.cfg.Oneshot || down {
			continue
		}
		if !m.waitRestart(ctx, s, bo.delay(time.Since(started))) {
			return
		}
	}
}

// waitStartable waits until s should get a process (target up, dependencies
// ready), or already has one (adopted). It returns false when the runner must
// end.
func (m *Manager) waitStartable(ctx context.Context, s *service) bool {
	for {
		m.mu.Lock()
		if s.forgotten {
			m.mu.Unlock()
			return false
		}
		if s.proc != nil {
			m.mu.Unlock()
			return true
		}
		if s.target == Up && !s.done && !m.shutting {
			ready, why := m.depsReadyLocked(s)
			if ready {
				s.kick = false
				s.spawning = true
				m.setStateLocked(s, State{Kind: Scheduled})
				m.mu.Unlock()
				return true
			}
			if st := (State{Blocked, why}); s.state != st {
				m.log.Debug("service blocked", "service", s.name, "reason", why)
				m.setStateLocked(s, st)
			}
		}
		m.mu.Unlock()
		select {
		case <-ctx.Done():
			return false
		case <-s.wake:
		}
	}
}

// depsReadyLocked reports whether every dependency of s is Running, or for a
// oneshot, ended in Success; if not, it says which is not and why.
func (m *Manager) depsReadyLocked(s *service) (bool, string) {
	for _, dep := range s.cfg.After {
		d, ok := m.services[dep]
		switch {
		case !ok:
			return false, dep + " is unknown"
		case d.cfg.Oneshot && d.state.Kind == Success, !d.cfg.Oneshot && d.state.Kind == Running:
		default:
			return false, dep + " is " + d.state.String()
		}
	}
	return true, ""
}

// waitRestart waits d before a restart. A start request cuts it short; a
// stop makes the next waitStartable wait for a start.
func (m *Manager) waitRestart(ctx context.Context, s *service, d time.Duration) bool {
	m.log.Info("service restart scheduled", "service", s.name, "delay", d)
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-s.wake:
			m.mu.Lock()
			forgotten, down, kick := s.forgotten, s.target == Down, s.kick
			m.mu.Unlock()
			if forgotten {
				return false
			}
			if down || kick {
				return true
			}
		}
	}
}

// spawn starts the process of s, its output going through the service's
// FIFOs in the state directory (or to /dev/null for log none).
func (m *Manager) spawn(s *service) (*proc, error) {
	m.mu.Lock()
	cfg, name := s.cfg, s.name
	m.mu.Unlock()
	env := m.env(cfg)
	path, err := lookPath(cfg.Exec[0], env)
	if err != nil {
		return nil, err
	}
	dir := cfg.Dir
	if dir == "" {
		dir = "/"
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	out, errw := devnull, devnull
	if cfg.Log != LogNone {
		if err := m.ensureOutput(s); err != nil {
			return nil, err
		}
		// Read-write: the service itself then always has a reader, so it
		// never gets SIGPIPE, even while zinit is down.
		w := [2]*os.File{}
		for i, stream := range streams {
			if w[i], err = os.OpenFile(fifoPath(m.cfg.StateDir, name, stream), os.O_RDWR, 0); err != nil {
				closeAll(w[:]...)
				return nil, fmt.Errorf("output of %s: %w", name, err)
			}
		}
		defer closeAll(w[:]...)
		out, errw = w[0], w[1]
	}
	// A zinit killed after this spawn but before the state file has the pid
	// finds the process by its stdout FIFO.
	p, err := m.procs.spawn(path, cfg.Exec, &os.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: []*os.File{devnull, out, errw},
	})
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	s.proc, s.spawning = p, false
	s.rs = runState{Pid: p.pid, Start: p.start, Down: s.rs.Down}
	m.log.Info("service spawned", "service", name, "pid", p.pid)
	m.setStateLocked(s, State{Kind: Spawned})
	m.mu.Unlock()
	m.persist(s)
	return p, nil
}

// pump reads lines from r until EOF or error, splitting lines longer than
// MaxLogLineBytes.
func (m *Manager) pump(r io.Reader, prefix string, toStdout bool) {
	br := bufio.NewReaderSize(r, MaxLogLineBytes)
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			line := prefix + strings.TrimRight(string(chunk), "\r\n")
			m.ring.Write(line)
			if toStdout {
				m.outMu.Lock()
				_, _ = io.WriteString(m.stdout, line+"\n")
				m.outMu.Unlock()
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// supervise waits for p to exit while running the test command and
// escalating a stop. It returns false, leaving p running, when ctx ends.
func (m *Manager) supervise(ctx context.Context, s *service, p *proc) (exitInfo, bool) {
	m.mu.Lock()
	cfg, passed := s.cfg, s.rs.Running
	if len(cfg.Test) == 0 || passed {
		m.setStateLocked(s, State{Kind: Running})
	}
	m.mu.Unlock()

	testCtx, cancelTest := context.WithCancel(ctx)
	var testWG sync.WaitGroup
	testOK := make(chan struct{})
	if len(cfg.Test) > 0 && !passed {
		testWG.Go(func() {
			if m.runTests(testCtx, s, cfg) {
				close(testOK)
			}
		})
	}
	defer func() {
		cancelTest()
		testWG.Wait()
	}()

	var kill <-chan time.Time
	m.mu.Lock()
	if s.target == Down { // adopted in the middle of a stop
		_ = p.signal(cfg.StopSignal)
		t := time.NewTimer(m.cfg.StopTimeout)
		defer t.Stop()
		kill = t.C
	}
	m.mu.Unlock()
	for {
		select {
		case info := <-p.exit:
			return info, true
		case <-testOK:
			testOK = nil
			m.mu.Lock()
			mine := s.proc == p
			if mine {
				s.rs.Running = true // so that a new zinit does not test it again
				m.setStateLocked(s, State{Kind: Running})
			}
			m.mu.Unlock()
			if mine {
				m.persist(s)
			}
		case <-s.wake:
			m.mu.Lock()
			down := s.target == Down
			m.mu.Unlock()
			if down && kill == nil {
				t := time.NewTimer(m.cfg.StopTimeout)
				defer t.Stop()
				kill = t.C
			}
		case <-kill:
			m.log.Warn("service killed after stop timeout", "service", s.name, "pid", p.pid, "timeout", m.cfg.StopTimeout)
			p.killGroup()
		case <-ctx.Done():
			return exitInfo{}, false
		}
	}
}

// exited records the end of p.
func (m *Manager) exited(s *service, p *proc, info exitInfo) {
	defer m.persist(s)
	m.mu.Lock()
	defer m.mu.Unlock()
	s.proc = nil
	var st State
	switch {
	case !info.Known:
		st = State{Error, fmt.Sprintf("Exited(Pid(%d), unknown)", p.pid)}
	case info.Status.Exited() && info.Status.ExitStatus() == 0:
		st = State{Kind: Success}
	case s.target == Down && info.Status.Signaled():
		st = State{Kind: Success} // stopped as asked: by its stop signal or the SIGKILL after the timeout
	default:
		st = State{Error, exitReason(p.pid, info.Status)}
	}
	if s.target == Down {
		p.killGroup() // nothing of a stopped service stays behind
	}
	p.release()
	if s.cfg.Oneshot {
		s.done = true
	}
	s.rs = runState{Down: s.rs.Down}
	m.log.Info("service exited", "service", s.name, "pid", p.pid, "state", st.String())
	m.setStateLocked(s, st)
}

// runTests runs the test command of s until it succeeds (true) or ctx ends.
func (m *Manager) runTests(ctx context.Context, s *service, cfg Service) bool {
	var delay time.Duration
	for {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		ok, err := m.runTestOnce(ctx, s.name, cfg)
		if ok {
			return true
		}
		if err != nil {
			m.mu.Lock()
			if s.state.Kind == Spawned || s.state.Kind == TestError {
				m.setStateLocked(s, State{TestError, err.Error()})
			}
			m.mu.Unlock()
		}
		delay = min(delay+m.cfg.TestDelayStep, m.cfg.TestDelayMax)
	}
}

// runTestOnce runs the test command once; its output goes to the ring as
// "<name>/test".
func (m *Manager) runTestOnce(ctx context.Context, name string, cfg Service) (bool, error) {
	env := m.env(cfg)
	path, err := lookPath(cfg.Test[0], env)
	if err != nil {
		return false, err
	}
	dir := cfg.Dir
	if dir == "" {
		dir = "/"
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return false, err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		closeAll(pr, pw)
		return false, err
	}
	p, err := m.procs.spawn(path, cfg.Test, &os.ProcAttr{
		Dir: dir, Env: env, Files: []*os.File{devnull, pw, pw},
	})
	closeAll(pw, devnull)
	if err != nil {
		pr.Close()
		return false, err
	}
	var wg sync.WaitGroup
	wg.Go(func() { m.pump(pr, "[+] "+name+"/test: ", false) })
	var info exitInfo
	select {
	case info = <-p.exit:
	case <-ctx.Done():
		_ = unix.Kill(-p.pid, unix.SIGKILL)
		info = <-p.exit
	}
	_ = unix.Kill(-p.pid, unix.SIGKILL) // whatever the test left behind
	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(time.Second): // a writer escaped the group
	}
	pr.Close()
	<-drained
	p.release()
	return info.Known && info.Status.Exited() && info.Status.ExitStatus() == 0, nil
}
