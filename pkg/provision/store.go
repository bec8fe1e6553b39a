package provision

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/zos-go/zos/pkg/gridtypes"
)

// State is where a workload is in its life on this node.
type State string

// Workload states. Deploying and Deleting are intents written before acting:
// after a crash the engine finishes them.
const (
	// StateDeploying: accepted, being provisioned (or waiting for a
	// dependency such as its network).
	StateDeploying State = "deploying"
	// StateDeployed: provisioned; the result is ok.
	StateDeployed State = "deployed"
	// StateFailed: refused or failed for good; the result says why.
	// Nothing of it runs on the node.
	StateFailed State = "failed"
	// StateDeleting: the owner or the grid asked for its removal.
	StateDeleting State = "deleting"
	// StateDeleted: removed. The record stays as a tombstone so a
	// redelivered deploy is never deployed again.
	StateDeleted State = "deleted"
)

// Live reports whether a workload in this state holds capacity on the node.
func (s State) Live() bool {
	return s == StateDeploying || s == StateDeployed || s == StateDeleting
}

// Record is what the node keeps about one reservation.
type Record struct {
	// Reservation is the reservation as received (for an update, the
	// newest one).
	Reservation *gridtypes.Reservation `json:"reservation"`
	// Name is the working name of everything created for it: the GWID of
	// the first reservation in an update chain, kept across updates.
	Name  string `json:"name"`
	State State  `json:"state"`
	// Result is the last result produced (signed).
	Result *gridtypes.Result `json:"result,omitempty"`
	// Reported is true once the Result reached the grid.
	Reported bool `json:"reported"`
	// Retries counts attempts that met a missing dependency or a
	// temporary failure; LastError is the newest such error.
	Retries   int    `json:"retries,omitempty"`
	LastError string `json:"last_error,omitempty"`
	// Updated is the unix time of the last state change.
	Updated int64 `json:"updated"`
	// Received is when the node accepted the reservation (unix
	// nanoseconds); provision latency is measured from it.
	Received int64 `json:"received,omitempty"`
	// Reason, when set, is why the node removes the workload on its own
	// (expired, or an operator's DecommissionCached): the message of its
	// deleted result.
	Reason string `json:"reason,omitempty"`
	// ReplacedBy is set on a record superseded by an update, and
	// ReplacedFrom is the state it had then (deploying or deployed): a
	// failed update restores it.
	ReplacedBy   uint64 `json:"replaced_by,omitempty"`
	ReplacedFrom State  `json:"replaced_from,omitempty"`
	// Replaces is set on an update: the id of the record it superseded.
	// If the update fails for good, that record is restored and what runs
	// is left alone (it belongs to the earlier reservation).
	Replaces uint64 `json:"replaces,omitempty"`
}

// ID is the reservation id.
func (r *Record) ID() uint64 { return r.Reservation.ID }

// ErrNotFound is returned by Store.Get for an unknown reservation.
var ErrNotFound = errors.New("reservation not found")

// Store keeps records. Implementations are safe for concurrent use; Put is
// durable when it returns (the bolt store syncs).
type Store interface {
	// Get returns a copy of the record of reservation id, or ErrNotFound.
	Get(id uint64) (*Record, error)
	// Put writes rec, replacing any record with the same id.
	Put(rec *Record) error
	// List returns copies of every record, by id.
	List() ([]*Record, error)
	// Close releases the store.
	Close() error
}

// MemStore is a Store in memory, for tests and for nodes that keep nothing.
type MemStore struct {
	mu   sync.Mutex
	recs map[uint64][]byte // guarded by mu; JSON, so callers never share memory
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{recs: map[uint64][]byte{}} }

// Get implements Store.
func (s *MemStore) Get(id uint64) (*Record, error) {
	s.mu.Lock()
	b, ok := s.recs[id]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("reservation %d: %w", id, ErrNotFound)
	}
	return decodeRecord(b)
}

// Put implements Store.
func (s *MemStore) Put(rec *Record) error {
	b, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.recs[rec.ID()] = b
	s.mu.Unlock()
	return nil
}

// List implements Store.
func (s *MemStore) List() ([]*Record, error) {
	s.mu.Lock()
	ids := make([]uint64, 0, len(s.recs))
	for id := range s.recs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	bs := make([][]byte, len(ids))
	for i, id := range ids {
		bs[i] = s.recs[id]
	}
	s.mu.Unlock()
	out := make([]*Record, 0, len(bs))
	for _, b := range bs {
		r, err := decodeRecord(b)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Close implements Store.
func (s *MemStore) Close() error { return nil }
