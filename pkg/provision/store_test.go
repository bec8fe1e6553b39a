package provision

import (
	"errors"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/zos-go/zos/pkg/gridtypes"
)

// storeSuite is what every Store must do.
func storeSuite(t *testing.T, open func(t *testing.T) Store) {
	t.Run("get missing", func(t *testing.T) {
		s := open(t)
		if _, err := s.Get(1); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get missing: %v", err)
		}
	})
	t.Run("put get list copies", func(t *testing.T) {
		s := open(t)
		for _, id := range []uint64{3, 1, 2} {
			rec := &Record{Reservation: &gridtypes.Reservation{ID: id, Type: gridtypes.TypeVolume}, Name: "n", State: StateDeploying}
			if err := s.Put(rec); err != nil {
				t.Fatal(err)
			}
		}
		r, err := s.Get(2)
		if err != nil || r.State != StateDeploying || r.ID() != 2 {
			t.Fatalf("get: %+v %v", r, err)
		}
		r.State = StateDeployed // a copy: the store must not change
		if again, _ := s.Get(2); again.State != StateDeploying {
			t.Fatal("store shares memory with callers")
		}
		all, err := s.List()
		if err != nil || len(all) != 3 || all[0].ID() != 1 || all[2].ID() != 3 {
			t.Fatalf("list: %v %v", all, err)
		}
	})
	t.Run("refuses record without reservation", func(t *testing.T) {
		if err := open(t).Put(&Record{}); err == nil {
			t.Fatal("put of an empty record accepted")
		}
	})
}

func TestMemStore(t *testing.T) {
	storeSuite(t, func(*testing.T) Store { return NewMemStore() })
}

func TestBoltStore(t *testing.T) {
	storeSuite(t, func(t *testing.T) Store {
		s, err := OpenBolt(filepath.Join(t.TempDir(), "provision.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestBoltStoreSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "provision.db")
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(&Record{Reservation: &gridtypes.Reservation{ID: 9}, State: StateDeployed, Reported: true}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.Get(9)
	if err != nil || r.State != StateDeployed || !r.Reported {
		t.Fatalf("after reopen: %+v %v", r, err)
	}
}

// TestBoltStoreReadsVersion1File opens a store file written by schema 1
// (testdata), so a layout change cannot go unnoticed.
func TestBoltStoreReadsVersion1File(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	copyFile(t, "testdata/store-v1.db", path)
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs, err := s.List()
	if err != nil || len(recs) != 2 {
		t.Fatalf("v1 records: %v %v", recs, err)
	}
	if recs[0].ID() != 41 || recs[0].State != StateDeployed || recs[0].Name != "41-1" || recs[1].State != StateDeleted {
		t.Fatalf("v1 records decoded as %+v %+v", recs[0], recs[1])
	}
}

func TestBoltStoreRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "future.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucketIfNotExists(bucketMeta)
		return b.Put(keySchema, []byte("99"))
	})
	db.Close()
	if _, err := OpenBolt(path); !errors.Is(err, ErrSchema) {
		t.Fatalf("newer schema: %v, want ErrSchema", err)
	}
}
