package explorer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/zos-go/zos/pkg/explorer"
	"github.com/zos-go/zos/pkg/gridtypes"
)

// nodeCacheTTL is how long a node record read for a capacity check is
// reused. Nodes change their totals rarely; the reserved capacity, which
// changes with every reservation, is never taken from this cache.
const nodeCacheTTL = 2 * time.Second

// ledger keeps each node's reserved capacity in the zos-capacity bucket
// under compare-and-set. Updates of one node are serialised in this
// process, and the last value and revision are cached, so the usual update
// is a single write; another explorer's write makes it re-read and retry.
type ledger struct {
	kv    jetstream.KeyValue
	locks keyedMutex
	mu    sync.Mutex
	last  map[string]cachedCapacity // guarded by mu
}

type cachedCapacity struct {
	c   gridtypes.Capacity
	rev uint64
}

func newLedger(kv jetstream.KeyValue) *ledger {
	return &ledger{kv: kv, last: map[string]cachedCapacity{}}
}

// update applies fn to node's reserved capacity; an error from fn aborts.
func (l *ledger) update(ctx context.Context, node string, fn func(*gridtypes.Capacity) error) error {
	unlock := l.locks.lock(node)
	defer unlock()
	l.mu.Lock()
	cur, cached := l.last[node]
	l.mu.Unlock()
	for range maxCASRetries {
		if !cached {
			e, err := l.kv.Get(ctx, node)
			switch {
			case errors.Is(err, jetstream.ErrKeyNotFound):
				cur = cachedCapacity{}
			case err != nil:
				return natsErr("capacity of "+node, err)
			default:
				cur.rev = e.Revision()
				if err := json.Unmarshal(e.Value(), &cur.c); err != nil {
					return fmt.Errorf("capacity of %s: %w: %w", node, explorer.ErrInternal, err)
				}
			}
			cached = true
		}
		next := cur.c
		if err := fn(&next); err != nil {
			return err
		}
		b, _ := json.Marshal(next)
		var rev uint64
		var err error
		if cur.rev == 0 {
			rev, err = l.kv.Create(ctx, node, b)
		} else {
			rev, err = l.kv.Update(ctx, node, b, cur.rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			cached = false
			continue
		}
		if err != nil {
			l.forget(node)
			return natsErr("capacity of "+node, err)
		}
		l.mu.Lock()
		l.last[node] = cachedCapacity{c: next, rev: rev}
		l.mu.Unlock()
		return nil
	}
	l.forget(node)
	return fmt.Errorf("capacity of %s: too many concurrent updates: %w", node, explorer.ErrUnavailable)
}

func (l *ledger) forget(node string) {
	l.mu.Lock()
	delete(l.last, node)
	l.mu.Unlock()
}

// nodeCache remembers node records for nodeCacheTTL.
type nodeCache struct {
	mu sync.Mutex
	m  map[string]cachedNode // guarded by mu
}

type cachedNode struct {
	n  gridtypes.Node
	at time.Time
}

func (c *nodeCache) get(node string, now time.Time) (gridtypes.Node, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[node]
	if !ok || now.Sub(e.at) > nodeCacheTTL {
		return gridtypes.Node{}, false
	}
	return e.n, true
}

func (c *nodeCache) put(n gridtypes.Node, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]cachedNode{}
	}
	c.m[n.NodeID] = cachedNode{n: n, at: now}
}

func (c *nodeCache) forget(node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, node)
}

// nodeRecord returns the node as reported (without reserved capacity),
// from the cache when fresh.
func (x *Explorer) nodeRecord(ctx context.Context, nodeID string) (gridtypes.Node, error) {
	now := time.Now()
	if n, ok := x.nodes.get(nodeID, now); ok {
		return n, nil
	}
	if !isKeyToken(nodeID) {
		return gridtypes.Node{}, fmt.Errorf("node %q: %w", nodeID, explorer.ErrNotFound)
	}
	n, _, err := getJSON[gridtypes.Node](ctx, x.st.nodes, nodeID)
	if err != nil {
		return n, fmt.Errorf("node %s: %w", nodeID, err)
	}
	x.nodes.put(n, now)
	return n, nil
}
