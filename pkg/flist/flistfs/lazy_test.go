package flistfs

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLazySharesOneLoad(t *testing.T) {
	var l lazy[int]
	var loads atomic.Int64
	release := make(chan struct{})
	load := func(ctx context.Context) (int, error) {
		loads.Add(1)
		<-release
		return 42, nil
	}
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if v, err := l.get(context.Background(), time.Minute, load); v != 42 || err != nil {
				t.Errorf("get = %d, %v", v, err)
			}
		})
	}
	time.Sleep(50 * time.Millisecond) // let them all wait on the load
	close(release)
	wg.Wait()
	if v, err := l.get(context.Background(), time.Minute, load); v != 42 || err != nil {
		t.Errorf("kept value: %d, %v", v, err)
	}
	if n := loads.Load(); n != 1 {
		t.Errorf("%d loads, want 1", n)
	}
}

// TestLazyFailureIsNotKept: every waiter of a failed load gets its error,
// the next caller loads again.
func TestLazyFailureIsNotKept(t *testing.T) {
	var l lazy[string]
	boom := errors.New("boom")
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			_, err := l.get(context.Background(), time.Minute, func(context.Context) (string, error) {
				<-release
				return "", boom
			})
			if !errors.Is(err, boom) {
				t.Errorf("waiter of a failed load: %v", err)
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	v, err := l.get(context.Background(), time.Minute, func(context.Context) (string, error) { return "ok", nil })
	if v != "ok" || err != nil {
		t.Errorf("load after a failure: %q, %v", v, err)
	}
}

// TestLazyLoadHasItsOwnDeadline: the load's context is no caller's; it
// ends with the load's timeout.
func TestLazyLoadHasItsOwnDeadline(t *testing.T) {
	var l lazy[int]
	start := time.Now()
	_, err := l.get(context.Background(), 100*time.Millisecond, func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("load past its timeout: %v after %v", err, time.Since(start))
	}
}

// TestLazyPanicReleasesWaiters: a load that panics does not leave the
// other callers waiting forever.
func TestLazyPanicReleasesWaiters(t *testing.T) {
	var l lazy[int]
	started := make(chan struct{})
	release := make(chan struct{})
	go func() {
		defer func() { _ = recover() }()
		_, _ = l.get(context.Background(), time.Minute, func(context.Context) (int, error) {
			close(started)
			<-release
			panic("load failed badly")
		})
	}()
	<-started
	done := make(chan error, 1)
	go func() {
		_, err := l.get(context.Background(), time.Minute, func(context.Context) (int, error) { return 1, nil })
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	close(release)
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, errLoadPanicked) {
			t.Errorf("waiter of a panicked load: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiter of a panicked load still waits")
	}
}

// TestLazyLoadEndsWithTheMount: a load in progress ends when the mount's
// lifetime does (unmount), so shutdown never waits for a slow load.
func TestLazyLoadEndsWithTheMount(t *testing.T) {
	var l lazy[int]
	life, unmount := context.WithCancel(context.Background())
	go func() {
		time.Sleep(50 * time.Millisecond)
		unmount()
	}()
	start := time.Now()
	_, err := l.get(life, time.Minute, func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	})
	if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Errorf("load at unmount: %v after %v", err, time.Since(start))
	}
}
