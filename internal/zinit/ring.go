package zinit

import (
	"sync"
)

// MaxLogLineBytes bounds one line kept in the ring; longer output is split.
const MaxLogLineBytes = 8 << 10

// Ring is a bounded buffer of log lines with live subscribers. Writers never
// block: a subscriber that falls behind misses lines (and is told how many).
// It is safe for concurrent use.
type Ring struct {
	mu    sync.Mutex
	lines []string // guarded by mu; circular, len == capacity once full
	next  int      // guarded by mu; index of the oldest line once full
	full  bool     // guarded by mu
	subs  map[*Subscription]struct{}
}

// NewRing returns a ring keeping the last n lines (n ≥ 1).
func NewRing(n int) *Ring {
	return &Ring{lines: make([]string, 0, max(n, 1)), subs: map[*Subscription]struct{}{}}
}

// Subscription receives the lines written after Subscribe.
type Subscription struct {
	C       chan string
	r       *Ring
	dropped int // guarded by r.mu
}

// Dropped returns how many lines were lost because C was full, and resets it.
func (s *Subscription) Dropped() int {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	d := s.dropped
	s.dropped = 0
	return d
}

// Close ends the subscription. C is not closed.
func (s *Subscription) Close() {
	s.r.mu.Lock()
	delete(s.r.subs, s)
	s.r.mu.Unlock()
}

// Write appends one line (without newline).
func (r *Ring) Write(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		r.lines = append(r.lines, line)
		if len(r.lines) == cap(r.lines) {
			r.full = true
		}
	} else {
		r.lines[r.next] = line
		r.next = (r.next + 1) % len(r.lines)
	}
	for s := range r.subs {
		select {
		case s.C <- line:
		default:
			s.dropped++
		}
	}
}

// snapshotLocked returns the buffered lines, oldest first.
func (r *Ring) snapshotLocked() []string {
	out := make([]string, 0, len(r.lines))
	if r.full {
		out = append(out, r.lines[r.next:]...)
		out = append(out, r.lines[:r.next]...)
		return out
	}
	return append(out, r.lines...)
}

// Snapshot returns the buffered lines, oldest first.
func (r *Ring) Snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snapshotLocked()
}

// Subscribe returns the buffered lines and a subscription to the lines that
// follow them, with no line lost or repeated between the two.
func (r *Ring) Subscribe(buffer int) ([]string, *Subscription) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &Subscription{C: make(chan string, max(buffer, 1)), r: r}
	r.subs[s] = struct{}{}
	return r.snapshotLocked(), s
}
