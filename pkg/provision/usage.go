package provision

import (
	"slices"
	"sync"
	"time"

	"github.com/zos-go/zos/pkg/gridtypes"
)

// usageIndex keeps, in memory, what each record holds: the node's usage is
// then a sum over the index instead of a decode of the whole store. Every
// write of the engine goes through put, which updates the index after the
// store; RecomputeUsed checks it against the store.
type usageIndex struct {
	mu      sync.Mutex
	entries map[uint64]usageEntry // guarded by mu
}

type usageEntry struct {
	typ     gridtypes.WorkloadType
	state   State
	cap     gridtypes.Capacity
	expires time.Time // end of its lifetime; zero: none
}

func (u *usageIndex) set(rec *Record) {
	c, err := rec.Reservation.Resources()
	if err != nil {
		c = gridtypes.Capacity{}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.entries == nil {
		u.entries = map[uint64]usageEntry{}
	}
	u.entries[rec.ID()] = usageEntry{typ: rec.Reservation.Type, state: rec.State, cap: c, expires: rec.Reservation.ExpiresAt()}
}

// expired lists the live records whose lifetime ended before now.
func (u *usageIndex) expired(now time.Time) []uint64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	var ids []uint64
	for id, en := range u.entries {
		if !en.expires.IsZero() && !now.Before(en.expires) && (en.state == StateDeploying || en.state == StateDeployed) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// put writes rec to the store, then to the usage index.
func (e *Engine) put(rec *Record) error {
	if err := e.store.Put(rec); err != nil {
		return err
	}
	e.usage.set(rec)
	return nil
}

// loadUsage fills the index from the store (at start).
func (e *Engine) loadUsage() error {
	recs, err := e.store.List()
	if err != nil {
		return err
	}
	for _, r := range recs {
		e.usage.set(r)
	}
	return nil
}

// Used is the capacity held by live workloads.
func (e *Engine) Used() (gridtypes.Capacity, error) {
	e.usage.mu.Lock()
	defer e.usage.mu.Unlock()
	var used gridtypes.Capacity
	for _, en := range e.usage.entries {
		if en.state.Live() {
			used = used.Add(en.cap)
		}
	}
	return used, nil
}

// Counts is the number of workloads by type and state.
func (e *Engine) Counts() map[gridtypes.WorkloadType]map[State]int {
	e.usage.mu.Lock()
	defer e.usage.mu.Unlock()
	out := map[gridtypes.WorkloadType]map[State]int{}
	for _, en := range e.usage.entries {
		if out[en.typ] == nil {
			out[en.typ] = map[State]int{}
		}
		out[en.typ][en.state]++
	}
	return out
}

// RecomputeUsed is Used recomputed from the store, record by record: what
// the capacity accounting must always equal.
func (e *Engine) RecomputeUsed() (gridtypes.Capacity, error) {
	recs, err := e.store.List()
	if err != nil {
		return gridtypes.Capacity{}, err
	}
	var used gridtypes.Capacity
	for _, rec := range recs {
		if !rec.State.Live() {
			continue
		}
		if c, err := rec.Reservation.Resources(); err == nil {
			used = used.Add(c)
		}
	}
	return used, nil
}
