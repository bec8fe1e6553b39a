package provision

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/gridtypes"
)

// Errors a Provisioner wraps to tell the engine to try again later instead
// of failing the workload.
var (
	// ErrDependency: something the workload needs is not there yet (its
	// network, a volume, a disk): retried with backoff until it appears or
	// the workload is deleted.
	ErrDependency = errors.New("dependency not ready")
	// ErrTemporary: a transient failure of the node itself (a daemon
	// restarting): retried with backoff.
	ErrTemporary = errors.New("temporary failure")
)

// Errors the engine reports in results.
var (
	// ErrWrongNode: the reservation is for another node.
	ErrWrongNode = errors.New("reservation is for another node")
	// ErrNoCapacity: the node cannot fit the workload.
	ErrNoCapacity = errors.New("not enough capacity")
	// ErrUnsupported: no provisioner for the workload type on this node.
	ErrUnsupported = errors.New("workload type not supported on this node")
	// ErrBadReference: an update refers to a reservation that cannot be
	// replaced by it.
	ErrBadReference = errors.New("invalid reference")
)

// Delivery is one reservation handed to the engine by a Source.
type Delivery struct {
	Reservation *gridtypes.Reservation
	// Ack, when set, is called once the engine has durably recorded what
	// it will do with the reservation; a source redelivers what is not
	// acknowledged.
	Ack func()
}

// Source produces reservations for this node until ctx ends.
type Source interface {
	Run(ctx context.Context, out chan<- Delivery) error
}

// Reporter sends results to the grid. Report is retried by the engine
// until it succeeds; it must be idempotent.
type Reporter interface {
	Report(ctx context.Context, r *gridtypes.Result) error
}

// Users returns users' public keys, to verify signatures and decrypt
// secrets.
type Users interface {
	PublicKey(ctx context.Context, userID uint64) (ed25519.PublicKey, error)
}

// Deployment is what a Provisioner works on.
type Deployment struct {
	// Name is the working name: everything created for the workload is
	// named after it. It stays the same across updates.
	Name string
	// Reservation is the reservation being deployed or removed.
	Reservation *gridtypes.Reservation
	// Workload is the reservation's workload with its secrets decrypted.
	// Nil for Decommission.
	Workload gridtypes.Workload
	// Store gives read access to the node's other workloads (e.g. a
	// container checks the volumes it mounts).
	Store Store
}

// Provisioner deploys and removes one workload type. Both methods are
// idempotent ensures: called again after a crash, or after a power cut with
// nothing running, Provision brings the workload back to running and
// returns the same result data; Decommission of something absent succeeds.
// A failed Provision must leave nothing behind, or Decommission must clean
// it (the engine calls it after a permanent failure).
type Provisioner interface {
	Provision(ctx context.Context, d *Deployment) (any, error)
	Decommission(ctx context.Context, d *Deployment) error
}

// Config configures the engine.
type Config struct {
	// NodeID is this node's id; reservations for others are refused.
	NodeID string
	// Key signs results.
	Key ed25519.PrivateKey
	// Total is the node's capacity; SystemReserve is kept for the node
	// itself. Admission refuses a workload when live workloads plus it
	// plus the reserve exceed Total. Zero Total disables admission.
	Total         gridtypes.Capacity
	SystemReserve gridtypes.Capacity
	// Workers bounds concurrent provisioner calls.
	Workers int
	// RetryMin and RetryMax bound the backoff of retried operations.
	RetryMin, RetryMax time.Duration
	// OpTimeout bounds one provisioner call.
	OpTimeout time.Duration
	// CounterInterval is the period of the Counters stream.
	CounterInterval time.Duration
	// ExpiryInterval is how often workloads past their lifetime are
	// looked for (the original: 20 s).
	ExpiryInterval time.Duration
	// VerifySignatures makes the node check the owner's signature and the
	// signature quorum itself (the original trusted the explorer).
	VerifySignatures bool
	// Observe, when set, is called each time a reservation reaches
	// StateDeployed or StateFailed for the first time, with the time since
	// it was received (metrics).
	Observe func(t gridtypes.WorkloadType, s State, latency time.Duration)
}

// DefaultConfig returns the engine's defaults; NodeID and Key must be set.
func DefaultConfig() Config {
	return Config{
		Workers:          8,
		RetryMin:         time.Second,
		RetryMax:         time.Minute,
		OpTimeout:        10 * time.Minute,
		CounterInterval:  2 * time.Second,
		ExpiryInterval:   20 * time.Second,
		VerifySignatures: true,
		SystemReserve:    gridtypes.Capacity{MRU: 2 * gridtypes.GiB},
	}
}

// Validate reports an unusable configuration.
func (c Config) Validate() error {
	switch {
	case c.NodeID == "":
		return errors.New("provision: node id not set")
	case len(c.Key) != ed25519.PrivateKeySize:
		return errors.New("provision: node key not set")
	case c.Workers <= 0:
		return errors.New("provision: workers must be positive")
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return errors.New("provision: retry bounds invalid")
	case c.OpTimeout <= 0 || c.CounterInterval <= 0 || c.ExpiryInterval <= 0:
		return errors.New("provision: timeouts must be positive")
	}
	return nil
}

// Engine deploys the reservations its sources deliver, concurrently for
// independent reservations, keeps their state in a Store, and reports
// signed results. It implements pkg.Provision.
type Engine struct {
	cfg      Config
	store    Store
	prov     map[gridtypes.WorkloadType]Provisioner
	users    Users
	reporter Reporter
	secrets  SecretOpener
	log      *slog.Logger
	now      func() time.Time

	// pending counts the recovery workers that have not finished their
	// first attempt; zero once the node is back to what the store says.
	pending atomic.Int64

	usage usageIndex

	locks   keyedMutex
	sem     chan struct{}
	admitMu sync.Mutex // serialises admission so two workloads never take the same capacity

	mu       sync.Mutex
	runCtx   context.Context               // guarded by mu; set by Run
	wg       *sync.WaitGroup               // guarded by mu
	inflight map[uint64]context.CancelFunc // guarded by mu: running deploy workers
	reports  map[uint64]bool               // guarded by mu: report loops running
}

var _ pkg.Provision = (*Engine)(nil)

// SecretOpener decrypts a workload secret (hex ciphertext) for the engine.
type SecretOpener interface {
	Open(ctx context.Context, r *gridtypes.Reservation, kind gridtypes.SecretKind, hexCiphertext string) (string, error)
}

// New returns an engine. It starts nothing; Run does.
func New(cfg Config, store Store, prov map[gridtypes.WorkloadType]Provisioner, users Users, secrets SecretOpener, reporter Reporter, log *slog.Logger) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil || reporter == nil || log == nil || secrets == nil {
		return nil, errors.New("provision: store, secrets, reporter and logger are required")
	}
	if cfg.VerifySignatures && users == nil {
		return nil, errors.New("provision: verifying signatures needs a user directory")
	}
	return &Engine{
		cfg: cfg, store: store, prov: prov, users: users, secrets: secrets, reporter: reporter, log: log,
		now:      time.Now,
		sem:      make(chan struct{}, cfg.Workers),
		inflight: map[uint64]context.CancelFunc{},
		reports:  map[uint64]bool{},
	}, nil
}

// Run recovers what the store says was in progress, then processes the
// sources' deliveries until ctx ends. It returns when every worker it
// started has stopped.
func (e *Engine) Run(ctx context.Context, sources ...Source) error {
	var wg sync.WaitGroup
	e.mu.Lock()
	if e.runCtx != nil {
		e.mu.Unlock()
		return errors.New("provision: engine already running")
	}
	e.runCtx, e.wg = ctx, &wg
	e.pending.Add(1) // until recover has started every worker
	e.mu.Unlock()
	defer func() {
		// No new workers from here on; what they would have done (report
		// a result, say) is redone by the next Run's recovery.
		e.mu.Lock()
		e.runCtx, e.wg = nil, nil
		e.mu.Unlock()
		wg.Wait()
	}()

	err := e.loadUsage()
	if err == nil {
		err = e.recover(ctx)
	}
	e.pending.Add(-1)
	if err != nil {
		return err
	}
	wg.Go(func() { e.expiryLoop(ctx) })
	in := make(chan Delivery)
	errs := make(chan error, len(sources))
	for _, s := range sources {
		wg.Go(func() { errs <- s.Run(ctx, in) })
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errs:
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("provision source: %w", err)
			}
		case d := <-in:
			e.Handle(ctx, d)
		}
	}
}

// Ready reports whether the engine runs and processes deliveries.
func (e *Engine) Ready() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.runCtx != nil
}

// Recovered reports whether the engine runs and every workload the store
// holds has been re-ensured once since it started (successfully or not: a
// workload still waiting for a dependency keeps retrying in the background).
func (e *Engine) Recovered() bool {
	return e.Ready() && e.pending.Load() == 0
}

// State returns the state of reservation id (ErrNotFound if unknown).
func (e *Engine) State(id uint64) (State, error) {
	rec, err := e.store.Get(id)
	if err != nil {
		return "", err
	}
	return rec.State, nil
}

// recover restarts what was in progress and re-ensures what is deployed:
// after a power cut nothing runs, and Provision brings it back.
func (e *Engine) recover(ctx context.Context) error {
	recs, err := e.store.List()
	if err != nil {
		return fmt.Errorf("provision recover: %w", err)
	}
	for _, r := range recs {
		switch r.State {
		case StateDeploying:
			e.pending.Add(1)
			e.startDeploy(r.ID(), false, func() { e.pending.Add(-1) })
		case StateDeployed:
			e.pending.Add(1)
			e.startDeploy(r.ID(), true, func() { e.pending.Add(-1) })
		case StateDeleting:
			e.startDelete(r.ID())
		}
		if r.Result != nil && !r.Reported {
			e.startReport(r.ID())
		}
	}
	e.log.InfoContext(ctx, "provision recovered", "records", len(recs))
	return nil
}

// go runs fn as a worker owned by Run; it returns false when the engine is
// not running.
func (e *Engine) goWorker(fn func(ctx context.Context)) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.runCtx == nil {
		return false
	}
	ctx := e.runCtx
	e.wg.Go(func() { fn(ctx) })
	return true
}

// Handle processes one delivery: it records the intent (acknowledging the
// delivery once durable) and starts the work in the background.
func (e *Engine) Handle(ctx context.Context, d Delivery) {
	ack := func() {
		if d.Ack != nil {
			d.Ack()
		}
	}
	r := d.Reservation
	if r == nil {
		ack()
		return
	}
	var err error
	switch r.NextAction {
	case gridtypes.ActionDelete, gridtypes.ActionDeleted:
		err = e.requestDelete(ctx, r)
	case gridtypes.ActionDeploy:
		err = e.requestDeploy(ctx, r)
	default:
		// Not for nodes (create, sign, invalid, ...): nothing to do.
		e.log.DebugContext(ctx, "reservation ignored", "id", r.ID, "next_action", r.NextAction.String())
	}
	if err != nil {
		// The store failed: no ack, the source redelivers.
		e.log.ErrorContext(ctx, "reservation not recorded", "id", r.ID, "err", err)
		return
	}
	ack()
}

func (e *Engine) requestDeploy(ctx context.Context, r *gridtypes.Reservation) error {
	unlock := e.locks.Lock(r.ID)
	defer unlock()
	if old, err := e.store.Get(r.ID); err == nil {
		// Seen before: a redelivery. Make sure its result is reported.
		if old.Result != nil && !old.Reported {
			e.startReport(r.ID)
		}
		return nil
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}

	now := e.now()
	rec := &Record{Reservation: r, Name: r.GWID(), State: StateDeploying, Updated: now.Unix(), Received: now.UnixNano()}
	if err := e.validate(ctx, r); err != nil {
		return e.failLocked(ctx, rec, err)
	}
	if at := r.ExpiresAt(); !at.IsZero() && !now.Before(at) {
		// Its lifetime ended before it got here (the node was down):
		// nothing is deployed, the grid is told it is gone.
		e.log.InfoContext(ctx, "reservation expired before deployment", "id", r.ID)
		return e.tombstoneLocked(rec, reasonExpired)
	}
	if r.Reference != "" {
		name, refID, err := e.takeOver(ctx, r)
		if err != nil {
			return e.failLocked(ctx, rec, err)
		}
		rec.Name, rec.Replaces = name, refID
	}
	e.admitMu.Lock()
	err := e.admitLocked(r)
	if err == nil {
		err = e.put(rec) // intent, before acting
	}
	e.admitMu.Unlock()
	if errors.Is(err, ErrNoCapacity) {
		if rec.Replaces != 0 {
			if rerr := e.restoreReplaced(ctx, rec); rerr != nil {
				return rerr
			}
		}
		return e.failLocked(ctx, rec, err)
	}
	if err != nil {
		return err
	}
	e.log.InfoContext(ctx, "reservation accepted", "id", r.ID, "type", string(r.Type), "name", rec.Name)
	e.startDeploy(r.ID, false, nil)
	return nil
}

// referenced returns the record an update refers to, or why r cannot take
// it over.
func (e *Engine) referenced(r *gridtypes.Reservation, refID uint64) (*Record, error) {
	old, err := e.store.Get(refID)
	if err != nil {
		return nil, fmt.Errorf("reference %d: %w", refID, ErrBadReference)
	}
	switch {
	case old.Reservation.UserID != r.UserID:
		return nil, fmt.Errorf("reference %d belongs to another user: %w", refID, ErrBadReference)
	case old.Reservation.Type != r.Type:
		return nil, fmt.Errorf("reference %d is a %s: %w", refID, old.Reservation.Type, ErrBadReference)
	case old.State == StateDeleted && old.ReplacedBy == r.ID:
		// This very update took it over, and the agent died before the
		// update's own record was written: the redelivery finishes it.
		return old, nil
	case (old.State != StateDeployed && old.State != StateDeploying) || old.ReplacedBy != 0:
		return nil, fmt.Errorf("reference %d is %s: %w", refID, old.State, ErrBadReference)
	}
	return old, nil
}

// takeOver handles an update: the referenced reservation of the same owner
// and type is superseded at once, in delivery order, and its working name
// is reused. One still deploying is stopped: the update provisions the
// name with its own configuration (and a failed update restores it).
func (e *Engine) takeOver(ctx context.Context, r *gridtypes.Reservation) (string, uint64, error) {
	refID, err := gridtypes.ParseGWID(r.Reference)
	if err != nil {
		return "", 0, fmt.Errorf("reference %q: %w", r.Reference, ErrBadReference)
	}
	if _, err := e.referenced(r, refID); err != nil {
		return "", 0, err
	}
	// Stop its worker first (a deploy or an ensure): it holds the lock
	// while it provisions.
	e.cancelInflight(refID)
	unlock := e.locks.Lock(refID)
	defer unlock()
	old, err := e.referenced(r, refID)
	if err != nil {
		// Changed meanwhile (deleted, say): whatever it is now carries on.
		if rec, gerr := e.store.Get(refID); gerr == nil && rec.State.Live() && rec.State != StateDeleting {
			e.startDeploy(refID, rec.State == StateDeployed, nil)
		}
		return "", 0, err
	}
	if old.ReplacedBy == r.ID {
		return old.Name, refID, nil
	}
	old.ReplacedFrom = old.State
	old.State = StateDeleted
	old.ReplacedBy = r.ID
	old.Updated = e.now().Unix()
	if err := e.put(old); err != nil {
		return "", 0, err
	}
	e.log.InfoContext(ctx, "reservation replaced", "id", refID, "by", r.ID, "name", old.Name, "was", string(old.ReplacedFrom))
	return old.Name, refID, nil
}

// restoreReplaced undoes a take-over after the update failed for good: the
// earlier reservation is deployed again as it was (its objects were never
// removed) and re-ensured with its own configuration.
func (e *Engine) restoreReplaced(ctx context.Context, rec *Record) error {
	unlock := e.locks.Lock(rec.Replaces)
	defer unlock()
	old, err := e.store.Get(rec.Replaces)
	if err != nil {
		return err
	}
	if old.ReplacedBy != rec.ID() {
		return nil
	}
	old.State = old.ReplacedFrom
	if old.State != StateDeploying {
		old.State = StateDeployed // records from before ReplacedFrom existed
	}
	old.ReplacedBy, old.ReplacedFrom = 0, ""
	old.Updated = e.now().Unix()
	if err := e.put(old); err != nil {
		return err
	}
	e.log.WarnContext(ctx, "update failed, previous reservation kept", "id", old.ID(), "update", rec.ID(), "state", string(old.State))
	e.startDeploy(old.ID(), old.State == StateDeployed, nil)
	return nil
}

// validate checks what a node must check before acting; its errors name the
// offending field and become the failed result's message.
func (e *Engine) validate(ctx context.Context, r *gridtypes.Reservation) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if r.NodeID != e.cfg.NodeID {
		return fmt.Errorf("node_id %q: %w", r.NodeID, ErrWrongNode)
	}
	if _, ok := e.prov[r.Type]; !ok {
		return fmt.Errorf("type %q: %w", r.Type, ErrUnsupported)
	}
	if e.cfg.VerifySignatures {
		if err := e.verify(ctx, r, gridtypes.SignProvision); err != nil {
			return err
		}
	}
	return nil
}

// verify checks the owner's signature and, for the action, the quorum of
// collected signatures.
func (e *Engine) verify(ctx context.Context, r *gridtypes.Reservation, action gridtypes.SignAction) error {
	pk, err := e.users.PublicKey(ctx, r.UserID)
	if err != nil {
		return fmt.Errorf("user %d: %w: %w", r.UserID, ErrTemporary, err)
	}
	if err := r.Verify(pk); err != nil {
		return fmt.Errorf("customer_signature: %w", err)
	}
	req, sigs := r.SigningRequestProvision, r.SignaturesProvision
	if action == gridtypes.SignDelete {
		req, sigs = r.SigningRequestDelete, r.SignaturesDelete
		if len(req.Signers) == 0 { // the owner alone deletes
			req = gridtypes.SigningRequest{Signers: []uint64{r.UserID}, QuorumMin: 1}
		}
	}
	if len(req.Signers) == 0 {
		return nil
	}
	var valid []gridtypes.Signature
	for _, s := range sigs {
		if !req.Lists(s.UserID) {
			continue
		}
		spk, err := e.users.PublicKey(ctx, s.UserID)
		if err != nil {
			return fmt.Errorf("signer %d: %w: %w", s.UserID, ErrTemporary, err)
		}
		if r.VerifyAction(action, s, spk) == nil {
			valid = append(valid, s)
		}
	}
	if !req.Met(valid) {
		return fmt.Errorf("signatures_%s: quorum of %d not met: %w", action, req.QuorumMin, gridtypes.ErrUnsigned)
	}
	return nil
}

// admitLocked refuses r when it does not fit next to the live workloads.
// Called with admitMu held.
func (e *Engine) admitLocked(r *gridtypes.Reservation) error {
	if e.cfg.Total.IsZero() {
		return nil
	}
	need, err := r.Resources()
	if err != nil {
		return err
	}
	used, err := e.Used()
	if err != nil {
		return err
	}
	free := e.cfg.Total.Sub(e.cfg.SystemReserve).Sub(used)
	if !free.Fits(need) {
		return fmt.Errorf("needs %v, free %v: %w", need, free, ErrNoCapacity)
	}
	return nil
}

// failLocked records r as failed with err as the result message and reports
// it. Called with r's lock held.
func (e *Engine) failLocked(ctx context.Context, rec *Record, cause error) error {
	rec.State = StateFailed
	rec.LastError = cause.Error()
	if err := e.setResult(rec, gridtypes.StateError, cause.Error(), nil); err != nil {
		return err
	}
	if err := e.put(rec); err != nil {
		return err
	}
	e.log.WarnContext(ctx, "reservation failed", "id", rec.ID(), "type", string(rec.Reservation.Type), "err", cause)
	e.observe(rec)
	e.startReport(rec.ID())
	return nil
}

func (e *Engine) setResult(rec *Record, state gridtypes.ResultState, msg string, data any) error {
	res, err := gridtypes.NewResult(rec.Reservation, state, msg, data, e.now())
	if err != nil {
		return err
	}
	res.Sign(e.cfg.Key)
	rec.Result = res
	rec.Reported = false
	rec.Updated = e.now().Unix()
	return nil
}

func (e *Engine) requestDelete(ctx context.Context, r *gridtypes.Reservation) error {
	e.cancelInflight(r.ID)
	unlock := e.locks.Lock(r.ID)
	defer unlock()
	rec, err := e.store.Get(r.ID)
	if errors.Is(err, ErrNotFound) && r.Reference != "" {
		if done, err := e.deleteUnseenUpdate(ctx, r); done || err != nil {
			return err
		}
	}
	if errors.Is(err, ErrNotFound) {
		// Never deployed here: leave a tombstone so a late deploy is
		// ignored, and confirm the deletion.
		return e.tombstoneLocked(&Record{Reservation: r, Name: r.GWID()}, "")
	}
	if err != nil {
		return err
	}
	if !rec.State.Live() || rec.State == StateDeleting {
		if rec.Result != nil && !rec.Reported {
			e.startReport(r.ID)
		}
		return nil
	}
	if e.cfg.VerifySignatures {
		del := *rec.Reservation
		del.SignaturesDelete = r.SignaturesDelete
		if err := e.verify(ctx, &del, gridtypes.SignDelete); err != nil {
			if errors.Is(err, ErrTemporary) {
				return err // not acknowledged: redelivered later
			}
			e.log.WarnContext(ctx, "delete refused", "id", r.ID, "err", err)
			return nil
		}
	}
	rec.State = StateDeleting
	rec.Updated = e.now().Unix()
	if err := e.put(rec); err != nil {
		return err
	}
	e.log.InfoContext(ctx, "reservation deleting", "id", r.ID, "name", rec.Name)
	e.startDelete(r.ID)
	return nil
}

// deleteUnseenUpdate handles the deletion of an update whose deployment
// this node has not seen yet (the start-up resync hands over the current
// state of every reservation, so a deleted update arrives as a deletion
// only). In the user's order the update replaced its reference and was
// then deleted: the reference is taken over and its workload removed, as
// if both had arrived. done is false when r cannot take its reference over
// (the caller leaves a tombstone). Called with r's lock held.
func (e *Engine) deleteUnseenUpdate(ctx context.Context, r *gridtypes.Reservation) (done bool, err error) {
	if err := e.validate(ctx, r); err != nil {
		if errors.Is(err, ErrTemporary) {
			return true, err // not acknowledged: redelivered later
		}
		return false, nil
	}
	if e.cfg.VerifySignatures {
		if err := e.verify(ctx, r, gridtypes.SignDelete); err != nil {
			if errors.Is(err, ErrTemporary) {
				return true, err
			}
			e.log.WarnContext(ctx, "delete refused", "id", r.ID, "err", err)
			return false, nil
		}
	}
	name, refID, err := e.takeOver(ctx, r)
	if err != nil {
		return false, nil
	}
	rec := &Record{Reservation: r, Name: name, Replaces: refID, State: StateDeleting, Updated: e.now().Unix()}
	if err := e.put(rec); err != nil {
		return true, err
	}
	e.log.InfoContext(ctx, "reservation deleting", "id", r.ID, "name", name, "replaced", refID)
	e.retireReplaced(ctx, rec)
	e.startDelete(r.ID)
	return true, nil
}

// tombstoneLocked records rec, never deployed here, as deleted with msg and
// reports it, so a late deployment of it is ignored. Called with rec's lock
// held.
func (e *Engine) tombstoneLocked(rec *Record, msg string) error {
	rec.State = StateDeleted
	if err := e.setResult(rec, gridtypes.StateDeleted, msg, nil); err != nil {
		return err
	}
	if err := e.put(rec); err != nil {
		return err
	}
	e.startReport(rec.ID())
	return nil
}

func (e *Engine) observe(rec *Record) {
	if e.cfg.Observe != nil && rec.Received != 0 {
		e.cfg.Observe(rec.Reservation.Type, rec.State, e.now().Sub(time.Unix(0, rec.Received)))
	}
}

// DecommissionCached implements pkg.Provision: it removes the workload whose
// working name or GWID is id, with reason as its (error) result. zos never
// calls it on its own for crashing workloads; it is there for operators.
func (e *Engine) DecommissionCached(id string, reason string) error {
	recs, err := e.store.List()
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if (rec.Name != id && rec.Reservation.GWID() != id) || !rec.State.Live() || rec.ReplacedBy != 0 {
			continue
		}
		return e.removeOwn(context.Background(), rec.ID(), reason, func(cur *Record) bool {
			return cur.State.Live() && cur.State != StateDeleting
		})
	}
	return fmt.Errorf("workload %q: %w", id, ErrNotFound)
}

// reasonExpired is the message of the deleted result of a workload whose
// lifetime ended.
const reasonExpired = "expired"

// expiryLoop removes workloads past their lifetime, at start and every
// ExpiryInterval, until ctx ends.
func (e *Engine) expiryLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.ExpiryInterval)
	defer t.Stop()
	for {
		for _, id := range e.usage.expired(e.now()) {
			if err := e.expire(ctx, id); err != nil {
				e.log.WarnContext(ctx, "expiry", "id", id, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// expire starts the removal of reservation id if it is still live and
// past its lifetime.
func (e *Engine) expire(ctx context.Context, id uint64) error {
	return e.removeOwn(ctx, id, reasonExpired, func(rec *Record) bool {
		at := rec.Reservation.ExpiresAt()
		return (rec.State == StateDeploying || rec.State == StateDeployed) && rec.ReplacedBy == 0 &&
			!at.IsZero() && !e.now().Before(at)
	})
}

// removeOwn starts the removal, on the node's own initiative, of
// reservation id if due says so; reason becomes the message of its deleted
// result.
func (e *Engine) removeOwn(ctx context.Context, id uint64, reason string, due func(*Record) bool) error {
	if rec, err := e.store.Get(id); err != nil || !due(rec) {
		return err
	}
	e.cancelInflight(id) // a deploy or an ensure holds the lock while it works
	unlock := e.locks.Lock(id)
	rec, err := e.store.Get(id)
	if err != nil || !due(rec) {
		unlock()
		return err
	}
	rec.State = StateDeleting
	rec.Reason = reason
	rec.Updated = e.now().Unix()
	err = e.put(rec)
	unlock()
	if err != nil {
		return err
	}
	e.log.InfoContext(ctx, "reservation removed by the node", "id", id, "name", rec.Name, "reason", reason)
	e.startDelete(id)
	return nil
}
