package zinit

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
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

	keepTokens := map[string]bool{}
	var pumps []func()
	m.mu.Lock()
	for _, n := range names {
		cfg, ok := cfgs[n]
		if !ok {
			continue
		}
		s := m.addLocked(n, cfg)
		if f := m.adoptLocked(s); f != nil {
			pumps = append(pumps, f)
		}
		if s.rs.Token != "" {
			keepTokens[s.rs.Token] = true
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
	m.removeStaleFiles(keepTokens)
	for _, n := range names {
		if s, ok := m.services[n]; ok {
			m.startRunnerLocked(s)
		}
	}
	m.mu.Unlock()
	for _, f := range pumps {
		f()
	}
}

// adoptLocked takes over the process recorded for s, if it still runs. It
// returns the function that starts reading the process's output, to be
// called without mu.
func (m *Manager) adoptLocked(s *service) func() {
	rs, err := readState(m.cfg.StateDir, s.name)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			m.log.Warn("state file ignored", "service", s.name, "err", err)
		}
		return nil
	}
	if rs.Down {
		s.target = Down
	}
	s.rs = runState{Down: rs.Down}
	pid, start := rs.Pid, rs.Start
	if pid == 0 && rs.Token != "" {
		// zinit died between spawn and saving the pid: find the process by
		// its output FIFO.
		pid = findByStdout(fifoPath(m.cfg.StateDir, s.name, rs.Token, "out"))
		if pid > 0 {
			if st, err := readStat(pid); err == nil {
				start = st.start
			}
		}
		rs.Running = false
	}
	if pid == 0 {
		return nil
	}
	p, err := adopt(pid, start)
	if err != nil {
		m.log.Info("recorded process gone", "service", s.name, "pid", pid)
		return nil
	}
	s.proc = p
	s.rs = runState{Token: rs.Token, Pid: pid, Start: start, Running: rs.Running && len(s.cfg.Test) > 0 || len(s.cfg.Test) == 0, Down: rs.Down}
	s.state = State{Kind: Spawned}
	if s.rs.Running {
		s.state = State{Kind: Running}
	}
	m.persistLocked(s)
	m.log.Info("service adopted", "service", s.name, "pid", pid)
	if rs.Token != "" {
		var readers [2]*os.File
		for i, stream := range []string{"out", "err"} {
			if r, err := openFIFOReader(fifoPath(m.cfg.StateDir, s.name, rs.Token, stream)); err == nil {
				readers[i] = r
			}
		}
		name, toStdout := s.name, s.cfg.Log == LogStdout
		return func() { m.startPumps(name, rs.Token, toStdout, readers) }
	}
	return nil
}

// removeStaleFiles removes FIFOs and temp files of the state directory that
// belong to no live process.
func (m *Manager) removeStaleFiles(keep map[string]bool) {
	entries, _ := os.ReadDir(m.cfg.StateDir)
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") && strings.Contains(n, ".tmp-") {
			_ = os.Remove(filepath.Join(m.cfg.StateDir, n))
			continue
		}
		if !strings.HasSuffix(n, ".out") && !strings.HasSuffix(n, ".err") {
			continue
		}
		parts := strings.Split(n, ".")
		if len(parts) >= 3 && keep[parts[len(parts)-2]] {
			continue
		}
		_ = os.Remove(filepath.Join(m.cfg.StateDir, n))
	}
}
