// Package build creates flists from a directory tree: it walks the tree
// (regular files, directories, symlinks, hard links, devices, fifos,
// sockets, with modes, owners, times and extended attributes), splits file
// contents into 512 KiB chunks, encodes them (hash, compress, encrypt) and
// uploads the new ones to a block store in parallel, then writes the
// metadata in either flist format.
package build

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/pkg/flist/block"
	"github.com/zos-go/zos/pkg/flist/format"
	"github.com/zos-go/zos/pkg/flist/store"
)

// ErrSource is returned for a source that cannot be packed.
var ErrSource = errors.New("invalid flist source")

// Config configures Build.
type Config struct {
	// Kind of flist to write (default rfs).
	Kind format.Kind
	// Workers encode and upload chunks in parallel (default 8).
	Workers int
	// Routes written into the flist; when empty, one route for every id
	// to StoreURL.
	Routes []format.Route
	// StoreURL is the store the blocks go to, as flist readers should
	// reach it (its password is stripped before it is written).
	StoreURL string
	// Tags are written into the flist (rfs tag table, 0-flist metadata).
	Tags map[string]string
	// Progress, when set, is called with the bytes encoded so far and the
	// total, never concurrently; it must be quick.
	Progress func(done, total int64)
}

// Result reports what Build did.
type Result struct {
	Entries       int
	Files         int
	Bytes         int64 // content bytes read
	Blocks        int   // block references written
	UniqueBlocks  int   // distinct blocks (after dedup)
	UploadedBytes int64 // encoded bytes sent to the store
	Duration      time.Duration
}

type entry struct {
	rel    string
	parent int // index in entries, -1 for the root
	st     unix.Stat_t
	target string
	xattrs []format.Xattr
	linkOf int // index of the first name of a hard-linked file, or -1
	size   int64
	blocks []block.Block
}

// Build packs the tree at src into an flist file at out, uploading blocks
// to st. Nothing is written at out unless it succeeds.
func Build(ctx context.Context, src, out string, st store.Store, cfg Config, log *slog.Logger) (Result, error) {
	start := time.Now()
	if cfg.Kind == 0 {
		cfg.Kind = format.KindRFS
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if len(cfg.Routes) == 0 {
		if cfg.StoreURL == "" {
			return Result{}, fmt.Errorf("build: no routes and no store url: %w", ErrSource)
		}
		cfg.Routes = []format.Route{{Start: 0, End: 255, URL: store.StripPassword(cfg.StoreURL)}}
	}
	entries, total, err := scan(src)
	if err != nil {
		return Result{}, err
	}
	log.Info("flist source scanned", "src", src, "entries", len(entries), "bytes", total)
	res := Result{Entries: len(entries)}
	if err := upload(ctx, src, entries, st, cfg, total, &res); err != nil {
		return res, err
	}
	if err := write(ctx, out, entries, cfg, &res); err != nil {
		return res, err
	}
	res.Duration = time.Since(start)
	log.Info("flist created", "out", out, "entries", res.Entries, "files", res.Files, "bytes", res.Bytes,
		"unique_blocks", res.UniqueBlocks, "uploaded_bytes", res.UploadedBytes, "duration", res.Duration)
	return res, nil
}

// scan walks src in name order, parents first.
func scan(src string) ([]*entry, int64, error) {
	var root unix.Stat_t
	if err := unix.Lstat(src, &root); err != nil {
		return nil, 0, fmt.Errorf("build %s: %w", src, err)
	}
	if root.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, 0, fmt.Errorf("build %s: not a directory: %w", src, ErrSource)
	}
	entries := []*entry{{rel: "", parent: -1, st: root, linkOf: -1}}
	links := map[[2]uint64]int{}
	var total int64
	for i := 0; i < len(entries); i++ {
		dir := entries[i]
		if dir.st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		// depth first would need a stack; a breadth first queue keeps
		// parents before children, which is all writers need
		names, err := readNames(filepath.Join(src, dir.rel))
		if err != nil {
			return nil, 0, fmt.Errorf("build %s: %w", filepath.Join(src, dir.rel), err)
		}
		for _, name := range names {
			if err := format.ValidName(name); err != nil {
				return nil, 0, fmt.Errorf("build %s: %w", filepath.Join(src, dir.rel, name), err)
			}
			rel := filepath.Join(dir.rel, name)
			e := &entry{rel: rel, parent: i, linkOf: -1}
			p := filepath.Join(src, rel)
			if err := unix.Lstat(p, &e.st); err != nil {
				return nil, 0, fmt.Errorf("build %s: %w", p, err)
			}
			switch e.st.Mode & unix.S_IFMT {
			case unix.S_IFLNK:
				if e.target, err = os.Readlink(p); err != nil {
					return nil, 0, fmt.Errorf("build %s: %w", p, err)
				}
			case unix.S_IFREG:
				if e.st.Nlink > 1 {
					k := [2]uint64{e.st.Dev, e.st.Ino}
					if first, ok := links[k]; ok {
						e.linkOf = first
					} else {
						links[k] = len(entries)
					}
				}
				if e.linkOf < 0 {
					total += e.st.Size
				}
			}
			if e.xattrs, err = readXattrs(p); err != nil {
				return nil, 0, fmt.Errorf("build %s: xattrs: %w", p, err)
			}
			entries = append(entries, e)
		}
	}
	var err error
	if entries[0].xattrs, err = readXattrs(src); err != nil {
		return nil, 0, fmt.Errorf("build %s: xattrs: %w", src, err)
	}
	return entries, total, nil
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

// readXattrs returns the extended attributes of p (not following symlinks),
// except overlayfs' own.
func readXattrs(p string) ([]format.Xattr, error) {
	size, err := unix.Llistxattr(p, nil)
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) || size == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	if size, err = unix.Llistxattr(p, buf); err != nil {
		return nil, err
	}
	var out []format.Xattr
	for _, name := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		if name == "" || strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		vsize, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			if errors.Is(err, unix.ENODATA) {
				continue
			}
			return nil, err
		}
		val := make([]byte, vsize)
		if vsize, err = unix.Lgetxattr(p, name, val); err != nil {
			return nil, err
		}
		out = append(out, format.Xattr{Name: name, Value: val[:vsize]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

type chunk struct {
	file  *entry
	index int
	data  []byte
}

// upload reads every regular file in chunks and has workers encode and
// store them, each distinct block once.
func upload(ctx context.Context, src string, entries []*entry, st store.Store, cfg Config, total int64, res *Result) error {
	codec := cfg.Kind.Codec()
	g, ctx := errgroup.WithContext(ctx)
	chunks := make(chan chunk, cfg.Workers)
	pool := sync.Pool{New: func() any { b := make([]byte, block.ChunkSize); return &b }}
	var (
		mu       sync.Mutex
		pmu      sync.Mutex
		seen     = map[string]bool{}
		done     atomic.Int64
		uploaded atomic.Int64
	)
	for range cfg.Workers {
		g.Go(func() error {
			for c := range chunks {
				b, data, err := codec.Encode(c.data)
				pool.Put(&c.data)
				if err != nil {
					return fmt.Errorf("build %s: chunk %d: %w", c.file.rel, c.index, err)
				}
				mu.Lock()
				c.file.blocks[c.index] = b
				key := hex.EncodeToString(b.ID)
				fresh := !seen[key]
				seen[key] = true
				mu.Unlock()
				if fresh {
					if err := st.Set(ctx, b.ID, data); err != nil {
						return fmt.Errorf("build %s: upload chunk %d: %w", c.file.rel, c.index, err)
					}
					uploaded.Add(int64(len(data)))
				}
				pmu.Lock() // Progress sees increasing values, one call at a time
				if n := done.Add(int64(len(c.data))); cfg.Progress != nil {
					cfg.Progress(n, total)
				}
				pmu.Unlock()
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(chunks)
		for _, e := range entries {
			if e.st.Mode&unix.S_IFMT != unix.S_IFREG || e.linkOf >= 0 {
				continue
			}
			if err := readChunks(ctx, filepath.Join(src, e.rel), e, &mu, &pool, chunks); err != nil {
				return err
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return err
	}
	res.UniqueBlocks = len(seen)
	res.UploadedBytes = uploaded.Load()
	res.Bytes = done.Load()
	return nil
}

func readChunks(ctx context.Context, p string, e *entry, mu *sync.Mutex, pool *sync.Pool, out chan<- chunk) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("build %s: %w", p, err)
	}
	defer f.Close()
	for i := 0; ; i++ {
		buf := *pool.Get().(*[]byte)
		n, err := io.ReadFull(f, buf[:block.ChunkSize])
		if n == 0 {
			pool.Put(&buf)
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("build %s: %w", p, err)
		}
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("build %s: %w", p, err)
		}
		mu.Lock()
		e.blocks = append(e.blocks, block.Block{})
		e.size += int64(n)
		mu.Unlock()
		select {
		case out <- chunk{file: e, index: i, data: buf[:n]}:
		case <-ctx.Done():
			return ctx.Err()
		}
		if n < block.ChunkSize {
			return nil
		}
	}
}

func write(ctx context.Context, out string, entries []*entry, cfg Config, res *Result) error {
	var w format.Writer
	var err error
	if cfg.Kind == format.KindZero {
		w, err = format.CreateZero(ctx, out)
	} else {
		w, err = format.CreateRFS(ctx, out)
	}
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			w.Abort()
		}
	}()
	inos := make([]uint64, len(entries))
	for i, e := range entries {
		fe := format.Entry{
			Name:   filepath.Base(e.rel),
			Mode:   e.st.Mode,
			UID:    e.st.Uid,
			GID:    e.st.Gid,
			Rdev:   e.st.Rdev,
			Mtime:  e.st.Mtim.Sec,
			Ctime:  e.st.Ctim.Sec,
			Target: e.target,
			Xattrs: e.xattrs,
		}
		if e.parent >= 0 {
			fe.Parent = inos[e.parent]
		}
		switch e.st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			src := e
			if e.linkOf >= 0 {
				src = entries[e.linkOf]
				fe.LinkTo = inos[e.linkOf]
			}
			fe.Size, fe.Blocks = uint64(src.size), src.blocks
			res.Files++
			res.Blocks += len(src.blocks)
		case syscall.S_IFLNK:
			fe.Size = uint64(len(e.target))
		case syscall.S_IFDIR:
			fe.Size = uint64(e.st.Size)
		}
		if inos[i], err = w.Add(ctx, fe); err != nil {
			return fmt.Errorf("build %s: %w", e.rel, err)
		}
	}
	keys := make([]string, 0, len(cfg.Tags))
	for k := range cfg.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := w.Tag(ctx, k, cfg.Tags[k]); err != nil {
			return err
		}
	}
	for _, r := range cfg.Routes {
		if err := w.Route(ctx, r); err != nil {
			return err
		}
	}
	if err := w.Close(ctx); err != nil {
		return err
	}
	ok = true
	return nil
}
