package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/pkg/flist/block"
)

var (
	// ErrIncomplete is returned by Assemble when a block of the file is
	// not cached yet.
	ErrIncomplete = errors.New("file not fully cached")
	// ErrNoReflink is returned by Assemble when the cache filesystem
	// cannot share extents between files (not btrfs or xfs).
	ErrNoReflink = errors.New("cache filesystem has no reflink")
)

// noReflink is set once the cache filesystem refused a reflink.
var noReflink atomic.Bool

// Peek returns the cached plain content of b, opened, without fetching
// it; ok is false when it is not cached or does not match b.
func (c *Cache) Peek(b block.Block) (*os.File, bool) {
	return c.openCached(Path(c.cfg.Dir, b.ID), flightKey(b), b)
}

// filePath is where the assembled content of a file with these blocks is
// kept: <dir>/files/<h[0:2]>/<h>, h = SHA-256 of the block ids.
func (c *Cache) filePath(blocks []block.Block) string {
	h := sha256.New()
	for _, b := range blocks {
		h.Write(b.ID)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	return filepath.Join(c.cfg.Dir, "files", sum[:2], sum)
}

// Assemble returns, opened read-only, one file holding the whole content
// of a file made of blocks (chunk bytes each, size in total), built from
// the cached blocks by reflink, so it takes no extra space. The kernel can
// then serve the file directly (FUSE passthrough). It never fetches:
// ErrIncomplete tells that a block is missing, ErrNoReflink that the
// cache filesystem cannot share extents.
func (c *Cache) Assemble(ctx context.Context, blocks []block.Block, chunk, size int64) (*os.File, error) {
	if noReflink.Load() {
		return nil, ErrNoReflink
	}
	if len(blocks) == 0 || chunk <= 0 || size <= int64(len(blocks)-1)*chunk || size > int64(len(blocks))*chunk {
		return nil, fmt.Errorf("assemble %d blocks of %d bytes into %d: %w", len(blocks), chunk, size, block.ErrCorrupt)
	}
	p := c.filePath(blocks)
	if f, err := os.Open(p); err == nil {
		if st, err := f.Stat(); err == nil && st.Size() == size {
			return f, nil
		}
		f.Close()
		_ = os.Remove(p)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	for i, b := range blocks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		src, cached := c.Peek(b)
		if !cached {
			return nil, ErrIncomplete
		}
		want := chunk
		if i == len(blocks)-1 {
			want = size - int64(i)*chunk
		}
		st, err := src.Stat()
		if err != nil || st.Size() != want {
			src.Close()
			return nil, fmt.Errorf("assemble: block %d of %d bytes, want %d: %w", i, st.Size(), want, block.ErrCorrupt)
		}
		err = unix.IoctlFileCloneRange(int(tmp.Fd()), &unix.FileCloneRange{
			Src_fd: int64(src.Fd()), Src_offset: 0, Src_length: 0, Dest_offset: uint64(int64(i) * chunk),
		})
		src.Close()
		if err != nil {
			if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
				noReflink.Store(true)
				c.log.Info("cache filesystem cannot reflink: files are served block by block", "dir", c.cfg.Dir, "err", err)
				return nil, ErrNoReflink
			}
			return nil, fmt.Errorf("assemble: reflink block %d: %w", i, err)
		}
	}
	if err := os.Chmod(tmp.Name(), 0o444); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return nil, err
	}
	ok = true
	tmp.Close()
	return os.Open(p) // read-only: the kernel reads it for the mount
}
