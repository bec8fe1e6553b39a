package explorer

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/zos-go/zos/pkg/explorer"
	"github.com/zos-go/zos/pkg/gridtypes"
)

// ghostAge is how old a name entry without its object must be before a new
// creator takes it over (an explorer died between the two writes).
const ghostAge = time.Minute

// createNamed implements the create of users and farms: the name entry
// "name.<name>" is created first (unique, its revision becomes the id),
// then "id.<id>" holds the object. A name entry left without object by a
// crash is taken over after ghostAge.
func createNamed(ctx context.Context, kv jetstream.KeyValue, name string, put func(id uint64) any) (uint64, error) {
	id, err := kv.Create(ctx, "name."+name, nil)
	if errors.Is(err, jetstream.ErrKeyExists) {
		e, gerr := kv.Get(ctx, "name."+name)
		if gerr != nil {
			return 0, natsErr(kv.Bucket()+" name "+name, gerr)
		}
		_, oerr := kv.Get(ctx, "id."+strconv.FormatUint(e.Revision(), 10))
		if !errors.Is(oerr, jetstream.ErrKeyNotFound) || time.Since(e.Created()) < ghostAge {
			return 0, fmt.Errorf("name %q is taken: %w", name, explorer.ErrConflict)
		}
		id, err = e.Revision(), nil
	}
	if err != nil {
		return 0, natsErr(kv.Bucket()+" name "+name, err)
	}
	if _, err := putJSON(ctx, kv, "id."+strconv.FormatUint(id, 10), put(id)); err != nil {
		return 0, err
	}
	return id, nil
}

// CreateUser registers a user signed by its own key and returns its id.
func (x *Explorer) CreateUser(ctx context.Context, u gridtypes.User) (uint64, error) {
	if err := u.Validate(); err != nil {
		return 0, fmt.Errorf("user: %w", err)
	}
	if err := u.Verify(); err != nil {
		return 0, err
	}
	return createNamed(ctx, x.st.users, u.Name, func(id uint64) any { u.ID = id; return u })
}

// User returns user id.
func (x *Explorer) User(ctx context.Context, id uint64) (gridtypes.User, error) {
	u, _, err := getJSON[gridtypes.User](ctx, x.st.users, "id."+strconv.FormatUint(id, 10))
	if err != nil {
		return u, fmt.Errorf("user %d: %w", id, err)
	}
	return u, nil
}

// UserByName returns the user called name.
func (x *Explorer) UserByName(ctx context.Context, name string) (gridtypes.User, error) {
	if !gridtypes.ValidName(name) {
		return gridtypes.User{}, fmt.Errorf("user %q: %w", name, explorer.ErrNotFound)
	}
	e, err := x.st.users.Get(ctx, "name."+name)
	if err != nil {
		return gridtypes.User{}, fmt.Errorf("user %q: %w", name, natsErr("users", err))
	}
	return x.User(ctx, e.Revision())
}

// userKey returns the public key of user id; keys never change, so they
// are cached.
func (x *Explorer) userKey(ctx context.Context, id uint64) (ed25519.PublicKey, error) {
	if k, ok := x.keys.Load(id); ok {
		return k.(ed25519.PublicKey), nil
	}
	u, err := x.User(ctx, id)
	if err != nil {
		return nil, err
	}
	k, err := u.Key()
	if err != nil {
		return nil, fmt.Errorf("user %d: stored key: %w", id, explorer.ErrInternal)
	}
	x.keys.Store(id, k)
	return k, nil
}

// CreateFarm registers a farm signed by its owner and returns its id.
func (x *Explorer) CreateFarm(ctx context.Context, f gridtypes.Farm) (uint64, error) {
	if err := f.Validate(); err != nil {
		return 0, fmt.Errorf("farm: %w", err)
	}
	for _, ip := range f.IPAddresses {
		if ip.ReservationID != 0 {
			return 0, fmt.Errorf("farm ip %s: reservation_id is set by the explorer: %w", ip.Address, gridtypes.ErrInvalid)
		}
	}
	owner, err := x.userKey(ctx, f.OwnerID)
	if err != nil {
		return 0, fmt.Errorf("farm owner: %w", err)
	}
	if err := f.Verify(owner); err != nil {
		return 0, err
	}
	return createNamed(ctx, x.st.farms, f.Name, func(id uint64) any { f.ID = id; return f })
}

// Farm returns farm id.
func (x *Explorer) Farm(ctx context.Context, id uint64) (gridtypes.Farm, error) {
	f, _, err := getJSON[gridtypes.Farm](ctx, x.st.farms, farmKey(id))
	if err != nil {
		return f, fmt.Errorf("farm %d: %w", id, err)
	}
	return f, nil
}

func farmKey(id uint64) string { return "id." + strconv.FormatUint(id, 10) }

// Farms lists farms, of one owner when owner is not 0, by id.
func (x *Explorer) Farms(ctx context.Context, owner uint64) ([]gridtypes.Farm, error) {
	var out []gridtypes.Farm
	err := scan(ctx, x.st.farms, func(_ string, v []byte) error {
		f, err := decodeStored[gridtypes.Farm](v)
		if err == nil && (owner == 0 || f.OwnerID == owner) {
			out = append(out, f)
		}
		return err
	}, "id.*")
	slices.SortFunc(out, func(a, b gridtypes.Farm) int { return cmpU64(a.ID, b.ID) })
	return out, err
}

// Register records (or refreshes) node nodeID and makes sure its delivery
// consumer exists.
func (x *Explorer) Register(ctx context.Context, nodeID string, reg explorer.Registration) (gridtypes.Node, error) {
	if _, err := x.Farm(ctx, reg.FarmID); err != nil {
		return gridtypes.Node{}, fmt.Errorf("node %s: %w", nodeID, err)
	}
	for _, s := range []string{reg.Hostname, reg.OSVersion} {
		if len(s) > 255 {
			return gridtypes.Node{}, fmt.Errorf("node %s registration: %w", nodeID, gridtypes.ErrTooLarge)
		}
	}
	now := x.now().Unix()
	n, err := updateJSON(ctx, x.st.nodes, nodeID, true, func(n *gridtypes.Node) error {
		if n.Created == 0 {
			n.Created = now
		}
		n.NodeID, n.FarmID, n.Hostname, n.OSVersion = nodeID, reg.FarmID, reg.Hostname, reg.OSVersion
		n.Location, n.Uptime, n.Updated, n.Deleted = reg.Location, reg.Uptime, now, false
		return nil
	})
	x.nodes.forget(nodeID)
	if err != nil {
		return n, err
	}
	if err := x.ensureConsumer(ctx, nodeID); err != nil {
		return n, err
	}
	x.log.InfoContext(ctx, "node registered", "node", nodeID, "farm", reg.FarmID)
	return x.withReserved(ctx, n)
}

// ensureConsumer creates (or updates) the durable consumer of a node's
// deliveries. Its state lives in memory (replicated on a cluster) unless
// Config.ConsumerStateOnDisk: the stream is a work queue, so what a lost
// consumer had not acknowledged is still in the stream, and a re-created
// consumer delivers exactly that again (at start, and when a node asks).
func (x *Explorer) ensureConsumer(ctx context.Context, nodeID string) error {
	_, err := x.js.CreateOrUpdateConsumer(ctx, explorer.DeliveryStream, jetstream.ConsumerConfig{
		Durable:       explorer.ConsumerName(nodeID),
		FilterSubject: explorer.DeliverySubject(nodeID),
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       x.cfg.AckWait,
		MaxAckPending: x.cfg.MaxAckPending,
		Replicas:      x.cfg.NATS.Replicas,
		MemoryStorage: !x.cfg.ConsumerStateOnDisk,
	})
	return natsErr("consumer of node "+nodeID, err)
}

// ensureConsumers re-creates the consumer of every registered node (a
// restarted NATS server has lost in-memory consumer state).
func (x *Explorer) ensureConsumers(ctx context.Context) error {
	var nodes []string
	err := scan(ctx, x.st.nodes, func(k string, _ []byte) error {
		nodes = append(nodes, k)
		return nil
	})
	if err != nil {
		return err
	}
	sem := make(chan struct{}, 16)
	errc := make(chan error, len(nodes))
	for _, n := range nodes {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			errc <- x.ensureConsumer(ctx, n)
		}()
	}
	for range cap(sem) {
		sem <- struct{}{}
	}
	close(errc)
	for err := range errc {
		if err != nil {
			return err
		}
	}
	return nil
}

// updateNode applies fn to a registered node's record.
func (x *Explorer) updateNode(ctx context.Context, nodeID string, fn func(*gridtypes.Node)) error {
	now := x.now().Unix()
	_, err := updateJSON(ctx, x.st.nodes, nodeID, false, func(n *gridtypes.Node) error {
		fn(n)
		n.Updated = now
		return nil
	})
	x.nodes.forget(nodeID)
	if errors.Is(err, explorer.ErrNotFound) {
		return fmt.Errorf("node %s is not registered: %w", nodeID, err)
	}
	return err
}

// Node returns a node with its reserved capacity.
func (x *Explorer) Node(ctx context.Context, nodeID string) (gridtypes.Node, error) {
	if !isKeyToken(nodeID) {
		return gridtypes.Node{}, fmt.Errorf("node %q: %w", nodeID, explorer.ErrNotFound)
	}
	n, _, err := getJSON[gridtypes.Node](ctx, x.st.nodes, nodeID)
	if err != nil {
		return n, fmt.Errorf("node %s: %w", nodeID, err)
	}
	return x.withReserved(ctx, n)
}

func (x *Explorer) withReserved(ctx context.Context, n gridtypes.Node) (gridtypes.Node, error) {
	c, _, err := getJSON[gridtypes.Capacity](ctx, x.st.capacity, n.NodeID)
	if err != nil && !errors.Is(err, explorer.ErrNotFound) {
		return n, err
	}
	n.ReservedResources = c
	return n, nil
}

// NodeFilter selects nodes in a capacity search.
type NodeFilter struct {
	FarmID  uint64
	Country string
	City    string
	// Free is the least free capacity a node must have.
	Free gridtypes.Capacity
	// UpSince, when not zero, keeps nodes that reported after it.
	UpSince time.Time
}

// Nodes lists the nodes matching f, by id.
func (x *Explorer) Nodes(ctx context.Context, f NodeFilter) ([]gridtypes.Node, error) {
	reserved := map[string]gridtypes.Capacity{}
	err := scan(ctx, x.st.capacity, func(k string, v []byte) error {
		c, err := decodeStored[gridtypes.Capacity](v)
		reserved[k] = c
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []gridtypes.Node
	err = scan(ctx, x.st.nodes, func(k string, v []byte) error {
		n, err := decodeStored[gridtypes.Node](v)
		if err != nil {
			return err
		}
		n.ReservedResources = reserved[k]
		switch {
		case n.Deleted,
			f.FarmID != 0 && n.FarmID != f.FarmID,
			f.Country != "" && !strings.EqualFold(n.Location.Country, f.Country),
			f.City != "" && !strings.EqualFold(n.Location.City, f.City),
			!f.UpSince.IsZero() && n.Updated < f.UpSince.Unix(),
			!n.Free().Fits(f.Free):
			return nil
		}
		out = append(out, n)
		return nil
	})
	slices.SortFunc(out, func(a, b gridtypes.Node) int { return strings.Compare(a.NodeID, b.NodeID) })
	return out, err
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// isKeyToken reports whether s can be one token of a KV key.
func isKeyToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// SetPublicConfig applies a farmer's signed public configuration of a node
// of the farm.
func (x *Explorer) SetPublicConfig(ctx context.Context, req gridtypes.PublicConfigRequest) (gridtypes.Node, error) {
	if err := req.Validate(); err != nil {
		return gridtypes.Node{}, fmt.Errorf("public config: %w", err)
	}
	now := x.now()
	if req.Created > now.Add(gridtypes.ClockSkew).Unix() {
		return gridtypes.Node{}, fmt.Errorf("public config signed in the future: %w", gridtypes.ErrNotYetValid)
	}
	if req.Created < now.Add(-gridtypes.MaxValidity).Unix() {
		return gridtypes.Node{}, fmt.Errorf("public config signed at %d: %w", req.Created, gridtypes.ErrExpired)
	}
	n, err := x.nodeRecord(ctx, req.NodeID)
	if err != nil {
		return n, err
	}
	f, err := x.Farm(ctx, n.FarmID)
	if err != nil {
		return n, err
	}
	owner, err := x.userKey(ctx, f.OwnerID)
	if err != nil {
		return n, err
	}
	if err := req.Verify(owner); err != nil {
		return n, err
	}
	err = x.updateNode(ctx, req.NodeID, func(n *gridtypes.Node) {
		if req.Created > n.PublicConfigSigned {
			n.PublicConfig, n.PublicConfigSigned = req.Config, req.Created
		}
	})
	if err != nil {
		return n, err
	}
	n, err = x.Node(ctx, req.NodeID)
	if err == nil && n.PublicConfigSigned != req.Created {
		return n, fmt.Errorf("a newer public config of node %s is set: %w", req.NodeID, explorer.ErrConflict)
	}
	return n, err
}
