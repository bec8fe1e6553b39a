// Package cache is the local block cache shared by every flist mount of a
// node: plain (decrypted, decompressed) blocks kept on the cache filesystem
// as <dir>/<hex[0:2]>/<hex[2:4]>/<hex>, the rfs layout.
//
// A block is fetched from its store on first use, verified against its key
// (the hash of its plain text) and only then written, through a temporary
// file and a rename, so concurrent processes sharing the directory never see
// a partial block. A block that fails verification is never cached: the read
// that wanted it fails and the next read fetches again. A cached file is
// re-verified the first time a process uses it (for each key it is read
// with); a damaged one is fetched again and replaced. Fetches that take
// longer than Config.FetchTimeout fail, so a store that is down gives
// errors, never a hang.
//
// Concurrent reads of one block share one fetch, which runs with a context
// of its own: a reader that gives up (its context ends) stops waiting, the
// others still get the block. A shared fetch is keyed by the block's id
// and key, so a reference with a wrong key fails alone.
package cache

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/zos-go/zos/pkg/flist/block"
	"github.com/zos-go/zos/pkg/flist/store"
)

// ErrFetch wraps every failure to get a block into the cache.
var ErrFetch = errors.New("block fetch failed")

// Config configures a Cache.
type Config struct {
	// Dir is the cache directory.
	Dir string
	// FetchTimeout bounds one block fetch from the store, decoding
	// included.
	FetchTimeout time.Duration
}

// DefaultConfig returns a 30 s fetch timeout; Dir must be set.
func DefaultConfig() Config { return Config{FetchTimeout: 30 * time.Second} }

// Validate checks the configuration.
func (c Config) Validate() error {
	if !filepath.IsAbs(c.Dir) {
		return fmt.Errorf("cache dir %q: not an absolute path", c.Dir)
	}
	if c.FetchTimeout <= 0 {
		return fmt.Errorf("cache fetch timeout %v: not positive", c.FetchTimeout)
	}
	return nil
}

// Stats counts cache activity since New.
type Stats struct {
	Hits, Fetches, FetchErrors, Corrupt int64
}

// Cache serves plain blocks from the cache directory, fetching misses
// from a store. It is safe for concurrent use.
type Cache struct {
	cfg      Config
	store    store.Store
	codec    block.Codec
	log      *slog.Logger
	group    singleflight.Group
	verified sync.Map // flightKey -> struct{}: the cached file matches this id and key
	prefetch chan struct{}
	wg       sync.WaitGroup

	hits, fetches, fetchErrors, corrupt atomic.Int64
}

// New returns a cache over st for blocks of codec.
func New(cfg Config, st store.Store, codec block.Codec, log *slog.Logger) (*Cache, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Cache{cfg: cfg, store: st, codec: codec, log: log, prefetch: make(chan struct{}, 4)}, nil
}

// Prefetch fetches b in the background when it is not cached and fewer
// than four prefetches run; errors are left to the read that needs the
// block.
func (c *Cache) Prefetch(b block.Block) {
	if _, ok := c.verified.Load(flightKey(b)); ok {
		return
	}
	if _, err := os.Stat(Path(c.cfg.Dir, b.ID)); err == nil {
		return
	}
	select {
	case c.prefetch <- struct{}{}:
	default:
		return
	}
	c.wg.Add(1)
	go func() {
		defer func() { <-c.prefetch; c.wg.Done() }()
		if f, err := c.Open(context.Background(), b); err == nil {
			f.Close()
		}
	}()
}

// Close waits for the prefetches in flight.
func (c *Cache) Close() { c.wg.Wait() }

// Path returns where the plain content of block id is cached.
func Path(dir string, id []byte) string {
	h := hex.EncodeToString(id)
	if len(h) < 4 {
		return filepath.Join(dir, "short", h)
	}
	return filepath.Join(dir, h[0:2], h[2:4], h)
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	return Stats{Hits: c.hits.Load(), Fetches: c.fetches.Load(), FetchErrors: c.fetchErrors.Load(), Corrupt: c.corrupt.Load()}
}

// flightKey identifies a block reference: its id and its key.
func flightKey(b block.Block) string {
	return hex.EncodeToString(b.ID) + ":" + hex.EncodeToString(b.Key)
}

// Open returns the cached plain content of b, opened read-only, fetching it
// first when needed. Errors of the fetch wrap ErrFetch (and
// store.ErrNotFound or block.ErrCorrupt when that is the cause). When ctx
// ends first, Open returns an error wrapping ctx's error (not ErrFetch):
// the fetch goes on for the other readers of the block and fills the
// cache.
func (c *Cache) Open(ctx context.Context, b block.Block) (*os.File, error) {
	h := hex.EncodeToString(b.ID)
	p := Path(c.cfg.Dir, b.ID)
	key := flightKey(b)
	for attempt := 0; ; attempt++ {
		if f, ok := c.openCached(p, key, b); ok {
			c.hits.Add(1)
			return f, nil
		}
		ch := c.group.DoChan(key, func() (any, error) {
			// the fetch is shared: it must not die with the first caller
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.FetchTimeout)
			defer cancel()
			return nil, c.fetch(fctx, p, h, key, b)
		})
		select {
		case res := <-ch:
			if res.Err != nil {
				return nil, res.Err
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("block %s: %w", h, ctx.Err())
		}
		f, err := os.Open(p)
		if err == nil {
			return f, nil
		}
		c.verified.Delete(key)
		if !errors.Is(err, os.ErrNotExist) || attempt > 0 {
			return nil, fmt.Errorf("block %s: %w: %w", h, ErrFetch, err)
		}
		// evicted right after the fetch: fetch again, once
	}
}

func (c *Cache) openCached(p, key string, b block.Block) (*os.File, bool) {
	if _, ok := c.verified.Load(key); ok {
		if f, err := os.Open(p); err == nil {
			return f, true
		}
		c.verified.Delete(key)
		return nil, false
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, false
	}
	if !block.Verify(c.codec, b, data) {
		// damaged, or b's key is wrong: the fetch tells, and replaces the
		// file only in the first case (removing it here would take a good
		// block from every reader with the right key)
		c.corrupt.Add(1)
		c.log.Warn("cached block does not match its key, fetching it again", "block", hex.EncodeToString(b.ID), "path", p)
		return nil, false
	}
	c.verified.Store(key, struct{}{})
	f, err := os.Open(p)
	return f, err == nil
}

func (c *Cache) fetch(ctx context.Context, p, h, key string, b block.Block) error {
	if _, ok := c.verified.Load(key); ok {
		if _, err := os.Stat(p); err == nil {
			return nil // fetched by the flight before ours
		}
	}
	c.fetches.Add(1)
	start := time.Now()
	data, err := c.store.Get(ctx, b.ID)
	if err != nil {
		c.fetchErrors.Add(1)
		c.log.Error("block fetch failed", "block", h, "store", c.store.String(), "err", err)
		return fmt.Errorf("block %s: %w: %w", h, ErrFetch, err)
	}
	plain, err := c.codec.Decode(b, data)
	if err != nil {
		c.fetchErrors.Add(1)
		c.corrupt.Add(1)
		c.log.Error("block from store is corrupt", "block", h, "store", c.store.String(), "err", err)
		return fmt.Errorf("block %s: %w: %w", h, ErrFetch, err)
	}
	if err := writeAtomic(p, plain); err != nil {
		c.fetchErrors.Add(1)
		c.log.Error("block cache write failed", "block", h, "err", err)
		return fmt.Errorf("block %s: %w: %w", h, ErrFetch, err)
	}
	c.verified.Store(key, struct{}{})
	c.log.Debug("block fetched", "block", h, "bytes", len(plain), "duration", time.Since(start))
	return nil
}

func writeAtomic(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
