package explorer

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/zos-go/zos/pkg/gridtypes"
)

// NodeClient is the explorer client of a node: it registers the node,
// reports uptime, capacity, interfaces and ports, receives the node's
// reservations and posts signed results. It speaks NATS, authenticated by
// the node's ed25519 key. Safe for concurrent use.
type NodeClient struct {
	id  string
	sk  ed25519.PrivateKey
	nc  *nats.Conn
	js  jetstream.JetStream
	log *slog.Logger
}

// NodeOption adds a nats.Option to the node's connection (tests use it
// for timeouts and handlers).
type NodeOption = nats.Option

// ConnectNode connects node sk to the NATS servers at urls
// (comma-separated or several). It returns once connected; afterwards it
// reconnects forever.
func ConnectNode(ctx context.Context, urls []string, sk ed25519.PrivateKey, log *slog.Logger, opts ...NodeOption) (*NodeClient, error) {
	if len(sk) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("node key of %d bytes: %w", len(sk), gridtypes.ErrInvalid)
	}
	kp, err := nkeys.FromRawSeed(nkeys.PrefixByteUser, sk.Seed())
	if err != nil {
		return nil, fmt.Errorf("node nkey: %w", err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("node nkey: %w", err)
	}
	id := gridtypes.NodeIDFromKey(sk.Public().(ed25519.PublicKey))
	all := append([]nats.Option{
		nats.Name("zos-node-" + id),
		nats.Nkey(pub, kp.Sign),
		nats.CustomInboxPrefix(InboxPrefix + id),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn("nats async error", "node", id, "error", err)
		}),
	}, opts...)
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(strings.Join(urls, ","), all...)
		done <- result{nc, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("node %s connect: %w: %w", id, ErrUnavailable, ctx.Err())
	}
	if r.err != nil {
		return nil, fmt.Errorf("node %s connect: %w: %w", id, ErrUnavailable, r.err)
	}
	js, err := jetstream.New(r.nc)
	if err != nil {
		r.nc.Close()
		return nil, fmt.Errorf("node %s jetstream: %w", id, err)
	}
	return &NodeClient{id: id, sk: sk, nc: r.nc, js: js, log: log}, nil
}

// NodeID is the node's id.
func (c *NodeClient) NodeID() string { return c.id }

// Conn is the underlying NATS connection.
func (c *NodeClient) Conn() *nats.Conn { return c.nc }

// Close closes the connection.
func (c *NodeClient) Close() { c.nc.Close() }

// retriable reports whether a request error is a transport failure worth
// retrying (as the original: transport errors retry, API errors do not).
func retriable(err error) bool {
	var api *APIError
	if errors.As(err, &api) {
		return errors.Is(err, ErrUnavailable)
	}
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrDisconnected)
}

// request sends op with body (JSON) and decodes the answer's data into out
// (when not nil), retrying transport failures with backoff until ctx ends.
func (c *NodeClient) request(ctx context.Context, op string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("node %s %s: %w", c.id, op, err)
	}
	wait := 100 * time.Millisecond
	for {
		err = c.requestOnce(ctx, op, b, out)
		if err == nil || !retriable(err) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
	if err != nil {
		return fmt.Errorf("node %s %s: %w", c.id, op, err)
	}
	return nil
}

func (c *NodeClient) requestOnce(ctx context.Context, op string, body []byte, out any) error {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := c.nc.RequestWithContext(rctx, NodeSubject(c.id, op), body)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nats.ErrTimeout
		}
		return err
	}
	var rep struct {
		Error string          `json:"error"`
		Code  string          `json:"code"`
		Data  json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(m.Data, &rep); err != nil {
		return fmt.Errorf("answer: %w: %w", gridtypes.ErrMalformed, err)
	}
	if rep.Error != "" || rep.Code != "" {
		return &APIError{Code: rep.Code, Message: rep.Error}
	}
	if out != nil && len(rep.Data) > 0 {
		if err := json.Unmarshal(rep.Data, out); err != nil {
			return fmt.Errorf("answer data: %w: %w", gridtypes.ErrMalformed, err)
		}
	}
	return nil
}

// Register records the node on the explorer (at boot and after each
// upgrade) and returns what the explorer knows of it.
func (c *NodeClient) Register(ctx context.Context, reg Registration) (gridtypes.Node, error) {
	var n gridtypes.Node
	err := c.request(ctx, NodeOpRegister, reg, &n)
	return n, err
}

// Uptime reports the node's uptime (its heartbeat).
func (c *NodeClient) Uptime(ctx context.Context, uptime time.Duration) error {
	return c.request(ctx, NodeOpUptime, UptimeReport{Uptime: uint64(uptime / time.Second)}, nil)
}

// ReportCapacity reports total, system and used capacity.
func (c *NodeClient) ReportCapacity(ctx context.Context, r CapacityReport) error {
	return c.request(ctx, NodeOpCapacity, r, nil)
}

// SetInterfaces reports the node's network interfaces.
func (c *NodeClient) SetInterfaces(ctx context.Context, ifs []gridtypes.Iface) error {
	return c.request(ctx, NodeOpInterfaces, ifs, nil)
}

// SetPorts reports the WireGuard ports in use.
func (c *NodeClient) SetPorts(ctx context.Context, ports []uint16) error {
	return c.request(ctx, NodeOpPorts, ports, nil)
}

// PostResult signs r with the node key and stores it on the explorer.
func (c *NodeClient) PostResult(ctx context.Context, r *gridtypes.Result) error {
	r.NodeID = c.id
	r.Sign(c.sk)
	return c.request(ctx, NodeOpResult, r, nil)
}

// Node returns the node's own record (with its public config).
func (c *NodeClient) Node(ctx context.Context) (gridtypes.Node, error) {
	var n gridtypes.Node
	err := c.request(ctx, NodeOpGet, nil, &n)
	return n, err
}

// Farm returns the node's farm (with its public IP pool).
func (c *NodeClient) Farm(ctx context.Context) (gridtypes.Farm, error) {
	var f gridtypes.Farm
	err := c.request(ctx, NodeOpFarm, nil, &f)
	return f, err
}

// User returns a user (its public key decrypts ECDH secrets).
func (c *NodeClient) User(ctx context.Context, id uint64) (gridtypes.User, error) {
	var u gridtypes.User
	err := c.request(ctx, NodeOpUser, IDRequest{ID: id}, &u)
	return u, err
}

// Reservation returns one of the node's reservations with its result
// (ErrNotFound for another node's or an unknown id).
func (c *NodeClient) Reservation(ctx context.Context, id uint64) (*gridtypes.Reservation, error) {
	var r gridtypes.Reservation
	if err := c.request(ctx, NodeOpReservation, IDRequest{ID: id}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Reservations returns the node's reservations to deploy or delete (its
// whole live state, e.g. to rebuild after losing its store).
func (c *NodeClient) Reservations(ctx context.Context) ([]*gridtypes.Reservation, error) {
	var rs []*gridtypes.Reservation
	err := c.request(ctx, NodeOpReservations, nil, &rs)
	return rs, err
}

// Handler processes one delivered reservation. Returning nil acknowledges
// it; an error has it delivered again after a delay. Reservations arrive
// at least once and in order; a handler must be idempotent by
// (ID, NextAction) and should return once the reservation is persisted
// rather than once it is provisioned.
type Handler func(ctx context.Context, r *gridtypes.Reservation) error

// NakDelay is how long a reservation whose handler failed waits before it
// is delivered again.
const NakDelay = 2 * time.Second

// Watch delivers the node's reservations to h until ctx ends (then it
// returns nil). The node must be registered. Deliveries that do not decode
// or are not for this node are logged and dropped. When the node's
// consumer is gone (a restarted NATS server loses in-memory consumer
// state) Watch asks the explorer to re-create it and goes on; what was not
// acknowledged is delivered again.
func (c *NodeClient) Watch(ctx context.Context, h Handler) error {
	for ctx.Err() == nil {
		cons, ok := c.consumer(ctx)
		if !ok {
			return nil
		}
		if err := c.consume(ctx, cons, h); err != nil {
			return err
		}
	}
	return nil
}

// consumer returns the node's consumer, asking the explorer to create it
// when missing, retrying until ctx ends (then ok is false).
func (c *NodeClient) consumer(ctx context.Context) (jetstream.Consumer, bool) {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		cons, err := c.js.Consumer(ctx, DeliveryStream, ConsumerName(c.id))
		if err == nil {
			return cons, true
		}
		if ctx.Err() != nil {
			return nil, false
		}
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = c.request(rctx, NodeOpConsumer, nil, nil)
			cancel()
			if err == nil {
				continue
			}
		}
		c.log.DebugContext(ctx, "delivery consumer not available", "node", c.id, "error", err)
		select {
		case <-ctx.Done():
			return nil, false
		case <-time.After(wait):
		}
	}
}

// consume handles deliveries until ctx ends (nil) or the consumer is gone
// (nil, the caller gets it again).
func (c *NodeClient) consume(ctx context.Context, cons jetstream.Consumer, h Handler) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(16), jetstream.PullHeartbeat(5*time.Second))
	if err != nil {
		return fmt.Errorf("node %s deliveries: %w: %w", c.id, ErrUnavailable, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		m, err := it.Next()
		if err == nil {
			c.handle(ctx, m, h)
			continue
		}
		if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return nil
		}
		c.log.DebugContext(ctx, "delivery iterator", "node", c.id, "error", err)
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, ierr := cons.Info(ictx)
		cancel()
		if errors.Is(ierr, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
			return nil
		}
	}
}

func (c *NodeClient) handle(ctx context.Context, m jetstream.Msg, h Handler) {
	r, err := gridtypes.DecodeStored(m.Data())
	if err == nil && r.NodeID != c.id {
		err = fmt.Errorf("delivery for node %s: %w", r.NodeID, ErrForbidden)
	}
	if err != nil {
		c.log.WarnContext(ctx, "bad delivery dropped", "node", c.id, "error", err)
		_ = m.Term()
		return
	}
	if err := h(ctx, r); err != nil {
		c.log.WarnContext(ctx, "reservation handler failed", "node", c.id, "id", r.ID, "error", err)
		_ = m.NakWithDelay(NakDelay)
		return
	}
	if err := m.Ack(); err != nil {
		c.log.DebugContext(ctx, "ack failed", "node", c.id, "id", r.ID, "error", err)
	}
}
