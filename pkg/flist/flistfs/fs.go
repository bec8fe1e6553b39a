package flistfs

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/zos-go/zos/pkg/flist/block"
	"github.com/zos-go/zos/pkg/flist/cache"
	"github.com/zos-go/zos/pkg/flist/format"
)

// tree is the read-only FUSE view of one flist.
type tree struct {
	r     format.Reader
	cache *cache.Cache
	log   *slog.Logger
	ttl   time.Duration
	// life is the mount's lifetime: loads and fetches run with it, never
	// with a request's context (see lazy)
	life context.Context
	// loadTimeout bounds one load of metadata (listing, block list,
	// xattrs) from the flist
	loadTimeout time.Duration
	// passthrough lets the kernel read fully cached files directly
	passthrough bool
}

// node is one inode of the flist. Its listing (directories), block list
// (files) and extended attributes are loaded on first use and kept, as
// long as the kernel keeps the inode: the flist never changes under a
// mount. See lazy for why no request's cancellation reaches a load.
type node struct {
	fs.Inode
	t  *tree
	in format.Inode

	children lazy[[]format.Inode] // sorted by name
	blocks   lazy[[]block.Block]
	xattrs   lazy[[]format.Xattr]
}

var (
	_ fs.NodeGetattrer      = (*node)(nil)
	_ fs.NodeLookuper       = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeReaddirer      = (*node)(nil)
	_ fs.NodeReadlinker     = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeGetxattrer     = (*node)(nil)
	_ fs.NodeListxattrer    = (*node)(nil)
	_ fs.NodeStatfser       = (*node)(nil)
	_ fs.FileReader         = (*handle)(nil)
	_ fs.FileReleaser       = (*handle)(nil)
	_ fs.FileGetattrer      = (*handle)(nil)
)

func (t *tree) fill(in format.Inode, out *fuse.Attr) {
	out.Ino = in.Ino
	out.Mode = in.Mode
	out.Size = in.Size
	out.Blocks = (in.Size + 511) / 512
	out.Blksize = 4096
	out.Nlink = max(in.Nlink, 1)
	if in.IsDir() {
		out.Nlink = 2
	}
	out.Owner = fuse.Owner{Uid: in.UID, Gid: in.GID}
	out.Rdev = uint32(in.Rdev)
	mt := uint64(max(in.Mtime, 0))
	ct := uint64(max(in.Ctime, 0))
	out.Mtime, out.Atime, out.Ctime = mt, mt, ct
}

func (n *node) Getattr(_ context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.t.fill(n.in, &out.Attr)
	out.SetTimeout(n.t.ttl)
	return 0
}

func (n *node) listing() ([]format.Inode, syscall.Errno) {
	children, err := n.children.get(n.t.life, n.t.loadTimeout, func(ctx context.Context) ([]format.Inode, error) {
		return n.t.r.Children(ctx, n.in.Ino)
	})
	if err != nil {
		n.t.log.Error("directory listing failed", "ino", n.in.Ino, "name", n.in.Name, "err", err)
		return nil, syscall.EIO
	}
	return children, 0
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if !n.in.IsDir() {
		return nil, syscall.ENOTDIR
	}
	children, errno := n.listing()
	if errno != 0 {
		return nil, errno
	}
	i := sort.Search(len(children), func(i int) bool { return children[i].Name >= name })
	if i == len(children) || children[i].Name != name {
		out.SetEntryTimeout(n.t.ttl)
		return nil, syscall.ENOENT
	}
	c := children[i]
	n.t.fill(c, &out.Attr)
	out.SetEntryTimeout(n.t.ttl)
	out.SetAttrTimeout(n.t.ttl)
	child := n.NewInode(ctx, &node{t: n.t, in: c}, fs.StableAttr{Mode: c.Type(), Ino: c.Ino})
	return child, 0
}

func (n *node) entries() ([]fuse.DirEntry, syscall.Errno) {
	children, errno := n.listing()
	if errno != 0 {
		return nil, errno
	}
	out := make([]fuse.DirEntry, 0, len(children)+2)
	parentIno := n.in.Ino
	if _, parent := n.Parent(); parent != nil {
		parentIno = parent.StableAttr().Ino
	}
	out = append(out, fuse.DirEntry{Name: ".", Mode: syscall.S_IFDIR, Ino: n.in.Ino},
		fuse.DirEntry{Name: "..", Mode: syscall.S_IFDIR, Ino: parentIno})
	for _, c := range children {
		out = append(out, fuse.DirEntry{Name: c.Name, Mode: c.Type(), Ino: c.Ino})
	}
	return out, 0
}

func (n *node) OpendirHandle(_ context.Context, _ uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if !n.in.IsDir() {
		return nil, 0, syscall.ENOTDIR
	}
	list, errno := n.entries()
	if errno != 0 {
		return nil, 0, errno
	}
	// the kernel may cache the listing: it never changes
	return fs.NewListDirStream(list), fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE, 0
}

func (n *node) Readdir(context.Context) (fs.DirStream, syscall.Errno) {
	list, errno := n.entries()
	if errno != 0 {
		return nil, errno
	}
	return fs.NewListDirStream(list), 0
}

func (n *node) Readlink(context.Context) ([]byte, syscall.Errno) {
	if n.in.Type() != syscall.S_IFLNK {
		return nil, syscall.EINVAL
	}
	return []byte(n.in.Target), 0
}

func (n *node) loadXattrs() ([]format.Xattr, syscall.Errno) {
	x, err := n.xattrs.get(n.t.life, n.t.loadTimeout, func(ctx context.Context) ([]format.Xattr, error) {
		return n.t.r.Xattrs(ctx, n.in.Ino)
	})
	if err != nil {
		n.t.log.Error("xattrs failed", "ino", n.in.Ino, "name", n.in.Name, "err", err)
		return nil, syscall.EIO
	}
	return x, 0
}

func (n *node) Getxattr(_ context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	xs, errno := n.loadXattrs()
	if errno != 0 {
		return 0, errno
	}
	for _, x := range xs {
		if x.Name == attr {
			if len(dest) < len(x.Value) {
				return uint32(len(x.Value)), syscall.ERANGE
			}
			return uint32(copy(dest, x.Value)), 0
		}
	}
	return 0, syscall.ENODATA
}

func (n *node) Listxattr(_ context.Context, dest []byte) (uint32, syscall.Errno) {
	xs, errno := n.loadXattrs()
	if errno != 0 {
		return 0, errno
	}
	var size int
	for _, x := range xs {
		size += len(x.Name) + 1
	}
	if len(dest) < size {
		return uint32(size), syscall.ERANGE
	}
	off := 0
	for _, x := range xs {
		off += copy(dest[off:], x.Name)
		dest[off] = 0
		off++
	}
	return uint32(size), 0
}

func (n *node) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	out.Bsize = 4096
	out.Frsize = 4096
	out.NameLen = format.MaxNameLen
	return 0
}

func (n *node) Open(_ context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if !n.in.IsRegular() {
		return nil, 0, syscall.EINVAL
	}
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	blocks, err := n.blocks.get(n.t.life, n.t.loadTimeout, func(ctx context.Context) ([]block.Block, error) {
		return n.t.r.Blocks(ctx, n.in.Ino)
	})
	if err != nil {
		n.t.log.Error("file blocks failed", "ino", n.in.Ino, "name", n.in.Name, "err", err)
		return nil, 0, syscall.EIO
	}
	chunk := int64(n.in.ChunkSize)
	if chunk <= 0 {
		chunk = block.ChunkSize
	}
	// an interrupted open still gets its passthrough file (see lazy)
	backing := n.t.backing(n.t.life, n.in, blocks, chunk)
	h := &handle{t: n.t, in: n.in, blocks: blocks, chunk: chunk, last: -1, backing: backing}
	// contents never change: let the kernel keep its page cache (a
	// passthrough open uses the backing file's cache instead)
	return h, fuse.FOPEN_KEEP_CACHE, 0
}

// backing returns a cached file holding the whole content of in, for the
// kernel to read directly (FUSE passthrough): the cached block of a
// one-block file, or the file assembled by reflink from its cached
// blocks. Nil when a block is not cached yet, or passthrough is off.
func (t *tree) backing(ctx context.Context, in format.Inode, blocks []block.Block, chunk int64) *os.File {
	if !t.passthrough || len(blocks) == 0 || in.Size == 0 {
		return nil
	}
	if len(blocks) == 1 {
		f, ok := t.cache.Peek(blocks[0])
		if !ok {
			return nil
		}
		if st, err := f.Stat(); err != nil || st.Size() != int64(in.Size) {
			f.Close()
			return nil
		}
		return f
	}
	f, err := t.cache.Assemble(ctx, blocks, chunk, int64(in.Size))
	if err != nil {
		if !errors.Is(err, cache.ErrIncomplete) && !errors.Is(err, cache.ErrNoReflink) {
			t.log.Warn("assemble cached file", "ino", in.Ino, "name", in.Name, "err", err)
		}
		return nil
	}
	return f
}

// PassthroughFd implements fs.FilePassthroughFder: reads of a fully
// cached file go from the kernel straight to the cache file.
func (h *handle) PassthroughFd() (int, bool) {
	if h.backing == nil {
		return 0, false
	}
	return int(h.backing.Fd()), true
}

// handle is an open regular file. It keeps the block files it read last
// open (reference counted, as reads run concurrently), so sequential reads
// do not reopen them.
type handle struct {
	t      *tree
	in     format.Inode
	blocks []block.Block
	chunk  int64
	// backing, when set, holds the whole content for passthrough
	backing *os.File

	mu   sync.Mutex
	open []*blockRef // guarded by mu; most recent first, at most keepOpen
	last int         // guarded by mu; the block read last
}

const keepOpen = 2

type blockRef struct {
	idx     int
	f       *os.File
	refs    int  // guarded by handle.mu
	dropped bool // guarded by handle.mu: out of h.open, close at refs 0
}

func (h *handle) acquire(idx int) (*blockRef, error) {
	h.mu.Lock()
	if idx == h.last+1 {
		// sequential reading: fetch the next blocks while this one is used
		for next := idx + 1; next <= idx+2 && next < len(h.blocks); next++ {
			h.t.cache.Prefetch(h.blocks[next])
		}
	}
	h.last = idx
	for _, r := range h.open {
		if r.idx == idx {
			r.refs++
			h.mu.Unlock()
			return r, nil
		}
	}
	h.mu.Unlock()
	// the wait for the block ignores the request's cancellation (an
	// interrupt, see lazy); the fetch is bounded by the cache's timeout
	f, err := h.t.cache.Open(h.t.life, h.blocks[idx])
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.open {
		if r.idx == idx { // opened concurrently
			f.Close()
			r.refs++
			return r, nil
		}
	}
	r := &blockRef{idx: idx, f: f, refs: 1}
	h.open = append([]*blockRef{r}, h.open...)
	if len(h.open) > keepOpen {
		last := h.open[keepOpen]
		h.open = h.open[:keepOpen]
		last.dropped = true
		if last.refs == 0 {
			last.f.Close()
		}
	}
	return r, nil
}

func (h *handle) release(r *blockRef) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r.refs--
	if r.dropped && r.refs == 0 {
		r.f.Close()
	}
}

func (h *handle) Read(_ context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	size := int64(h.in.Size)
	if off >= size || len(dest) == 0 {
		return fuse.ReadResultData(nil), 0
	}
	end := min(off+int64(len(dest)), size)
	n := int64(0)
	for pos := off; pos < end; {
		idx := int(pos / h.chunk)
		if idx >= len(h.blocks) {
			h.t.log.Error("file shorter than its size", "ino", h.in.Ino, "name", h.in.Name, "offset", pos)
			return nil, syscall.EIO
		}
		r, err := h.acquire(idx)
		if err != nil {
			h.t.log.Error("file read failed", "ino", h.in.Ino, "name", h.in.Name, "block", idx, "err", err)
			return nil, syscall.EIO
		}
		within := pos - int64(idx)*h.chunk
		want := min(end-pos, h.chunk-within)
		m, err := r.f.ReadAt(dest[n:n+want], within)
		h.release(r)
		if int64(m) < want {
			h.t.log.Error("block shorter than expected", "ino", h.in.Ino, "name", h.in.Name, "block", idx, "err", err)
			return nil, syscall.EIO
		}
		n += want
		pos += want
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *handle) Getattr(_ context.Context, out *fuse.AttrOut) syscall.Errno {
	h.t.fill(h.in, &out.Attr)
	out.SetTimeout(h.t.ttl)
	return 0
}

func (h *handle) Release(context.Context) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.open {
		r.dropped = true
		if r.refs == 0 {
			r.f.Close()
		}
	}
	h.open = nil
	if h.backing != nil {
		h.backing.Close()
		h.backing = nil
	}
	return 0
}
