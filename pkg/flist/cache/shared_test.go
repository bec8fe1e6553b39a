package cache

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/zos-go/zos/pkg/flist/block"
	"github.com/zos-go/zos/pkg/flist/store"
)

// slowStore answers every Get after delay (or when ctx ends).
type slowStore struct {
	store.Store
	delay time.Duration
}

func (s slowStore) Get(ctx context.Context, key []byte) ([]byte, error) {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Store.Get(ctx, key)
}

// TestReaderGivingUpDoesNotFailOthers: the first reader of a block starts
// the fetch and gives up; the readers waiting on the same fetch still get
// the block, and the one who gave up hears of its own cancellation, not of
// a failed fetch.
func TestReaderGivingUpDoesNotFailOthers(t *testing.T) {
	c, cs, _ := setup(t, block.RFS)
	c.cfg.FetchTimeout = 5 * time.Second
	c.store = slowStore{Store: cs, delay: 300 * time.Millisecond}
	plain := bytes.Repeat([]byte("shared "), 1000)
	b := put(t, cs, block.RFS, plain)

	first, cancel := context.WithCancel(context.Background())
	firstErr := make(chan error, 1)
	go func() {
		f, err := c.Open(first, b)
		if err == nil {
			f.Close()
		}
		firstErr <- err
	}()
	time.Sleep(50 * time.Millisecond) // the first reader's fetch is on
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			f, err := c.Open(context.Background(), b)
			if err != nil {
				t.Errorf("reader waiting on the shared fetch: %v", err)
				return
			}
			if got := readAll(t, f); !bytes.Equal(got, plain) {
				t.Error("wrong content")
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-firstErr; !errors.Is(err, context.Canceled) || errors.Is(err, ErrFetch) {
		t.Errorf("reader who gave up: %v, want context.Canceled and no ErrFetch", err)
	}
	wg.Wait()
	if n := cs.gets.Load(); n != 1 {
		t.Errorf("%d store reads, want 1 shared fetch", n)
	}
}

// TestWrongKeyFailsAlone: a reference to a block with a wrong key shares
// no fetch with the right reference: the right one always gets the block,
// the wrong one always fails as corrupt, whatever their order.
func TestWrongKeyFailsAlone(t *testing.T) {
	c, cs, _ := setup(t, block.RFS)
	c.cfg.FetchTimeout = 5 * time.Second
	c.store = slowStore{Store: cs, delay: 100 * time.Millisecond}
	plain := []byte("the right content")
	good := put(t, cs, block.RFS, plain)
	bad := block.Block{ID: good.ID, Key: bytes.Repeat([]byte{1}, len(good.Key))}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if i%2 == 0 {
				if _, err := c.Open(context.Background(), bad); !errors.Is(err, block.ErrCorrupt) {
					t.Errorf("wrong key: %v, want ErrCorrupt", err)
				}
				return
			}
			f, err := c.Open(context.Background(), good)
			if err != nil {
				t.Errorf("right key next to a wrong one: %v", err)
				return
			}
			if got := readAll(t, f); !bytes.Equal(got, plain) {
				t.Errorf("right key: %q", got)
			}
		})
	}
	wg.Wait()
	// cached and verified for the right key: the wrong one still fails
	if _, err := c.Open(context.Background(), bad); !errors.Is(err, block.ErrCorrupt) {
		t.Errorf("wrong key of a cached block: %v, want ErrCorrupt", err)
	}
}
