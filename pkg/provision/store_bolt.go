package provision

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the layout of the bolt store this code writes.
const SchemaVersion = 1

var (
	bucketMeta    = []byte("meta")
	bucketRecords = []byte("records")
	keySchema     = []byte("schema")
)

// ErrSchema is returned when a store file has a layout this code cannot read.
var ErrSchema = errors.New("unsupported store schema")

// BoltStore is the Store of a node: one bbolt file. Every Put is durable
// when it returns. Puts made while a commit is in progress are committed
// together by the next one (group commit): concurrent writers share an
// fsync, and a lone writer never waits for company.
type BoltStore struct {
	db *bolt.DB

	mu        sync.Mutex
	queue     []putReq // guarded by mu
	committer bool     // guarded by mu: a goroutine is committing the queue
}

type putReq struct {
	key, value []byte
	done       chan error
}

var _ Store = (*BoltStore)(nil)

// OpenBolt opens (creating if needed) the store file at path and upgrades its
// layout to SchemaVersion. It waits at most 5 s for another process holding
// the file.
func OpenBolt(path string) (*BoltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &BoltStore{db: db}
	if err := s.Upgrade(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

// Upgrade brings the file's layout to SchemaVersion. A file written by a
// newer version is refused (ErrSchema), never rewritten.
func (s *BoltStore) Upgrade() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		v := 0
		if b := meta.Get(keySchema); b != nil {
			v, err = strconv.Atoi(string(b))
			if err != nil {
				return fmt.Errorf("schema %q: %w", b, ErrSchema)
			}
		}
		if v > SchemaVersion {
			return fmt.Errorf("schema %d, this node reads up to %d: %w", v, SchemaVersion, ErrSchema)
		}
		// Version 0 is an empty file; version 1 is the first layout.
		if _, err := tx.CreateBucketIfNotExists(bucketRecords); err != nil {
			return err
		}
		return meta.Put(keySchema, []byte(strconv.Itoa(SchemaVersion)))
	})
}

func idKey(id uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], id)
	return k[:]
}

// Get implements Store.
func (s *BoltStore) Get(id uint64) (*Record, error) {
	var b []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketRecords).Get(idKey(id)); v != nil {
			b = append([]byte(nil), v...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, fmt.Errorf("reservation %d: %w", id, ErrNotFound)
	}
	return decodeRecord(b)
}

// Put implements Store.
func (s *BoltStore) Put(rec *Record) error {
	b, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	req := putReq{key: idKey(rec.ID()), value: b, done: make(chan error, 1)}
	s.mu.Lock()
	s.queue = append(s.queue, req)
	lead := !s.committer
	s.committer = true
	s.mu.Unlock()
	if lead {
		s.commitQueue()
	}
	return <-req.done
}

// commitQueue commits queued Puts, one transaction per batch, until the
// queue is empty. The writer that found no commit in progress runs it.
func (s *BoltStore) commitQueue() {
	for {
		s.mu.Lock()
		batch := s.queue
		s.queue = nil
		if len(batch) == 0 {
			s.committer = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		err := s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketRecords)
			for _, r := range batch {
				if err := b.Put(r.key, r.value); err != nil {
					return err
				}
			}
			return nil
		})
		for _, r := range batch {
			r.done <- err
		}
	}
}

// List implements Store.
func (s *BoltStore) List() ([]*Record, error) {
	var out []*Record
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRecords).ForEach(func(_, v []byte) error {
			r, err := decodeRecord(v)
			if err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// Close implements Store.
func (s *BoltStore) Close() error { return s.db.Close() }

func encodeRecord(rec *Record) ([]byte, error) {
	if rec == nil || rec.Reservation == nil {
		return nil, errors.New("record without reservation")
	}
	return json.Marshal(rec)
}

func decodeRecord(b []byte) (*Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode record: %w", err)
	}
	if r.Reservation == nil {
		return nil, errors.New("decode record: no reservation")
	}
	return &r, nil
}
