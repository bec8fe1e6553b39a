package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zos-go/zos/pkg/flist/block"
	"github.com/zos-go/zos/pkg/flist/store"
)

// countingStore counts Gets and can be told to hang.
type countingStore struct {
	store.Store
	gets atomic.Int64
	hang atomic.Bool
}

func (s *countingStore) Get(ctx context.Context, key []byte) ([]byte, error) {
	s.gets.Add(1)
	if s.hang.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.Store.Get(ctx, key)
}

func setup(t *testing.T, codec block.Codec) (*Cache, *countingStore, string) {
	t.Helper()
	storeDir := t.TempDir()
	inner, err := store.Open("dir://"+storeDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: inner}
	cfg := DefaultConfig()
	cfg.Dir = t.TempDir()
	cfg.FetchTimeout = 300 * time.Millisecond
	c, err := New(cfg, cs, codec, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	return c, cs, storeDir
}

func put(t *testing.T, s store.Store, codec block.Codec, plain []byte) block.Block {
	t.Helper()
	b, data, err := codec.Encode(plain)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Set(context.Background(), b.ID, data); err != nil {
		t.Fatal(err)
	}
	return b
}

func readAll(t *testing.T, f *os.File) []byte {
	t.Helper()
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFetchOnceThenHit(t *testing.T) {
	for _, codec := range []block.Codec{block.RFS, block.Zero} {
		c, cs, _ := setup(t, codec)
		plain := bytes.Repeat([]byte("flist "), 10000)
		b := put(t, cs, codec, plain)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				f, err := c.Open(context.Background(), b)
				if err != nil {
					t.Error(err)
					return
				}
				if got := readAll(t, f); !bytes.Equal(got, plain) {
					t.Errorf("%s: wrong content", codec.Name())
				}
			})
		}
		wg.Wait()
		if n := cs.gets.Load(); n != 1 {
			t.Errorf("%s: %d store reads for one block, want 1", codec.Name(), n)
		}
		if _, err := os.Stat(Path(c.cfg.Dir, b.ID)); err != nil {
			t.Errorf("not cached at the rfs path: %v", err)
		}
	}
}

func TestCorruptBlockFromStoreIsNotCached(t *testing.T) {
	c, cs, storeDir := setup(t, block.RFS)
	plain := []byte("good content")
	b := put(t, cs, block.RFS, plain)
	var p string
	filepath.WalkDir(storeDir, func(path string, d os.DirEntry, err error) error {
		if !d.IsDir() {
			p = path
		}
		return nil
	})
	good, _ := os.ReadFile(p)
	bad := bytes.Clone(good)
	bad[len(bad)/2] ^= 0xff
	os.WriteFile(p, bad, 0o644)
	_, err := c.Open(context.Background(), b)
	if !errors.Is(err, ErrFetch) || !errors.Is(err, block.ErrCorrupt) {
		t.Fatalf("corrupt block: %v, want ErrFetch and ErrCorrupt", err)
	}
	if _, err := os.Stat(Path(c.cfg.Dir, b.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("corrupt block was cached: %v", err)
	}
	os.WriteFile(p, good, 0o644)
	f, err := c.Open(context.Background(), b)
	if err != nil {
		t.Fatalf("after repair: %v", err)
	}
	if got := readAll(t, f); !bytes.Equal(got, plain) {
		t.Fatalf("after repair: %q", got)
	}
}

func TestDamagedCacheFileIsFetchedAgain(t *testing.T) {
	c, cs, _ := setup(t, block.Zero)
	plain := []byte("zero content")
	b := put(t, cs, block.Zero, plain)
	p := Path(c.cfg.Dir, b.ID)
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("bit rot"), 0o644)
	f, err := c.Open(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, f); !bytes.Equal(got, plain) {
		t.Fatalf("got %q", got)
	}
	if s := c.Stats(); s.Corrupt != 1 || s.Fetches != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestStoreDownTimesOut(t *testing.T) {
	c, cs, _ := setup(t, block.RFS)
	b := put(t, cs, block.RFS, []byte("x"))
	cs.hang.Store(true)
	start := time.Now()
	_, err := c.Open(context.Background(), b)
	if !errors.Is(err, ErrFetch) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hanging store: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
	cs.hang.Store(false)
	if _, err := c.Open(context.Background(), b); err != nil {
		t.Fatalf("store back: %v", err)
	}
}

func TestMissingBlock(t *testing.T) {
	c, _, _ := setup(t, block.RFS)
	b, _, _ := block.RFS.Encode([]byte("never stored"))
	if _, err := c.Open(context.Background(), b); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
}

func TestEvict(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	write := func(name string, size int, age time.Duration) string {
		p := filepath.Join(dir, name[:2], name[2:4], name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, make([]byte, size), 0o644)
		os.Chtimes(p, now.Add(-age), now.Add(-age))
		return p
	}
	old := write("aaaa01", 10, 40*24*time.Hour)
	mid := write("bbbb02", 100, 2*time.Hour)
	fresh := write("cccc03", 100, time.Minute)
	tmp := filepath.Join(dir, "aa", "aa", ".tmp-123")
	os.WriteFile(tmp, []byte("x"), 0o644)
	os.Chtimes(tmp, now.Add(-2*time.Hour), now.Add(-2*time.Hour))
	res, err := Evict(context.Background(), dir, Policy{MaxAge: 30 * 24 * time.Hour, MaxBytes: 150}, now)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{old: false, mid: false, fresh: true, tmp: false} {
		_, err := os.Stat(p)
		if (err == nil) != want {
			t.Errorf("%s kept=%v, want %v", filepath.Base(p), err == nil, want)
		}
	}
	if res.Removed != 3 || res.KeptBytes != 100 {
		t.Errorf("result %+v", res)
	}
}
