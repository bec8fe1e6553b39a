package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/containerd/errdefs"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/gridtypes"
)

// keyedMutex is a mutex per reservation id, so independent reservations
// proceed in parallel.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[uint64]*keyedEntry // guarded by mu
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

// Lock locks id and returns its unlock function.
func (k *keyedMutex) Lock(id uint64) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[uint64]*keyedEntry{}
	}
	e := k.locks[id]
	if e == nil {
		e = &keyedEntry{}
		k.locks[id] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(k.locks, id)
		}
		k.mu.Unlock()
	}
}

// startDeploy runs the deploy worker of id unless one runs already. With
// ensure, a deployed workload is re-provisioned (brought back after a
// restart); its failures are retried, never turned into a failed result.
// firstDone, when set, is called once after the first attempt (or when no
// worker is started).
func (e *Engine) startDeploy(id uint64, ensure bool, firstDone func()) {
	once := sync.OnceFunc(func() {
		if firstDone != nil {
			firstDone()
		}
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.runCtx == nil {
		once()
		return
	}
	if _, running := e.inflight[id]; running {
		once()
		return
	}
	ctx, cancel := context.WithCancel(e.runCtx)
	e.inflight[id] = cancel
	e.wg.Go(func() {
		defer cancel()
		defer once()
		e.retry(ctx, id, "deploy", func(ctx context.Context) (bool, error) {
			defer once()
			return e.deployOnce(ctx, id, ensure)
		})
		e.mu.Lock()
		delete(e.inflight, id)
		e.mu.Unlock()
	})
}

// cancelInflight stops the deploy worker of id, if any, and waits for
// nothing: the worker notices at its next step and releases id's lock.
func (e *Engine) cancelInflight(id uint64) {
	e.mu.Lock()
	cancel := e.inflight[id]
	delete(e.inflight, id)
	e.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// retry calls step until it reports done, waiting with capped exponential
// backoff between attempts.
func (e *Engine) retry(ctx context.Context, id uint64, what string, step func(context.Context) (bool, error)) {
	delay := e.cfg.RetryMin
	for {
		done, err := step(ctx)
		if done || ctx.Err() != nil {
			return
		}
		e.log.WarnContext(ctx, what+" retried", "id", id, "in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(delay*2, e.cfg.RetryMax)
	}
}

// retryable reports errors worth another attempt: a missing dependency, a
// temporary failure, a timeout, or a module that is unavailable for now
// (starting, its daemon restarting: the errdefs class modules wrap).
func retryable(err error) bool {
	return errors.Is(err, ErrDependency) || errors.Is(err, ErrTemporary) ||
		errors.Is(err, context.DeadlineExceeded) || errdefs.IsUnavailable(err)
}

func (e *Engine) acquire(ctx context.Context) bool {
	select {
	case e.sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (e *Engine) release() { <-e.sem }

// deployOnce makes one attempt; done=false asks for a retry.
func (e *Engine) deployOnce(ctx context.Context, id uint64, ensure bool) (done bool, err error) {
	unlock := e.locks.Lock(id)
	defer unlock()
	if ctx.Err() != nil {
		return true, nil
	}
	rec, err := e.store.Get(id)
	if err != nil {
		return errors.Is(err, ErrNotFound), err
	}
	if rec.State != StateDeploying && !(ensure && rec.State == StateDeployed) {
		return true, nil
	}
	p := e.prov[rec.Reservation.Type]
	if p == nil {
		if rec.State == StateDeployed {
			return true, nil // provisioner gone (host lost a capability): keep the record, nothing to ensure
		}
		return true, e.failLocked(ctx, rec, fmt.Errorf("type %q: %w", rec.Reservation.Type, ErrUnsupported))
	}
	w, err := e.open(ctx, rec.Reservation)
	if err == nil {
		if !e.acquire(ctx) {
			return true, nil
		}
		opCtx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
		var data any
		data, err = p.Provision(opCtx, &Deployment{Name: rec.Name, Reservation: rec.Reservation, Workload: w, Store: e.store})
		cancel()
		e.release()
		if err == nil {
			return true, e.deployedLocked(ctx, rec, data)
		}
	}
	if ctx.Err() != nil {
		return true, nil // deleted or shutting down; the record says what to do next
	}
	if ensure || retryable(err) {
		rec.Retries++
		rec.LastError = err.Error()
		rec.Updated = e.now().Unix()
		if perr := e.put(rec); perr != nil {
			return false, perr
		}
		return false, err
	}
	// Permanent. A failed update leaves what runs to the reservation it
	// wanted to replace, which is restored; otherwise undo whatever was
	// done. Then report the failure.
	if rec.Replaces != 0 {
		if rerr := e.restoreReplaced(ctx, rec); rerr != nil {
			return false, rerr
		}
	} else if derr := p.Decommission(context.WithoutCancel(ctx), &Deployment{Name: rec.Name, Reservation: rec.Reservation, Store: e.store}); derr != nil {
		e.log.WarnContext(ctx, "cleanup after failure", "id", id, "err", derr)
	}
	return true, e.failLocked(ctx, rec, err)
}

// open decrypts the workload's secrets.
func (e *Engine) open(ctx context.Context, r *gridtypes.Reservation) (gridtypes.Workload, error) {
	clear := *r
	err := clear.TransformSecrets(func(field string, kind gridtypes.SecretKind, v string) (string, error) {
		out, err := e.secrets.Open(ctx, r, kind, v)
		if err != nil {
			return "", fmt.Errorf("%s: %w", field, err)
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return clear.Workload()
}

func (e *Engine) deployedLocked(ctx context.Context, rec *Record, data any) error {
	res, err := gridtypes.NewResult(rec.Reservation, gridtypes.StateOK, "", data, e.now())
	if err != nil {
		return err
	}
	if rec.State == StateDeployed && rec.Result != nil && rec.Result.State == gridtypes.StateOK && bytes.Equal(rec.Result.Data, res.Data) {
		// Restored as it was: nothing new to report.
		if rec.LastError != "" {
			rec.LastError = ""
			rec.Retries = 0
			return e.put(rec)
		}
		return nil
	}
	res.Sign(e.cfg.Key)
	first := rec.State == StateDeploying
	rec.State = StateDeployed
	rec.Result = res
	rec.Reported = false
	rec.LastError = ""
	rec.Retries = 0
	rec.Updated = e.now().Unix()
	if err := e.put(rec); err != nil {
		return err
	}
	e.log.InfoContext(ctx, "reservation deployed", "id", rec.ID(), "type", string(rec.Reservation.Type), "name", rec.Name)
	if first {
		e.observe(rec)
		if rec.Replaces != 0 {
			e.retireReplaced(ctx, rec)
		}
	}
	e.startReport(rec.ID())
	return nil
}

// startDelete runs the decommission worker of id. Decommission failures are
// retried until they succeed: a workload asked to go is never left half
// removed.
func (e *Engine) startDelete(id uint64) {
	e.goWorker(func(ctx context.Context) {
		e.retry(ctx, id, "delete", func(ctx context.Context) (bool, error) { return e.deleteOnce(ctx, id) })
	})
}

func (e *Engine) deleteOnce(ctx context.Context, id uint64) (bool, error) {
	unlock := e.locks.Lock(id)
	defer unlock()
	rec, err := e.store.Get(id)
	if err != nil {
		return errors.Is(err, ErrNotFound), err
	}
	if rec.State != StateDeleting {
		return true, nil
	}
	if p := e.prov[rec.Reservation.Type]; p != nil {
		if !e.acquire(ctx) {
			return true, nil
		}
		opCtx, cancel := context.WithTimeout(ctx, e.cfg.OpTimeout)
		err = p.Decommission(opCtx, &Deployment{Name: rec.Name, Reservation: rec.Reservation, Store: e.store})
		cancel()
		e.release()
		if err != nil {
			rec.Retries++
			rec.LastError = err.Error()
			if perr := e.put(rec); perr != nil {
				return false, perr
			}
			return false, err
		}
	}
	rec.State = StateDeleted
	msg := rec.Reason // expired, or DecommissionCached's reason
	if err := e.setResult(rec, gridtypes.StateDeleted, msg, nil); err != nil {
		return false, err
	}
	if err := e.put(rec); err != nil {
		return false, err
	}
	e.log.InfoContext(ctx, "reservation deleted", "id", id, "name", rec.Name)
	e.startReport(id)
	return true, nil
}

// startReport sends id's current result until the reporter accepts it.
func (e *Engine) startReport(id uint64) {
	e.mu.Lock()
	if e.runCtx == nil || e.reports[id] {
		e.mu.Unlock()
		return
	}
	e.reports[id] = true
	ctx, wg := e.runCtx, e.wg
	e.mu.Unlock()
	wg.Go(func() {
		defer func() {
			e.mu.Lock()
			delete(e.reports, id)
			e.mu.Unlock()
		}()
		e.retry(ctx, id, "report", func(ctx context.Context) (bool, error) { return e.reportOnce(ctx, id) })
	})
}

func (e *Engine) reportOnce(ctx context.Context, id uint64) (bool, error) {
	rec, err := e.store.Get(id)
	if err != nil {
		return errors.Is(err, ErrNotFound), err
	}
	if rec.Result == nil || rec.Reported {
		return true, nil
	}
	if err := e.reporter.Report(ctx, rec.Result); err != nil {
		return false, err
	}
	unlock := e.locks.Lock(id)
	defer unlock()
	cur, err := e.store.Get(id)
	if err != nil {
		return false, err
	}
	if cur.Result == nil || cur.Result.Signature != rec.Result.Signature {
		return false, errors.New("result changed while reporting") // report the new one
	}
	cur.Reported = true
	return true, e.put(cur)
}

// Counters implements pkg.Provision: the number of deployed workloads by
// type, every CounterInterval, until ctx ends. VM counts kubernetes and vm
// workloads.
func (e *Engine) Counters(ctx context.Context) <-chan pkg.ProvisionCounters {
	ch := make(chan pkg.ProvisionCounters)
	go func() {
		defer close(ch)
		t := time.NewTicker(e.cfg.CounterInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			c, err := e.counters()
			if err != nil {
				continue
			}
			select {
			case <-ctx.Done():
				return
			case ch <- c:
			}
		}
	}()
	return ch
}

func (e *Engine) counters() (pkg.ProvisionCounters, error) {
	recs, err := e.store.List()
	if err != nil {
		return pkg.ProvisionCounters{}, err
	}
	var c pkg.ProvisionCounters
	for _, r := range recs {
		if r.State != StateDeployed {
			continue
		}
		switch r.Reservation.Type {
		case gridtypes.TypeContainer:
			c.Container++
		case gridtypes.TypeVolume:
			c.Volume++
		case gridtypes.TypeNetwork:
			c.Network++
		case gridtypes.TypeZDB:
			c.ZDB++
		case gridtypes.TypeKubernetes, gridtypes.TypeVM:
			c.VM++
		case gridtypes.TypeDebug:
			c.Debug++
		}
	}
	return c, nil
}

// retireReplaced reports the reservation an update replaced as deleted
// (its objects live on under the update), once the update is deployed, so
// the grid frees what it held. Called with rec's lock held.
func (e *Engine) retireReplaced(ctx context.Context, rec *Record) {
	unlock := e.locks.Lock(rec.Replaces)
	defer unlock()
	old, err := e.store.Get(rec.Replaces)
	if err != nil || old.ReplacedBy != rec.ID() {
		return
	}
	if old.Result != nil && old.Result.State == gridtypes.StateDeleted {
		return
	}
	if err := e.setResult(old, gridtypes.StateDeleted, fmt.Sprintf("replaced by reservation %d", rec.ID()), nil); err != nil {
		e.log.WarnContext(ctx, "result of replaced reservation", "id", old.ID(), "err", err)
		return
	}
	if err := e.put(old); err != nil {
		e.log.WarnContext(ctx, "result of replaced reservation", "id", old.ID(), "err", err)
		return
	}
	e.startReport(old.ID())
}
