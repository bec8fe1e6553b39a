package provision

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/identity"
)

// fakeProv records calls; script decides each Provision outcome.
type fakeProv struct {
	mu        sync.Mutex
	live      map[string]bool // what "runs" on the node, by working name
	calls     map[string]int
	decom     map[string]int
	script    func(d *Deployment, call int) error
	delay     time.Duration
	maxActive int
	active    int
}

func newFakeProv() *fakeProv {
	return &fakeProv{live: map[string]bool{}, calls: map[string]int{}, decom: map[string]int{}}
}

func (f *fakeProv) Provision(ctx context.Context, d *Deployment) (any, error) {
	f.mu.Lock()
	f.calls[d.Name]++
	call := f.calls[d.Name]
	f.active++
	f.maxActive = max(f.maxActive, f.active)
	script := f.script
	f.mu.Unlock()
	defer func() { f.mu.Lock(); f.active--; f.mu.Unlock() }()
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if script != nil {
		if err := script(d, call); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	f.live[d.Name] = true
	f.mu.Unlock()
	return gridtypes.VolumeResult{VolumeID: d.Name}, nil
}

func (f *fakeProv) Decommission(_ context.Context, d *Deployment) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.decom[d.Name]++
	delete(f.live, d.Name)
	return nil
}

func (f *fakeProv) isLive(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.live[name]
}

type fakeReporter struct {
	mu      sync.Mutex
	results map[uint64][]*gridtypes.Result
	fail    int // fail this many calls first
}

func (r *fakeReporter) Report(_ context.Context, res *gridtypes.Result) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 {
		r.fail--
		return errors.New("explorer unreachable")
	}
	if r.results == nil {
		r.results = map[uint64][]*gridtypes.Result{}
	}
	r.results[res.ReservationID] = append(r.results[res.ReservationID], res)
	return nil
}

func (r *fakeReporter) last(id uint64) *gridtypes.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	rs := r.results[id]
	if len(rs) == 0 {
		return nil
	}
	return rs[len(rs)-1]
}

type users map[uint64]ed25519.PublicKey

func (u users) PublicKey(_ context.Context, id uint64) (ed25519.PublicKey, error) {
	if pk, ok := u[id]; ok {
		return pk, nil
	}
	return nil, fmt.Errorf("user %d unknown", id)
}

type harness struct {
	t        *testing.T
	node     identity.KeyPair
	user     ed25519.PrivateKey
	store    Store
	prov     *fakeProv
	reporter *fakeReporter
	engine   *Engine
	in       chan Delivery
	cancel   context.CancelFunc
	done     chan error
	nextID   uint64
}

type chanSource chan Delivery

func (c chanSource) Run(ctx context.Context, out chan<- Delivery) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case d := <-c:
			select {
			case out <- d:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

func newHarness(t *testing.T, store Store, mutate func(*Config)) *harness {
	t.Helper()
	seed, err := identity.GenerateSeed()
	if err != nil {
		t.Fatal(err)
	}
	node := identity.NewKeyPair(seed)
	_, user, _ := ed25519.GenerateKey(nil)
	h := &harness{t: t, node: node, user: user, store: store, prov: newFakeProv(), reporter: &fakeReporter{}, nextID: 100}
	cfg := DefaultConfig()
	cfg.NodeID = node.ID()
	cfg.Key = ed25519.PrivateKey(node.PrivateKey())
	if mutate != nil {
		mutate(&cfg)
	}
	idm, err := identity.New(identity.DefaultConfig(), node, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	us := users{7: user.Public().(ed25519.PublicKey)}
	prov := map[gridtypes.WorkloadType]Provisioner{}
	for _, t := range gridtypes.WorkloadTypes() {
		prov[t] = h.prov
	}
	h.engine, err = New(cfg, store, prov, us, NodeSecrets{Identity: idm, Users: us}, h.reporter, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.in = make(chan Delivery)
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.engine.Run(ctx, chanSource(h.in)) }()
}

func (h *harness) stop() {
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Fatalf("engine run: %v", err)
	}
}

func (h *harness) volume(size uint64) *gridtypes.Reservation {
	h.t.Helper()
	r, err := gridtypes.NewReservation(h.node.ID(), 7, &gridtypes.Volume{Size: size, Type: gridtypes.DiskSSD}, time.Now(), time.Minute)
	if err != nil {
		h.t.Fatal(err)
	}
	h.nextID++
	r.ID = h.nextID
	r.NextAction = gridtypes.ActionDeploy
	if err := r.Sign(h.user); err != nil {
		h.t.Fatal(err)
	}
	return r
}

// updateOf is a signed update of old to a volume of size GiB.
func (h *harness) updateOf(old *gridtypes.Reservation, size uint64) *gridtypes.Reservation {
	h.t.Helper()
	upd := h.volume(size)
	upd.Reference = old.GWID()
	if err := upd.Sign(h.user); err != nil {
		h.t.Fatal(err)
	}
	return upd
}

func (h *harness) deliver(r *gridtypes.Reservation) {
	acked := make(chan struct{})
	h.in <- Delivery{Reservation: r, Ack: func() { close(acked) }}
	<-acked
}

func (h *harness) deleteOf(r *gridtypes.Reservation) *gridtypes.Reservation {
	h.t.Helper()
	d := *r
	d.NextAction = gridtypes.ActionDelete
	s, err := d.SignAction(gridtypes.SignDelete, 7, h.user, time.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	d.SignaturesDelete = []Signature{s}
	return &d
}

// Signature is re-exported for brevity in tests.
type Signature = gridtypes.Signature

func (h *harness) record(id uint64) *Record {
	h.t.Helper()
	r, err := h.store.Get(id)
	if err != nil {
		h.t.Fatalf("record %d: %v", id, err)
	}
	return r
}

func TestDeployReportsSignedOK(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, NewMemStore(), nil)
		h.start()
		defer h.stop()
		r := h.volume(1)
		h.deliver(r)
		synctest.Wait()
		res := h.reporter.last(r.ID)
		if res == nil || res.State != gridtypes.StateOK {
			t.Fatalf("result %+v, want ok", res)
		}
		if err := res.Verify(); err != nil {
			t.Fatalf("result signature: %v", err)
		}
		if !strings.Contains(string(res.Data), r.GWID()) {
			t.Errorf("result data %s lacks volume id %s", res.Data, r.GWID())
		}
		if rec := h.record(r.ID); rec.State != StateDeployed || !rec.Reported {
			t.Errorf("record %s reported=%v", rec.State, rec.Reported)
		}
		// Redelivery is idempotent.
		h.deliver(r)
		synctest.Wait()
		if n := h.prov.calls[r.GWID()]; n != 1 {
			t.Errorf("provisioned %d times, want 1", n)
		}
	})
}

func TestInvalidReservationsFailNamingTheField(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, NewMemStore(), nil)
		h.start()
		defer h.stop()

		wrongNode := h.volume(1)
		wrongNode.NodeID = "3vUBs8R1Ybgyb1uTc3Zp3G6H7XxVgG2FSsWgqmqAHztk"
		_ = wrongNode.Sign(h.user)

		badSig := h.volume(1)
		badSig.CustomerSignature = strings.Repeat("ab", 64)

		zero := h.volume(0)

		for _, tc := range []struct {
			r    *gridtypes.Reservation
			want string
		}{
			{wrongNode, "node_id"},
			{badSig, "customer_signature"},
			{zero, "size"},
		} {
			h.deliver(tc.r)
			synctest.Wait()
			res := h.reporter.last(tc.r.ID)
			if res == nil || res.State != gridtypes.StateError || !strings.Contains(res.Message, tc.want) {
				t.Errorf("reservation %d: result %+v, want error naming %q", tc.r.ID, res, tc.want)
			}
			if h.prov.calls[tc.r.GWID()] != 0 {
				t.Errorf("reservation %d provisioned despite being invalid", tc.r.ID)
			}
		}
	})
}

func TestDependencyIsRetriedNotFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, NewMemStore(), nil)
		h.prov.script = func(d *Deployment, call int) error {
			if call < 4 {
				return fmt.Errorf("network n1: %w", ErrDependency)
			}
			return nil
		}
		h.start()
		defer h.stop()
		r := h.volume(1)
		h.deliver(r)
		synctest.Wait()
		if rec := h.record(r.ID); rec.State != StateDeploying || rec.Retries != 1 || !strings.Contains(rec.LastError, "network n1") {
			t.Fatalf("while waiting: %+v", rec)
		}
		time.Sleep(1*time.Second + 2*time.Second + 4*time.Second) // backoff 1s, 2s, 4s
		synctest.Wait()
		if rec := h.record(r.ID); rec.State != StateDeployed || rec.LastError != "" {
			t.Fatalf("after the dependency appeared: %s %q", rec.State, rec.LastError)
		}
	})
}

func TestPermanentFailureCleansUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, NewMemStore(), nil)
		h.prov.script = func(*Deployment, int) error { return errors.New("flist not found on hub") }
		h.start()
		defer h.stop()
		r := h.volume(1)
		h.deliver(r)
		synctest.Wait()
		if res := h.reporter.last(r.ID); res == nil || res.State != gridtypes.StateError || res.Message != "flist not found on hub" {
			t.Fatalf("result %+v", res)
		}
		if h.prov.decom[r.GWID()] != 1 {
			t.Errorf("no cleanup after a permanent failure")
		}
	})
}

func TestDeleteRemovesAndTombstones(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, NewMemStore(), nil)
		h.start()
		defer h.stop()
		r := h.volume(1)
		h.deliver(r)
		synctest.Wait()
		h.deliver(h.deleteOf(r))
		synctest.Wait()
		if h.prov.isLive(r.GWID()) {
			t.Fatal("still running after delete")
		}
		if res := h.reporter.last(r.ID); res == nil || res.State != gridtypes.StateDeleted {
			t.Fatalf("result %+v, want deleted", res)
		}
		h.deliver(r) // a late redelivery of the deploy
		synctest.Wait()
		if h.prov.isLive(r.GWID()) || h.prov.calls[r.GWID()] != 1 {
			t.Fatal("a deleted reservation was deployed again")
		}
	})
}

func TestDeleteWithoutOwnerSignatureIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, NewMemStore(), nil)
		h.start()
		defer h.stop()
		r := h.volume(1)
		h.deliver(r)
		synctest.Wait()
		del := *r
		del.NextAction = gridtypes.ActionDelete
		h.deliver(&del)
		synctest.Wait()
		if !h.prov.isLive(r.GWID()) || h.record(r.ID).State != StateDeployed {
			t.Fatal("unsigned delete removed the workload")
		}
	})
}

func TestDeleteWhileWaitingForDependency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, NewMemStore(), nil)
		h.prov.script = func(*Deployment, int) error { return ErrDependency }
		h.start()
		defer h.stop()
		r := h.volume(1)
		h.deliver(r)
		synctest.Wait()
		h.deliver(h.deleteOf(r))
		synctest.Wait()
		if rec := h.record(r.ID); rec.State != StateDeleted {
			t.Fatalf("state %s, want deleted", rec.State)
		}
	})
}

func TestIndependentReservationsRunConcurrently(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, NewMemStore(), func(c *Config) { c.Workers = 8 })
		h.prov.delay = 100 * time.Millisecond
		h.start()
		defer h.stop()
		start := time.Now()
		var rs []*gridtypes.Reservation
		for range 16 {
			r := h.volume(1)
			rs = append(rs, r)
			h.deliver(r)
		}
		time.Sleep(150*time.Millisecond - time.Since(start))
		synctest.Wait()
		deployed := 0
		for _, r := range rs {
			if h.record(r.ID).State == StateDeployed {
				deployed++
			}
		}
		if deployed != 8 {
			t.Errorf("after 150ms %d deployed, want the first 8", deployed)
		}
		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		if h.prov.maxActive != 8 {
			t.Errorf("max concurrent provisions %d, want 8", h.prov.maxActive)
		}
		for _, r := range rs {
			if h.record(r.ID).State != StateDeployed {
				t.Fatalf("%d not deployed", r.ID)
			}
		}
	})
}

func TestRecoveryAfterRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := NewMemStore()
		h := newHarness(t, store, nil)
		deployed, deploying, deleting := h.volume(1), h.volume(1), h.volume(1)
		h.start()
		h.deliver(deployed)
		h.deliver(deleting)
		synctest.Wait()
		h.stop()
		// Simulate a crash after the intents were written.
		if err := store.Put(&Record{Reservation: deploying, Name: deploying.GWID(), State: StateDeploying}); err != nil {
			t.Fatal(err)
		}
		rec := h.record(deleting.ID)
		rec.State = StateDeleting
		_ = store.Put(rec)
		h.prov.live = map[string]bool{} // power cut: nothing runs

		h.start()
		defer h.stop()
		synctest.Wait()
		if !h.prov.isLive(deployed.GWID()) || !h.prov.isLive(deploying.GWID()) {
			t.Fatalf("not brought back: %v", h.prov.live)
		}
		if h.record(deleting.ID).State != StateDeleted || h.prov.isLive(deleting.GWID()) {
			t.Fatal("interrupted delete not finished")
		}
		if got := h.reporter.results[deployed.ID]; len(got) != 1 {
			t.Errorf("deployed result reported %d times, want once (restoring is silent)", len(got))
		}
	})
}

func TestAdmissionAndUsedCapacity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, NewMemStore(), func(c *Config) {
			c.Total = gridtypes.Capacity{CRU: 4, MRU: 8 * gridtypes.GiB, SRU: 10 * gridtypes.GiB}
			c.SystemReserve = gridtypes.Capacity{MRU: 2 * gridtypes.GiB, SRU: 1 * gridtypes.GiB}
		})
		h.start()
		defer h.stop()
		a, b, c := h.volume(5), h.volume(4), h.volume(1)
		for _, r := range []*gridtypes.Reservation{a, b, c} {
			h.deliver(r)
		}
		synctest.Wait()
		if h.record(a.ID).State != StateDeployed || h.record(b.ID).State != StateDeployed {
			t.Fatal("volumes within capacity not deployed")
		}
		if res := h.reporter.last(c.ID); res == nil || !strings.Contains(res.Message, "not enough capacity") {
			t.Fatalf("over-capacity result %+v", res)
		}
		used, err := h.engine.Used()
		if err != nil || used.SRU != 9*gridtypes.GiB {
			t.Fatalf("used %v %v, want 9GiB SRU", used, err)
		}
		h.deliver(h.deleteOf(a))
		synctest.Wait()
		if used, _ := h.engine.Used(); used.SRU != 4*gridtypes.GiB {
			t.Fatalf("used after delete %v, want 4GiB SRU", used)
		}
	})
}

func TestUpdateKeepsTheWorkingName(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, NewMemStore(), nil)
		h.start()
		defer h.stop()
		old := h.volume(1)
		h.deliver(old)
		synctest.Wait()
		upd := h.updateOf(old, 2)
		h.deliver(upd)
		synctest.Wait()
		rec := h.record(upd.ID)
		if rec.State != StateDeployed || rec.Name != old.GWID() {
			t.Fatalf("update record %s name %s, want deployed as %s", rec.State, rec.Name, old.GWID())
		}
		if o := h.record(old.ID); o.ReplacedBy != upd.ID || o.State.Live() {
			t.Fatalf("old record %+v not superseded", o)
		}
		if h.prov.calls[old.GWID()] != 2 || h.prov.decom[old.GWID()] != 0 {
			t.Fatalf("update calls %d decommissions %d", h.prov.calls[old.GWID()], h.prov.decom[old.GWID()])
		}
		if res := h.reporter.last(old.ID); res == nil || res.State != gridtypes.StateDeleted || !strings.Contains(res.Message, "replaced by") {
			t.Fatalf("replaced reservation's result %+v, want deleted (replaced)", res)
		}
	})
}

// TestUpdateOfAReservationStillDeploying: an update that arrives while the
// reservation it replaces still waits for a dependency takes it over at
// once, in delivery order; deleting the update then leaves nothing behind.
func TestUpdateOfAReservationStillDeploying(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, NewMemStore(), nil)
		old := h.volume(1)
		h.prov.script = func(d *Deployment, call int) error {
			if d.Reservation.ID == old.ID {
				return fmt.Errorf("pool not mounted yet: %w", ErrDependency)
			}
			return nil
		}
		h.start()
		defer h.stop()
		h.deliver(old)
		synctest.Wait()
		upd := h.updateOf(old, 2)
		h.deliver(upd)
		time.Sleep(time.Minute)
		synctest.Wait()
		rec := h.record(upd.ID)
		if rec.State != StateDeployed || rec.Name != old.GWID() {
			t.Fatalf("update %s as %q (%s), want deployed as %s", rec.State, rec.Name, rec.LastError, old.GWID())
		}
		o := h.record(old.ID)
		if o.ReplacedBy != upd.ID || o.State != StateDeleted || o.ReplacedFrom != StateDeploying {
			t.Fatalf("old record %s replaced by %d from %q, want deleted, replaced by %d from deploying", o.State, o.ReplacedBy, o.ReplacedFrom, upd.ID)
		}
		if res := h.reporter.last(old.ID); res == nil || res.State != gridtypes.StateDeleted {
			t.Fatalf("replaced reservation's last result %+v, want deleted (replaced)", res)
		}
		h.deliver(h.deleteOf(upd))
		synctest.Wait()
		if h.prov.isLive(old.GWID()) {
			t.Fatal("deleting the update left the workload running")
		}
		if st := h.record(old.ID).State; st != StateDeleted {
			t.Fatalf("replaced reservation came back as %s", st)
		}
	})
}

// TestFailedUpdateRestoresADeployingReservation: the update of a
// reservation still deploying fails for good; the earlier one goes on
// deploying and ends deployed.
func TestFailedUpdateRestoresADeployingReservation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, NewMemStore(), nil)
		old := h.volume(1)
		var ready atomic.Bool
		h.prov.script = func(d *Deployment, call int) error {
			switch {
			case d.Reservation.ID != old.ID:
				return errors.New("bad size")
			case !ready.Load():
				return fmt.Errorf("pool not mounted yet: %w", ErrDependency)
			}
			return nil
		}
		h.start()
		defer h.stop()
		h.deliver(old)
		synctest.Wait()
		upd := h.updateOf(old, 2)
		h.deliver(upd)
		synctest.Wait()
		if res := h.reporter.last(upd.ID); res == nil || res.State != gridtypes.StateError {
			t.Fatalf("update's result %+v, want error", res)
		}
		if o := h.record(old.ID); o.State != StateDeploying || o.ReplacedBy != 0 {
			t.Fatalf("earlier reservation %s replaced by %d, want deploying again", o.State, o.ReplacedBy)
		}
		ready.Store(true)
		time.Sleep(time.Minute)
		synctest.Wait()
		if o := h.record(old.ID); o.State != StateDeployed || !h.prov.isLive(old.GWID()) {
			t.Fatalf("earlier reservation %s (live %v), want deployed", o.State, h.prov.isLive(old.GWID()))
		}
	})
}

// TestDeletedUpdateSeenOnlyAsDeletion: the node learns of an update only
// through its deletion (the resync after a restart hands the current
// state). The update still replaced its reference, so the workload is gone,
// the reference reported replaced, and the late deployment is ignored.
func TestDeletedUpdateSeenOnlyAsDeletion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, NewMemStore(), nil)
		h.start()
		defer h.stop()
		old := h.volume(1)
		h.deliver(old)
		synctest.Wait()
		upd := h.updateOf(old, 2)
		h.deliver(h.deleteOf(upd))
		synctest.Wait()
		if h.prov.isLive(old.GWID()) {
			t.Fatal("workload still runs after its update was deleted")
		}
		if res := h.reporter.last(old.ID); res == nil || res.State != gridtypes.StateDeleted {
			t.Fatalf("reference's last result %+v, want deleted (replaced)", res)
		}
		if res := h.reporter.last(upd.ID); res == nil || res.State != gridtypes.StateDeleted {
			t.Fatalf("update's last result %+v, want deleted", res)
		}
		h.deliver(upd) // the stale deployment
		synctest.Wait()
		if h.prov.isLive(old.GWID()) || h.record(upd.ID).State != StateDeleted {
			t.Fatal("late deployment of a deleted update acted")
		}
	})
}

// TestUpdateInterruptedAfterTakeOver: the agent dies between marking the
// referenced reservation replaced and writing the update's record. The
// redelivered update still deploys under the old name, and nothing is
// decommissioned.
func TestUpdateInterruptedAfterTakeOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := NewMemStore()
		h := newHarness(t, store, nil)
		h.start()
		old := h.volume(1)
		h.deliver(old)
		synctest.Wait()
		h.stop()
		upd := h.updateOf(old, 2)
		// The crash: the take-over is durable, the update's record is not.
		rec := h.record(old.ID)
		rec.State, rec.ReplacedBy = StateDeleted, upd.ID
		if err := store.Put(rec); err != nil {
			t.Fatal(err)
		}

		h.start()
		defer h.stop()
		h.deliver(upd)
		synctest.Wait()
		got := h.record(upd.ID)
		if got.State != StateDeployed || got.Name != old.GWID() {
			t.Fatalf("redelivered update %s as %q (%s), want deployed as %s", got.State, got.Name, got.LastError, old.GWID())
		}
		if !h.prov.isLive(old.GWID()) || h.prov.decom[old.GWID()] != 0 {
			t.Fatalf("volume live %v, decommissioned %d times", h.prov.isLive(old.GWID()), h.prov.decom[old.GWID()])
		}
		if res := h.reporter.last(old.ID); res == nil || res.State != gridtypes.StateDeleted {
			t.Fatalf("replaced reservation's result %+v, want deleted (replaced)", res)
		}
	})
}

func TestReportRetriedUntilAccepted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, NewMemStore(), nil)
		h.reporter.fail = 3
		h.start()
		defer h.stop()
		r := h.volume(1)
		h.deliver(r)
		synctest.Wait()
		if h.record(r.ID).Reported {
			t.Fatal("reported while the explorer is down")
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if !h.record(r.ID).Reported || h.reporter.last(r.ID) == nil {
			t.Fatal("result never delivered")
		}
	})
}

func TestCountersAndDecommissionCached(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, NewMemStore(), nil)
		h.start()
		defer h.stop()
		r1, r2 := h.volume(1), h.volume(1)
		h.deliver(r1)
		h.deliver(r2)
		synctest.Wait()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch := h.engine.Counters(ctx)
		if c := <-ch; c.Volume != 2 {
			t.Fatalf("counters %+v, want 2 volumes", c)
		}
		if err := h.engine.DecommissionCached(r1.GWID(), "disk broken"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if c := <-ch; c.Volume != 1 {
			t.Fatalf("counters %+v, want 1 volume", c)
		}
		if res := h.reporter.last(r1.ID); res.State != gridtypes.StateDeleted || res.Message != "disk broken" {
			t.Fatalf("result %+v", res)
		}
		if err := h.engine.DecommissionCached("999-1", "x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown id: %v", err)
		}
	})
}

func TestFailedUpdateKeepsThePrevious(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, NewMemStore(), nil)
		h.start()
		defer h.stop()
		old := h.volume(2)
		h.deliver(old)
		synctest.Wait()
		h.prov.script = func(d *Deployment, call int) error {
			if d.Reservation.ID != old.ID {
				return errors.New("cannot shrink a volume")
			}
			return nil
		}
		upd := h.updateOf(old, 1)
		h.deliver(upd)
		synctest.Wait()
		if res := h.reporter.last(upd.ID); res == nil || res.State != gridtypes.StateError {
			t.Fatalf("update result %+v, want error", res)
		}
		if h.prov.decom[old.GWID()] != 0 || !h.prov.isLive(old.GWID()) {
			t.Fatal("a failed update removed the running workload")
		}
		if o := h.record(old.ID); o.State != StateDeployed || o.ReplacedBy != 0 {
			t.Fatalf("previous record %s replaced_by %d, want deployed again", o.State, o.ReplacedBy)
		}
		if h.prov.calls[old.GWID()] != 3 { // deploy, failed update, re-ensure of the previous
			t.Fatalf("provision calls %d, want 3", h.prov.calls[old.GWID()])
		}
	})
}

// TestCapacityTruthUnderRandomOperations: after every operation of a random
// sequence (deploys, failures, updates, deletes), the usage the node reports
// equals a recomputation from the store.
func TestCapacityTruthUnderRandomOperations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, NewMemStore(), func(c *Config) {
			c.Total = gridtypes.Capacity{CRU: 8, MRU: 64 * gridtypes.GiB, SRU: 40 * gridtypes.GiB, IPV4U: 10}
		})
		h.prov.script = func(d *Deployment, call int) error {
			if d.Reservation.ID%5 == 0 {
				return errors.New("unlucky")
			}
			return nil
		}
		h.start()
		defer h.stop()
		var live []*gridtypes.Reservation
		rnd := uint64(12345)
		next := func(n int) int { rnd = rnd*6364136223846793005 + 1442695040888963407; return int(rnd>>33) % n }
		for step := range 120 {
			switch op := next(3); {
			case op == 0 || len(live) == 0:
				r := h.volume(uint64(1 + next(4)))
				h.deliver(r)
				live = append(live, r)
			case op == 1:
				i := next(len(live))
				h.deliver(h.deleteOf(live[i]))
				live = append(live[:i], live[i+1:]...)
			default:
				i := next(len(live))
				upd := h.volume(uint64(1 + next(4)))
				upd.Reference = live[i].GWID()
				_ = upd.Sign(h.user)
				h.deliver(upd)
				live[i] = upd
			}
			synctest.Wait()
			got, _ := h.engine.Used()
			want, err := h.engine.RecomputeUsed()
			if err != nil || got != want {
				t.Fatalf("step %d: reported %v, store says %v (%v)", step, got, want, err)
			}
		}
	})
}

// TestEveryInvalidFieldFailsNamingIt delivers, for each workload type, a
// reservation with one invalid field at a time: each gets a failed result
// whose message names the field, and nothing is provisioned.
func TestEveryInvalidFieldFailsNamingIt(t *testing.T) {
	net := func() *gridtypes.Network {
		return &gridtypes.Network{Name: "n", NetworkIPRange: "10.1.0.0/16", IPRange: "10.1.2.0/24",
			WireguardPrivateKeyEncrypted: "aa", WireguardPublicKey: "t9KLCpXXiDw4logXLrtpPvgA+jCr0PNR1VlpnBr6djQ=", WireguardListenPort: 1}
	}
	ct := func() *gridtypes.Container {
		return &gridtypes.Container{Flist: "https://hub/x.fl", Entrypoint: "/bin/sh",
			NetworkConnection: []gridtypes.NetworkConnection{{NetworkID: "n", IPAddress: "10.1.2.5"}},
			Capacity:          gridtypes.ContainerCapacity{CPU: 1, Memory: 128}}
	}
	cases := []struct {
		field string
		w     gridtypes.Workload
	}{
		{"size", &gridtypes.Volume{Size: 0, Type: gridtypes.DiskSSD}},
		{"type", &gridtypes.Volume{Size: 1, Type: "tape"}},
		{"mode", &gridtypes.ZDB{Size: 1, Mode: "ring", DiskType: gridtypes.DiskHDD}},
		{"disk_type", &gridtypes.ZDB{Size: 1, Mode: gridtypes.ZDBModeUser, DiskType: "nvme"}},
		{"size", &gridtypes.ZDB{Size: 0, Mode: gridtypes.ZDBModeUser, DiskType: gridtypes.DiskHDD}},
		{"network_iprange", func() gridtypes.Workload { n := net(); n.NetworkIPRange = "10.1.0.0/8"; return n }()},
		{"iprange", func() gridtypes.Workload { n := net(); n.IPRange = "10.9.2.0/24"; return n }()},
		{"wireguard_public_key", func() gridtypes.Workload { n := net(); n.WireguardPublicKey = "nope"; return n }()},
		{"wireguard_listen_port", func() gridtypes.Workload { n := net(); n.WireguardListenPort = 0; return n }()},
		{"flist", func() gridtypes.Workload { c := ct(); c.Flist = ""; return c }()},
		{"ipaddress", func() gridtypes.Workload { c := ct(); c.NetworkConnection[0].IPAddress = "300.1.1.1"; return c }()},
		{"memory", func() gridtypes.Workload { c := ct(); c.Capacity.Memory = 1; return c }()},
		{"cpu", func() gridtypes.Workload { c := ct(); c.Capacity.CPU = 0; return c }()},
		{"ipaddress", &gridtypes.PublicIP{IPAddress: "not-an-ip"}},
		{"port", &gridtypes.Debug{Host: "10.0.0.1", Port: 0}},
		{"size", &gridtypes.Kubernetes{Size: 99, ClusterSecret: "aa", NetworkID: "n", IPAddress: "10.1.2.6"}},
	}
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, NewMemStore(), nil)
		h.start()
		defer h.stop()
		for i, tc := range cases {
			r, err := gridtypes.NewReservation(h.node.ID(), 7, tc.w, time.Now(), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			r.ID = uint64(500 + i)
			r.NextAction = gridtypes.ActionDeploy
			_ = r.Sign(h.user)
			h.deliver(r)
			synctest.Wait()
			res := h.reporter.last(r.ID)
			if res == nil || res.State != gridtypes.StateError || !strings.Contains(res.Message, tc.field) {
				t.Errorf("%s with bad %s: result %+v", tc.w.WorkloadType(), tc.field, res)
			}
		}
		// The reservation's own fields, each invalid in turn on a valid volume.
		other, _ := identity.GenerateSeed()
		for i, tc := range []struct {
			field  string
			mutate func(r *gridtypes.Reservation)
		}{
			{"node_id", func(r *gridtypes.Reservation) { r.NodeID = identity.NewKeyPair(other).ID() }},
			{"created", func(r *gridtypes.Reservation) { r.Created = 0 }},
			{"expires", func(r *gridtypes.Reservation) { r.Expires = r.Created }},
			{"lifetime", func(r *gridtypes.Reservation) { r.Lifetime = -5 }},
			{"reference", func(r *gridtypes.Reservation) { r.Reference = "not-a-reservation" }},
			{"description", func(r *gridtypes.Reservation) { r.Description = strings.Repeat("x", gridtypes.MaxMetadataLen+1) }},
			{"signing_request_provision", func(r *gridtypes.Reservation) {
				r.SigningRequestProvision = gridtypes.SigningRequest{Signers: []uint64{9, 9}, QuorumMin: 1}
			}},
			{"customer_signature", func(r *gridtypes.Reservation) { r.Metadata = "changed after signing" }},
		} {
			r, err := gridtypes.NewReservation(h.node.ID(), 7, &gridtypes.Volume{Size: 1, Type: gridtypes.DiskSSD}, time.Now(), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			r.ID = uint64(700 + i)
			r.NextAction = gridtypes.ActionDeploy
			if tc.field == "customer_signature" {
				_ = r.Sign(h.user)
				tc.mutate(r)
			} else {
				tc.mutate(r)
				_ = r.Sign(h.user)
			}
			h.deliver(r)
			synctest.Wait()
			res := h.reporter.last(r.ID)
			if res == nil || res.State != gridtypes.StateError || !strings.Contains(res.Message, tc.field) {
				t.Errorf("reservation with bad %s: result %+v", tc.field, res)
			}
		}
		if len(h.prov.calls) != 0 {
			t.Fatalf("invalid reservations provisioned: %v", h.prov.calls)
		}
	})
}

// TestLifetimeEndsTheWorkload: a workload with a lifetime is removed when
// it ends (deleted result "expired", capacity freed); one that arrives
// after its lifetime is never deployed; one that ends while the engine is
// stopped is removed at the next start.
func TestLifetimeEndsTheWorkload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := NewMemStore()
		h := newHarness(t, store, nil)
		withLifetime := func(size uint64, lifetime time.Duration) *gridtypes.Reservation {
			r := h.volume(size)
			r.Lifetime = int64(lifetime / time.Second)
			if err := r.Sign(h.user); err != nil {
				t.Fatal(err)
			}
			return r
		}
		short, long, forever := withLifetime(1, time.Minute), withLifetime(2, time.Hour), h.volume(3)
		h.start()
		for _, r := range []*gridtypes.Reservation{short, long, forever} {
			h.deliver(r)
		}
		synctest.Wait()
		time.Sleep(59 * time.Second)
		synctest.Wait()
		if !h.prov.isLive(short.GWID()) {
			t.Fatal("removed before its lifetime ended")
		}
		time.Sleep(30 * time.Second) // past the end, and one expiry interval
		synctest.Wait()
		if h.prov.isLive(short.GWID()) || h.record(short.ID).State != StateDeleted {
			t.Fatalf("still %s after its lifetime", h.record(short.ID).State)
		}
		if res := h.reporter.last(short.ID); res == nil || res.State != gridtypes.StateDeleted || res.Message != "expired" {
			t.Fatalf("result %+v, want deleted, expired", res)
		}
		if used, _ := h.engine.Used(); used.SRU != 5*gridtypes.GiB {
			t.Fatalf("used %v, want the 5 GiB of the two others", used)
		}
		// Arriving after its lifetime: nothing deployed.
		late := withLifetime(1, time.Minute)
		late.Created -= 120
		late.Expires = late.Created + 3600
		_ = late.Sign(h.user)
		h.deliver(late)
		synctest.Wait()
		if h.prov.isLive(late.GWID()) || h.prov.calls[late.GWID()] != 0 {
			t.Fatal("a reservation past its lifetime was deployed")
		}
		if res := h.reporter.last(late.ID); res == nil || res.State != gridtypes.StateDeleted || res.Message != "expired" {
			t.Fatalf("late result %+v, want deleted, expired", res)
		}
		// Ending while the engine is stopped.
		h.stop()
		time.Sleep(2 * time.Hour)
		h.start()
		defer h.stop()
		synctest.Wait()
		if h.prov.isLive(long.GWID()) || h.record(long.ID).State != StateDeleted {
			t.Fatal("lifetime that ended while stopped not enforced at start")
		}
		if !h.prov.isLive(forever.GWID()) {
			t.Fatal("workload without a lifetime removed")
		}
	})
}
