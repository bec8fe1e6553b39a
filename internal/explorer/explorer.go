package explorer

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/zos-go/zos/pkg/explorer"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/hub"
)

// ErrStart is wrapped when the explorer cannot start.
var ErrStart = errors.New("explorer start")

// Explorer is the grid registry: HTTP API for users, NATS API and
// deliveries for nodes, all state in JetStream.
type Explorer struct {
	cfg  Config
	log  *slog.Logger
	hub  http.Handler
	now  func() time.Time
	keys sync.Map // user id → ed25519.PublicKey

	retry    retryQueue
	nodes    nodeCache
	unsigned unsignedSet

	// Set by Run.
	nc     *nats.Conn
	js     jetstream.JetStream
	st     *store
	ledger *ledger
	srv    *server.Server
	ready  chan struct{}
	// guarded by mu
	mu       sync.Mutex
	httpAddr string
	natsURL  string
}

// New returns an explorer. New starts nothing: see Run.
func New(cfg Config, log *slog.Logger) (*Explorer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Explorer{cfg: cfg, log: log, now: time.Now, ready: make(chan struct{})}, nil
}

// SetHub mounts the flist hub under /hub/ (call before Run). The hub finds
// its users' keys with HubKeys.
func (x *Explorer) SetHub(h http.Handler) { x.hub = h }

// HubKeys resolves hub user names to the keys of the explorer's users
// (pkg/hub Keys); it works while Run serves.
func (x *Explorer) HubKeys() HubKeys { return HubKeys{x} }

// HubKeys implements pkg/hub.Keys on the explorer's user registry.
type HubKeys struct{ x *Explorer }

// UserKey returns the public key of the user called name, or an error
// wrapping hub.ErrUnknownUser.
func (k HubKeys) UserKey(ctx context.Context, name string) (ed25519.PublicKey, error) {
	select {
	case <-k.x.ready:
	default:
		return nil, fmt.Errorf("user %q: explorer not serving: %w", name, explorer.ErrUnavailable)
	}
	u, err := k.x.UserByName(ctx, name)
	if errors.Is(err, explorer.ErrNotFound) {
		return nil, fmt.Errorf("user %q: %w", name, hub.ErrUnknownUser)
	}
	if err != nil {
		return nil, err
	}
	return u.Key()
}

// Ready is closed once Run serves HTTP and NATS.
func (x *Explorer) Ready() <-chan struct{} { return x.ready }

// HTTPAddr is the address the HTTP API listens on (after Ready).
func (x *Explorer) HTTPAddr() string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.httpAddr
}

// NATSURL is the client URL of the embedded NATS server, "" otherwise
// (after Ready).
func (x *Explorer) NATSURL() string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.natsURL
}

// Run starts NATS (embedded or connected), the auth callout, the node API
// and the HTTP API, and serves until ctx is done.
func (x *Explorer) Run(ctx context.Context) error {
	userKP, issuerKP, err := x.keyPairs()
	if err != nil {
		return err
	}
	defer x.stopServer()
	if err := x.connect(ctx, userKP, issuerKP); err != nil {
		return err
	}
	defer x.nc.Close()

	auth := &authCallout{issuer: issuerKP, log: x.log}
	authSub, err := x.nc.QueueSubscribe(authCalloutSubject, "explorer-auth", auth.handle)
	if err != nil {
		return fmt.Errorf("auth callout: %w: %w", ErrStart, err)
	}
	defer func() { _ = authSub.Unsubscribe() }()

	// An async delivery whose ack never comes (its server died) times out
	// and is retried, rather than waiting forever.
	if x.js, err = jetstream.New(x.nc, jetstream.WithPublishAsyncTimeout(10*time.Second)); err != nil {
		return fmt.Errorf("jetstream: %w: %w", ErrStart, err)
	}
	if err := x.openStore(ctx); err != nil {
		return err
	}
	x.ledger = newLedger(x.st.capacity)
	if x.cfg.ReconcileOnStart {
		if err := x.reconcile(ctx); err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopNodes, err := x.serveNodes(ctx, &wg)
	if err != nil {
		return err
	}
	defer stopNodes()
	wg.Go(func() { x.retry.run(ctx, x) })
	wg.Go(func() { x.expireLoop(ctx, time.Minute) })

	ln, err := net.Listen("tcp", x.cfg.Listen)
	if err != nil {
		return fmt.Errorf("http listen %s: %w: %w", x.cfg.Listen, ErrStart, err)
	}
	hs := &http.Server{Handler: x.Handler(), ReadHeaderTimeout: 10 * time.Second}
	x.mu.Lock()
	x.httpAddr = ln.Addr().String()
	x.mu.Unlock()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	x.log.InfoContext(ctx, "explorer serving", "http", x.HTTPAddr(), "nats", x.NATSURL())
	close(x.ready)

	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("http: %w", err)
	}
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer scancel()
	_ = hs.Shutdown(sctx)
	return err
}

// keyPairs returns the explorer's NATS user key and the auth callout
// issuer key, generated when not configured (embedded server only).
func (x *Explorer) keyPairs() (user, issuer nkeys.KeyPair, err error) {
	if x.cfg.NATS.UserSeed != "" {
		user, err = nkeys.FromSeed([]byte(x.cfg.NATS.UserSeed))
	} else {
		user, err = nkeys.CreateUser()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("nats user key: %w: %w", ErrStart, err)
	}
	if x.cfg.NATS.IssuerSeed != "" {
		issuer, err = nkeys.FromSeed([]byte(x.cfg.NATS.IssuerSeed))
	} else {
		issuer, err = nkeys.CreateAccount()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("nats issuer key: %w: %w", ErrStart, err)
	}
	return user, issuer, nil
}

func (x *Explorer) connect(ctx context.Context, userKP, issuerKP nkeys.KeyPair) error {
	userPub, _ := userKP.PublicKey()
	opts := []nats.Option{
		nats.Name("zos-explorer"),
		nats.Nkey(userPub, userKP.Sign),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			x.log.Warn("nats async error", "error", err)
		}),
	}
	urls := ""
	if x.cfg.NATS.Embedded() {
		issuerPub, _ := issuerKP.PublicKey()
		o, err := ServerOptions("zos-explorer", x.cfg.NATS.DataDir, x.cfg.NATS.Listen, userPub, issuerPub)
		if err != nil {
			return err
		}
		o.SyncAlways = x.cfg.NATS.SyncAlways
		if x.srv, err = StartServer(ctx, o, x.log); err != nil {
			return fmt.Errorf("%w: %w", ErrStart, err)
		}
		opts = append(opts, nats.InProcessServer(x.srv))
		if !o.DontListen {
			x.mu.Lock()
			x.natsURL = x.srv.ClientURL()
			x.mu.Unlock()
		}
	} else {
		for i, u := range x.cfg.NATS.URLs {
			if i > 0 {
				urls += ","
			}
			urls += u
		}
	}
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		return fmt.Errorf("nats connect: %w: %w", ErrStart, err)
	}
	x.nc = nc
	return nil
}

// openStore creates the buckets and stream, waiting for a cluster that is
// still electing its leaders.
func (x *Explorer) openStore(ctx context.Context) error {
	var err error
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		x.st, err = openStore(actx, x.js, x.cfg.NATS.Replicas)
		cancel()
		if err == nil || attempt == 30 || ctx.Err() != nil {
			break
		}
		x.log.InfoContext(ctx, "waiting for jetstream", "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStart, err)
	}
	return nil
}

func (x *Explorer) stopServer() {
	if x.srv != nil {
		x.srv.Shutdown()
		x.srv.WaitForShutdown()
	}
}

// keyedMutex serialises work per key (per node): local goroutines then do
// not race each other's compare-and-set on the same record.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry // guarded by mu
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}

// stillToDeliver returns the current state of a reservation whose
// delivery failed, and whether it must still be delivered: a deploy that
// became a delete is delivered as the delete (never a stale deploy after
// its delete), one the node already answered is not delivered again.
func (x *Explorer) stillToDeliver(ctx context.Context, r *gridtypes.Reservation) (*gridtypes.Reservation, bool) {
	rec, _, err := getJSON[record](ctx, x.st.res, resKey(r.NodeID, r.ID))
	if err != nil {
		return r, !errors.Is(err, explorer.ErrNotFound)
	}
	cur := rec.Reservation
	switch {
	case cur.NextAction == gridtypes.ActionDeploy:
		return cur, cur.Result == nil
	case cur.NextAction == gridtypes.ActionDelete:
		return cur, cur.Result == nil || cur.Result.State != gridtypes.StateDeleted
	}
	return cur, false
}

// retryQueue re-publishes deliveries whose publish failed.
type retryQueue struct {
	mu      sync.Mutex
	pending []*gridtypes.Reservation // guarded by mu
}

func (q *retryQueue) add(r *gridtypes.Reservation) {
	q.mu.Lock()
	q.pending = append(q.pending, r)
	q.mu.Unlock()
}

func (q *retryQueue) run(ctx context.Context, x *Explorer) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		q.mu.Lock()
		todo := q.pending
		q.pending = nil
		q.mu.Unlock()
		for i, r := range todo {
			cur, ok := x.stillToDeliver(ctx, r)
			if !ok {
				continue
			}
			if err := x.publish(ctx, cur); err != nil {
				x.log.WarnContext(ctx, "delivery retry failed", "id", r.ID, "error", err)
				q.mu.Lock()
				q.pending = append(q.pending, todo[i:]...)
				q.mu.Unlock()
				break
			}
		}
	}
}
