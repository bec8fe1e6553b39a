package zinit

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
)

// load reads every service file of the config directory, adopts the
// processes recorded in the state directory, cleans up what belongs to no
// service, and starts the runners.
func (m *Manager) load(ctx context.Context) {
	entries, err := os.ReadDir(m.cfg.ConfigDir)
	if err != nil {
		m.log.Error("config dir not readable", "dir", m.cfg.ConfigDir, "err", err)
	}
	cfgs := map[string]Service{}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".yaml")
		if !ok || e.IsDir() || ValidName(name) != nil {
			continue
		}
		cfg, err := LoadService(m.cfg.ConfigDir, name)
		if err != nil {
			m.log.Error("service file skipped", "service", name, "err", err)
			continue
		}
		cfgs[name] = cfg
	}
	deps := func(n string) []string { return cfgs[n].After }
	names := make([]string, 0, len(cfgs))
	for n := range cfgs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if _, ok := cfgs[n]; !ok {
			continue
		}
		if cycle := findCycle(n, deps); cycle != nil {
			m.log.Error("service file skipped", "service", n, "err", "dependency cycle "+strings.Join(cycle, " -> "))
			for _, c := range cycle {
				delete(cfgs, c)
			}
		}
	}

	m.mu.Lock()
	var adopted []*service
	for _, n := range names {
		cfg, ok := cfgs[n]
		if !ok {
			continue
		}
		s := m.addLocked(n, cfg)
		if m.adoptLocked(s) && cfg.Log != LogNone {
			adopted = append(adopted, s)
		}
	}
	// State of services without a (valid) file: their processes have no
	// owner any more; kill them rather than leak them.
	for _, n := range stateNames(m.cfg.StateDir) {
		if _, ok := m.services[n]; ok {
			continue
		}
		if rs, err := readState(m.cfg.StateDir, n); err == nil && rs.Pid > 0 {
			if p, err := adopt(rs.Pid, rs.Start); err == nil {
				m.log.Warn("process of unknown service killed", "service", n, "pid", rs.Pid)
				p.killGroup()
				p.release()
			}
		}
		_ = removeState(m.cfg.StateDir, n)
	}
	m.removeStaleFilesLocked()
	m.mu.Unlock()
	// Read what adopted services wrote while no zinit was there, and on.
	for _, s := range adopted {
		if err := m.ensureOutput(s); err != nil {
			m.log.Warn("output of adopted service lost", "service", s.name, "err", err)
		}
	}
	m.mu.Lock()
	for _, n := range names {
		if s, ok := m.services[n]; ok {
			m.startRunnerLocked(s)
		}
	}
	m.mu.Unlock()
}

// adoptLocked takes over the process recorded for s, if it still runs, and
// reports whether it did.
func (m *Manager) adoptLocked(s *service) bool {
	rs, err := readState(m.cfg.StateDir, s.name)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		m.log.Warn("state file ignored", "service", s.name, "err", err)
	}
	if rs.Down {
		s.target = Down
	}
	s.rs = runState{Down: rs.Down}
	pid, start := rs.Pid, rs.Start
	if pid == 0 && s.cfg.Log != LogNone {
		// zinit may have died between a spawn and saving the pid: look for
		// a session leader writing to the service's FIFO.
		if pid = findByStdout(fifoPath(m.cfg.StateDir, s.name, "out")); pid > 0 {
			if st, err := readStat(pid); err == nil {
				start = st.start
			}
		}
		rs.Running = false
	}
	if pid == 0 {
		return false
	}
	p, err := adopt(pid, start)
	if err != nil {
		m.log.Info("recorded process gone", "service", s.name, "pid", pid)
		return false
	}
	s.proc = p
	s.rs = runState{Pid: pid, Start: start, Running: rs.Running, Down: rs.Down}
	s.state = State{Kind: Spawned}
	if s.rs.Running || len(s.cfg.Test) == 0 {
		s.state = State{Kind: Running}
	}
	if err := writeState(m.cfg.StateDir, s.name, s.rs); err != nil {
		m.log.Error("state not saved", "service", s.name, "err", err)
	}
	m.log.Info("service adopted", "service", s.name, "pid", pid)
	return true
}
