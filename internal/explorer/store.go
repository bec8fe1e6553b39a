package explorer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/zos-go/zos/pkg/explorer"
	"github.com/zos-go/zos/pkg/gridtypes"
)

// JetStream buckets of the explorer's state.
const (
	bucketUsers        = "zos-users"        // id.<n> → User, name.<name> → id
	bucketFarms        = "zos-farms"        // id.<n> → Farm, name.<name> → id
	bucketNodes        = "zos-nodes"        // <node id> → Node (as reported)
	bucketCapacity     = "zos-capacity"     // <node id> → reserved Capacity
	bucketReservations = "zos-reservations" // <node id>.<id> → record
	bucketReplay       = "zos-replay"       // <hash hex> → id, expires after MaxValidity
)

// maxCASRetries bounds optimistic-concurrency retries of one update.
const maxCASRetries = 64

// store is the explorer's typed view of JetStream.
type store struct {
	js                                          jetstream.JetStream
	users, farms, nodes, capacity, res, replays jetstream.KeyValue
	delivery                                    jetstream.Stream
}

func openStore(ctx context.Context, js jetstream.JetStream, replicas int) (*store, error) {
	s := &store{js: js}
	buckets := []struct {
		kv  *jetstream.KeyValue
		cfg jetstream.KeyValueConfig
	}{
		{&s.users, jetstream.KeyValueConfig{Bucket: bucketUsers}},
		{&s.farms, jetstream.KeyValueConfig{Bucket: bucketFarms}},
		{&s.nodes, jetstream.KeyValueConfig{Bucket: bucketNodes}},
		{&s.capacity, jetstream.KeyValueConfig{Bucket: bucketCapacity}},
		{&s.res, jetstream.KeyValueConfig{Bucket: bucketReservations}},
		{&s.replays, jetstream.KeyValueConfig{Bucket: bucketReplay, TTL: gridtypes.MaxValidity + 2*gridtypes.ClockSkew}},
	}
	for _, b := range buckets {
		b.cfg.Storage = jetstream.FileStorage
		b.cfg.Replicas = replicas
		b.cfg.History = 1
		kv, err := js.CreateOrUpdateKeyValue(ctx, b.cfg)
		if err != nil {
			return nil, fmt.Errorf("bucket %s: %w: %w", b.cfg.Bucket, explorer.ErrUnavailable, err)
		}
		*b.kv = kv
	}
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       explorer.DeliveryStream,
		Subjects:   []string{explorer.DeliverySubjectPrefix + ">"},
		Storage:    jetstream.FileStorage,
		Replicas:   replicas,
		Retention:  jetstream.WorkQueuePolicy,
		Duplicates: 2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w: %w", explorer.DeliveryStream, explorer.ErrUnavailable, err)
	}
	s.delivery = st
	return s, nil
}

// natsErr maps a JetStream error: missing keys to ErrNotFound, the rest
// to ErrUnavailable.
func natsErr(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return fmt.Errorf("%s: %w", what, explorer.ErrNotFound)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w: %w", what, explorer.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w: %w", what, explorer.ErrUnavailable, err)
}

// getJSON reads key and decodes it into a T; it returns the revision.
func getJSON[T any](ctx context.Context, kv jetstream.KeyValue, key string) (T, uint64, error) {
	var v T
	e, err := kv.Get(ctx, key)
	if err != nil {
		return v, 0, natsErr(kv.Bucket()+" "+key, err)
	}
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return v, 0, fmt.Errorf("%s %s: stored value: %w: %w", kv.Bucket(), key, explorer.ErrInternal, err)
	}
	return v, e.Revision(), nil
}

func putJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any) (uint64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w: %w", kv.Bucket(), key, explorer.ErrInternal, err)
	}
	rev, err := kv.Put(ctx, key, b)
	return rev, natsErr(kv.Bucket()+" "+key, err)
}

// createJSON stores v under key only if key is absent (ErrConflict
// otherwise) and returns the revision.
func createJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any) (uint64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w: %w", kv.Bucket(), key, explorer.ErrInternal, err)
	}
	rev, err := kv.Create(ctx, key, b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("%s %s: %w", kv.Bucket(), key, explorer.ErrConflict)
	}
	return rev, natsErr(kv.Bucket()+" "+key, err)
}

// updateJSON applies fn to the value of key under optimistic concurrency:
// read, change, write if nobody wrote in between, else retry. A missing
// key is ErrNotFound unless create is set (fn then gets a zero T). An error
// from fn aborts without writing.
func updateJSON[T any](ctx context.Context, kv jetstream.KeyValue, key string, create bool, fn func(*T) error) (T, error) {
	for range maxCASRetries {
		v, rev, err := getJSON[T](ctx, kv, key)
		if err != nil && !(create && errors.Is(err, explorer.ErrNotFound)) {
			return v, err
		}
		if err := fn(&v); err != nil {
			return v, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return v, fmt.Errorf("%s %s: %w: %w", kv.Bucket(), key, explorer.ErrInternal, err)
		}
		if rev == 0 {
			_, err = kv.Create(ctx, key, b)
		} else {
			_, err = kv.Update(ctx, key, b, rev)
		}
		switch {
		case err == nil:
			return v, nil
		case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			continue
		default:
			return v, natsErr(kv.Bucket()+" "+key, err)
		}
	}
	var zero T
	return zero, fmt.Errorf("%s %s: too many concurrent updates: %w", kv.Bucket(), key, explorer.ErrUnavailable)
}

// scan calls fn with the key and value of every live entry of kv
// matching the subject filters (all when none), in stream order.
func scan(ctx context.Context, kv jetstream.KeyValue, fn func(key string, value []byte) error, filters ...string) error {
	if len(filters) == 0 {
		filters = []string{">"}
	}
	w, err := kv.WatchFiltered(ctx, filters, jetstream.IgnoreDeletes())
	if err != nil {
		return natsErr(kv.Bucket()+" scan", err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("%s scan: watcher closed: %w", kv.Bucket(), explorer.ErrUnavailable)
			}
			if e == nil {
				return nil
			}
			if err := fn(e.Key(), e.Value()); err != nil {
				return err
			}
		case <-ctx.Done():
			return natsErr(kv.Bucket()+" scan", ctx.Err())
		}
	}
}

// keys lists the keys of kv matching the subject filters.
func keys(ctx context.Context, kv jetstream.KeyValue, filters ...string) ([]string, error) {
	l, err := kv.ListKeysFiltered(ctx, filters...)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, natsErr(kv.Bucket()+" keys", err)
	}
	var out []string
	for k := range l.Keys() {
		out = append(out, k)
	}
	if err := ctx.Err(); err != nil {
		return nil, natsErr(kv.Bucket()+" keys", err)
	}
	return out, nil
}
