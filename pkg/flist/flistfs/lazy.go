package flistfs

import (
	"context"
	"errors"
	"sync"
	"time"
)

// errLoadPanicked is what callers waiting on a load get when it panicked.
var errLoadPanicked = errors.New("flistfs: load panicked")

// lazy is a value of the flist (a directory listing, a block list, the
// extended attributes of an inode) loaded on first use and kept: the flist
// never changes under a mount. Concurrent callers share one load.
//
// The load never runs with a request's context. go-fuse cancels the
// context of a request when the kernel sends an INTERRUPT for it, and the
// kernel does so whenever the process waiting on the request gets a
// signal, any signal: Go programs get them all the time (goroutine
// preemption), stop and continue signals count too. Interrupting a load
// shared by other callers would fail it for all of them, and a cancelled
// load is no answer about the flist. So the load runs with the mount's
// lifetime context, bounded by a timeout, and callers wait for it whatever
// their request's context: the kernel waits for the answer to a request it
// has sent anyway (for a killed process it drops the answer), and
// answering EINTR early would fail the system call of a process that only
// got a signal. A failed load is not kept: the next caller loads again.
type lazy[T any] struct {
	mu     sync.Mutex
	ok     bool       // guarded by mu
	val    T          // guarded by mu; set once ok
	flight *flight[T] // guarded by mu; the load in progress, if any
}

type flight[T any] struct {
	done chan struct{}
	val  T     // set before done is closed
	err  error // set before done is closed
}

// get returns the value, loading it with load when it is not loaded yet,
// or waiting for the load in progress. life is the mount's lifetime (never
// a request's context); a load ends with it or after timeout.
func (l *lazy[T]) get(life context.Context, timeout time.Duration, load func(ctx context.Context) (T, error)) (T, error) {
	l.mu.Lock()
	if l.ok {
		v := l.val
		l.mu.Unlock()
		return v, nil
	}
	if f := l.flight; f != nil {
		l.mu.Unlock()
		<-f.done
		return f.val, f.err
	}
	f := &flight[T]{done: make(chan struct{})}
	l.flight = f
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		if f.err == nil {
			l.val, l.ok = f.val, true
		}
		l.flight = nil
		l.mu.Unlock()
		close(f.done)
	}()
	f.err = errLoadPanicked // replaced unless load panics
	ctx, cancel := context.WithTimeout(life, timeout)
	defer cancel()
	f.val, f.err = load(ctx)
	return f.val, f.err
}
