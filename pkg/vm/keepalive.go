package vm

import (
	"sync"
	"time"
)

// vmState is the module's view of one VM. Its fields are guarded by
// Module.mu; rec changes only under the VM's name lock.
type vmState struct {
	rec      record
	state    State
	reason   string    // why the last QEMU ended
	restarts int       // keep-alive restarts since the module started
	failures int       // consecutive crashes, for the backoff
	started  time.Time // when the current QEMU was started (or adopted)
	since    time.Time // when state began
	next     time.Time // restart time in StateBackoff
	pid      int
}

// restartDelay is the keep-alive delay after the n-th consecutive crash:
// base, 2·base, 4·base… capped at max.
func restartDelay(n int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < n; i++ {
		if d >= max/2 {
			return max
		}
		d *= 2
	}
	return min(d, max)
}

// action is what the module must do after observing a VM.
type action int

const (
	actNone action = iota
	actCrashed
	actStopped
	actRestart
	actRecovered
)

// observe updates s with what the launcher reports at time now and returns
// what to do. Called with Module.mu held.
func (s *vmState) observe(p Proc, now time.Time, cfg Config) action {
	healthy := !s.started.IsZero() && now.Sub(s.started) >= cfg.HealthyAfter
	switch s.state {
	case StateRunning:
		if p.Running {
			s.pid = p.PID
			if healthy {
				s.failures = 0
			}
			return actNone
		}
		if p.Exit == "" { // launched, not spawned yet
			return actNone
		}
		s.pid, s.since = 0, now
		s.reason = p.Exit
		if s.rec.VM.NoKeepAlive {
			s.state = StateStopped
			return actStopped
		}
		if healthy {
			s.failures = 0
		}
		s.failures++
		s.state = StateBackoff
		s.next = now.Add(restartDelay(s.failures, cfg.RestartDelay, cfg.MaxRestartDelay))
		return actCrashed
	case StateBackoff:
		if p.Running { // started by someone else (an operator)
			s.state, s.pid, s.since, s.started, s.next = StateRunning, p.PID, now, now, time.Time{}
			return actRecovered
		}
		if !now.Before(s.next) {
			return actRestart
		}
	}
	return actNone
}

// restarted records the outcome of a keep-alive restart at now.
func (s *vmState) restarted(err error, now time.Time, cfg Config) {
	if err != nil {
		s.failures++
		s.reason = "restart failed: " + err.Error()
		s.next = now.Add(restartDelay(s.failures, cfg.RestartDelay, cfg.MaxRestartDelay))
		return
	}
	s.state, s.since, s.started, s.next, s.pid = StateRunning, now, now, time.Time{}, 0
	s.restarts++
}

func (s *vmState) status() Status {
	return Status{
		Name: s.rec.VM.Name, State: s.state, Reason: s.reason, Restarts: s.restarts,
		NextRestart: s.next, Since: s.since, PID: s.pid, Accel: s.rec.Machine.Accel,
		Machine: s.rec.Machine.Type, CPU: s.rec.Machine.CPU, MemoryMiB: s.rec.Machine.Memory,
	}
}

// keyedLocks serialises operations per VM name.
type keyedLocks struct {
	mu sync.Mutex
	m  map[string]*keyedLock // guarded by mu
}

type keyedLock struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedLocks) get(key string) *keyedLock {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[string]*keyedLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyedLock{}
		k.m[key] = l
	}
	l.refs++
	return l
}

func (k *keyedLocks) put(key string, l *keyedLock) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l.refs--; l.refs == 0 {
		delete(k.m, key)
	}
}

// Lock locks key and returns its unlock function.
func (k *keyedLocks) Lock(key string) func() {
	l := k.get(key)
	l.mu.Lock()
	return func() { l.mu.Unlock(); k.put(key, l) }
}

// TryLock locks key if it is free.
func (k *keyedLocks) TryLock(key string) (func(), bool) {
	l := k.get(key)
	if !l.mu.TryLock() {
		k.put(key, l)
		return nil, false
	}
	return func() { l.mu.Unlock(); k.put(key, l) }, true
}
