package vm

import (
	"context"
	"errors"
	"maps"
	"os"
	"slices"
	"time"
)

// check looks at every VM once: keep-alive and console rotation. A VM
// being changed (Run, Delete) is skipped until the next round.
func (m *Module) check(ctx context.Context) {
	m.mu.Lock()
	names := slices.Sorted(maps.Keys(m.vms))
	m.mu.Unlock()
	for _, name := range names {
		unlock, ok := m.locks.TryLock(name)
		if !ok {
			continue
		}
		m.checkOne(ctx, name)
		unlock()
	}
}

func (m *Module) checkOne(ctx context.Context, name string) {
	m.mu.Lock()
	s := m.vms[name]
	m.mu.Unlock()
	if s == nil {
		return
	}
	p, err := m.l.Status(ctx, s.rec.Service)
	if errors.Is(err, ErrNoService) {
		p, err = Proc{Exit: "service gone"}, nil
	}
	if err != nil {
		m.log.WarnContext(ctx, "vm status unknown", "vm", name, "err", err)
		return
	}
	now := time.Now()
	m.mu.Lock()
	act := s.observe(p, now, m.cfg)
	st := s.status()
	m.mu.Unlock()
	switch act {
	case actCrashed:
		m.log.WarnContext(ctx, "vm ended, restart scheduled", "vm", name, "reason", st.Reason,
			"delay", st.NextRestart.Sub(now).String(), "failures", s.failures)
	case actStopped:
		m.log.InfoContext(ctx, "vm ended (no keep-alive)", "vm", name, "reason", st.Reason)
	case actRecovered:
		m.log.InfoContext(ctx, "vm running again", "vm", name, "pid", st.PID)
	case actRestart:
		_ = os.Remove(s.rec.Machine.QMPSocket)
		err := m.l.Start(ctx, s.rec.Service, s.rec.Argv)
		m.mu.Lock()
		s.restarted(err, time.Now(), m.cfg)
		st = s.status()
		m.mu.Unlock()
		if err != nil {
			m.log.WarnContext(ctx, "vm restart failed", "vm", name, "err", err, "next", st.NextRestart)
		} else {
			m.log.InfoContext(ctx, "vm restarted", "vm", name, "restarts", st.Restarts)
		}
	}
	if rotated, err := rotateConsole(s.rec.Machine.ConsoleLog, m.cfg.LogMaxBytes); err != nil {
		m.log.WarnContext(ctx, "vm console rotation failed", "vm", name, "err", err)
	} else if rotated {
		m.log.DebugContext(ctx, "vm console rotated", "vm", name)
	}
}

// reattach rebuilds the module's view at start: every record becomes a VM
// again, adopting its QEMU when it runs (checked over QMP), scheduling a
// restart when it does not (or leaving it stopped for NoKeepAlive);
// interrupted deletions are finished; services without a record stopped.
func (m *Module) reattach(ctx context.Context) error {
	names, err := m.store.names()
	if err != nil {
		return err
	}
	known := map[string]bool{}
	now := time.Now()
	for _, name := range names {
		rec, err := m.store.load(name)
		if err != nil {
			// A crash in Run between mkdir and the record: no QEMU was
			// started for it, but make sure.
			m.log.WarnContext(ctx, "vm directory without record removed", "vm", name, "err", err)
			if err := m.l.Stop(ctx, m.service(name)); err != nil {
				return err
			}
			if err := m.store.remove(name); err != nil {
				return err
			}
			continue
		}
		if rec.Deleting {
			m.mu.Lock()
			m.vms[name] = &vmState{rec: rec, state: StateStopped, since: now}
			m.mu.Unlock()
			if err := m.deleteLocked(ctx, name); err != nil {
				return err
			}
			m.log.InfoContext(ctx, "vm deletion finished", "vm", name)
			continue
		}
		known[rec.Service] = true
		s := &vmState{rec: rec, since: now}
		p, err := m.l.Status(ctx, rec.Service)
		switch {
		case err == nil && p.Running:
			s.state, s.pid, s.started = StateRunning, p.PID, now
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, qerr := m.hv.Info(qctx, rec.Machine)
			cancel()
			if qerr != nil {
				m.log.WarnContext(ctx, "vm adopted, qmp does not answer", "vm", name, "pid", p.PID, "err", qerr)
			} else {
				m.log.InfoContext(ctx, "vm adopted", "vm", name, "pid", p.PID)
			}
		case rec.VM.NoKeepAlive:
			s.state, s.reason = StateStopped, "ended while the agent was down"
		default:
			s.state, s.reason, s.next, s.failures = StateBackoff, "ended while the agent was down", now, 1
			m.log.WarnContext(ctx, "vm found dead, restarting", "vm", name)
		}
		m.mu.Lock()
		m.vms[name] = s
		m.mu.Unlock()
	}
	svcs, err := m.l.List(ctx, m.cfg.ServicePrefix)
	if err != nil {
		return err
	}
	for _, svc := range svcs {
		if !known[svc] {
			m.log.WarnContext(ctx, "vm service without record stopped", "service", svc)
			if err := m.l.Stop(ctx, svc); err != nil {
				return err
			}
		}
	}
	return nil
}
