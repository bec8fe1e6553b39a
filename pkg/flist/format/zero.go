package format

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os/user"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"capnproto.org/go/capnp/v3"
	"golang.org/x/crypto/blake2b"
	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/pkg/flist/block"
	"github.com/zos-go/zos/pkg/flist/format/zeroschema"
)

// ZeroDBName is the SQLite database inside a 0-flist archive.
const ZeroDBName = "flistdb.sqlite3"

// ZeroRouterName is the optional block router inside a 0-flist archive.
const ZeroRouterName = "router.yaml"

// zeroDefaultAccess is what 0-fs gives an entry without ACL.
var zeroDefaultAccess = access{perm: 0o400, uid: 1000, gid: 1000}

// maxEntryBytes bounds one entries value (a directory message).
const maxEntryBytes = 256 << 20

// ZeroDirKey returns the entries key of the directory at slash-separated
// path p relative to the root: lowercase hex of BLAKE2b-128(p).
func ZeroDirKey(p string) string {
	h, _ := blake2b.New(16, nil)
	h.Write([]byte(strings.Trim(p, "/")))
	return hex.EncodeToString(h.Sum(nil))
}

type access struct {
	perm     uint32
	uid, gid uint32
}

type zeroReader struct {
	db     *sql.DB
	bad    BadEntryFunc
	routes []Route

	mu     sync.Mutex
	next   uint64                   // guarded by mu
	inos   map[string]uint64        // path -> ino; guarded by mu
	dirs   map[uint64]string        // dir ino -> path; guarded by mu
	blocks map[uint64][]block.Block // guarded by mu
	acls   map[string]access        // guarded by mu
	names  map[string]uint32        // user/group name lookups; guarded by mu
}

func openZero(ctx context.Context, db *sql.DB, routes []Route, bad BadEntryFunc) (*zeroReader, error) {
	ok, err := tableExists(ctx, db, "entries")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("0-flist without entries table: %w", ErrCorrupt)
	}
	return &zeroReader{
		db: db, bad: bad, routes: routes, next: RootIno + 1,
		inos: map[string]uint64{"": RootIno}, dirs: map[uint64]string{RootIno: ""},
		blocks: map[uint64][]block.Block{}, acls: map[string]access{}, names: map[string]uint32{},
	}, nil
}

func (r *zeroReader) Kind() Kind { return KindZero }

func (r *zeroReader) value(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := r.db.QueryRowContext(ctx, "SELECT value FROM entries WHERE key = ?", key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("entry %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, queryError(ctx, "entry "+key, err)
	}
	if len(v) > maxEntryBytes {
		return nil, fmt.Errorf("entry %s: %d bytes: %w", key, len(v), ErrCorrupt)
	}
	return v, nil
}

func (r *zeroReader) dir(ctx context.Context, p string) (zeroschema.Dir, error) {
	v, err := r.value(ctx, ZeroDirKey(p))
	if err != nil {
		return zeroschema.Dir{}, fmt.Errorf("directory %q: %w", "/"+p, err)
	}
	msg, err := capnp.Unmarshal(v)
	if err != nil {
		return zeroschema.Dir{}, fmt.Errorf("directory %q: %v: %w", "/"+p, err, ErrCorrupt)
	}
	d, err := zeroschema.ReadRootDir(msg)
	if err != nil {
		return zeroschema.Dir{}, fmt.Errorf("directory %q: %v: %w", "/"+p, err, ErrCorrupt)
	}
	return d, nil
}

// access returns the owner and permissions of ACI key; 0-fs's default for
// a missing or unreadable ACI. It fails only when ctx ends before the ACI
// is read: a cancelled read is no answer, so it is not cached either.
func (r *zeroReader) access(ctx context.Context, key string) (access, error) {
	if key == "" {
		return zeroDefaultAccess, nil
	}
	r.mu.Lock()
	a, ok := r.acls[key]
	r.mu.Unlock()
	if ok {
		return a, nil
	}
	a = zeroDefaultAccess
	v, err := r.value(ctx, key)
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrCorrupt) {
		return a, fmt.Errorf("aci %s: %w", key, err)
	}
	if err == nil {
		if msg, err := capnp.Unmarshal(v); err == nil {
			if aci, err := zeroschema.ReadRootACI(msg); err == nil {
				uname, _ := aci.Uname()
				gname, _ := aci.Gname()
				a = access{
					perm: uint32(aci.Mode()) & 0o7777,
					uid:  r.resolve(aci.Uid(), uname, false),
					gid:  r.resolve(aci.Gid(), gname, true),
				}
			}
		}
	}
	r.mu.Lock()
	r.acls[key] = a
	r.mu.Unlock()
	return a, nil
}

// resolve returns the numeric id of an ACI owner: the id field when set,
// else the name as a number, else the host's id for that name, else 1000
// (what 0-fs does).
func (r *zeroReader) resolve(id int64, name string, group bool) uint32 {
	if id >= 0 && id <= 0xffffffff {
		return uint32(id)
	}
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(n)
	}
	cacheKey := "u:" + name
	if group {
		cacheKey = "g:" + name
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.names[cacheKey]; ok {
		return v
	}
	v := uint32(1000)
	if group {
		if g, err := user.LookupGroup(name); err == nil {
			if n, err := strconv.ParseUint(g.Gid, 10, 32); err == nil {
				v = uint32(n)
			}
		}
	} else if u, err := user.Lookup(name); err == nil {
		if n, err := strconv.ParseUint(u.Uid, 10, 32); err == nil {
			v = uint32(n)
		}
	}
	r.names[cacheKey] = v
	return v
}

func (r *zeroReader) Root(ctx context.Context) (Inode, error) {
	d, err := r.dir(ctx, "")
	if err != nil {
		return Inode{}, err
	}
	key, _ := d.Aclkey()
	a, err := r.access(ctx, key)
	if err != nil {
		return Inode{}, err
	}
	return Inode{
		Ino: RootIno, Name: "/", Mode: syscall.S_IFDIR | a.perm, Size: 4096, UID: a.uid, GID: a.gid,
		Mtime: int64(d.ModificationTime()), Ctime: int64(d.CreationTime()), Nlink: 1,
	}, nil
}

func (r *zeroReader) inoFor(p string) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ino, ok := r.inos[p]; ok {
		return ino
	}
	ino := r.next
	r.next++
	r.inos[p] = ino
	return ino
}

func (r *zeroReader) Children(ctx context.Context, dir uint64) ([]Inode, error) {
	r.mu.Lock()
	p, ok := r.dirs[dir]
	r.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("directory inode %d: %w", dir, ErrNotFound)
	}
	d, err := r.dir(ctx, p)
	if err != nil {
		return nil, err
	}
	contents, err := d.Contents()
	if err != nil {
		return nil, fmt.Errorf("directory %q: contents: %v: %w", "/"+p, err, ErrCorrupt)
	}
	out := make([]Inode, 0, contents.Len())
	for i := range contents.Len() {
		e := contents.At(i)
		name, err := e.Name()
		if err != nil {
			r.bad(dir, "", fmt.Errorf("entry %d of %q: name: %v: %w", i, "/"+p, err, ErrInvalidEntry))
			continue
		}
		if err := ValidName(name); err != nil {
			r.bad(dir, name, err)
			continue
		}
		in, blocks, err := r.entry(ctx, p, name, e)
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				// not a bad entry: the listing was cancelled
				return nil, fmt.Errorf("directory %q: %w", "/"+p, cerr)
			}
			r.bad(dir, name, err)
			continue
		}
		r.mu.Lock()
		if in.IsDir() {
			r.dirs[in.Ino] = path.Join(p, name)
		} else if in.IsRegular() {
			r.blocks[in.Ino] = blocks
		}
		r.mu.Unlock()
		out = append(out, in)
	}
	return sortAndDedup(dir, out, r.bad), nil
}

func (r *zeroReader) entry(ctx context.Context, dirPath, name string, e zeroschema.Inode) (Inode, []block.Block, error) {
	childPath := path.Join(dirPath, name)
	key, _ := e.Aclkey()
	a, err := r.access(ctx, key)
	if err != nil {
		return Inode{}, nil, err
	}
	in := Inode{
		Name: name, Size: e.Size(), UID: a.uid, GID: a.gid, Nlink: 1,
		Mtime: int64(e.ModificationTime()), Ctime: int64(e.CreationTime()),
	}
	var blocks []block.Block
	attrs := e.Attributes()
	switch attrs.Which() {
	case zeroschema.Inode_attributes_Which_dir:
		sub, err := attrs.Dir()
		if err != nil {
			return in, nil, fmt.Errorf("subdir: %v: %w", err, ErrInvalidEntry)
		}
		k, err := sub.Key()
		if err != nil || k != ZeroDirKey(childPath) {
			return in, nil, fmt.Errorf("subdir key %q is not the key of %q: %w", k, "/"+childPath, ErrInvalidEntry)
		}
		in.Mode, in.Size = syscall.S_IFDIR|a.perm, 4096
	case zeroschema.Inode_attributes_Which_file:
		f, err := attrs.File()
		if err != nil {
			return in, nil, fmt.Errorf("file: %v: %w", err, ErrInvalidEntry)
		}
		in.Mode = syscall.S_IFREG | a.perm
		in.ChunkSize = uint32(f.BlockSize()) * 4096
		if in.ChunkSize == 0 {
			in.ChunkSize = block.ChunkSize
		}
		list, err := f.Blocks()
		if err != nil {
			return in, nil, fmt.Errorf("file blocks: %v: %w", err, ErrInvalidEntry)
		}
		for i := range list.Len() {
			fb := list.At(i)
			id, err1 := fb.Hash()
			k, err2 := fb.Key()
			if err1 != nil || err2 != nil || len(id) != 16 || len(k) != 16 {
				return in, nil, fmt.Errorf("file block %d: bad hash or key: %w", i, ErrInvalidEntry)
			}
			blocks = append(blocks, block.Block{ID: append([]byte(nil), id...), Key: append([]byte(nil), k...)})
		}
		if uint64(len(blocks))*uint64(in.ChunkSize) < in.Size {
			return in, nil, fmt.Errorf("file of %d bytes with %d blocks of %d bytes: %w", in.Size, len(blocks), in.ChunkSize, ErrInvalidEntry)
		}
	case zeroschema.Inode_attributes_Which_link:
		l, err := attrs.Link()
		if err != nil {
			return in, nil, fmt.Errorf("link: %v: %w", err, ErrInvalidEntry)
		}
		if in.Target, err = l.Target(); err != nil {
			return in, nil, fmt.Errorf("link target: %v: %w", err, ErrInvalidEntry)
		}
		in.Mode, in.Size = syscall.S_IFLNK|0o777, uint64(len(in.Target))
	case zeroschema.Inode_attributes_Which_special:
		s, err := attrs.Special()
		if err != nil {
			return in, nil, fmt.Errorf("special: %v: %w", err, ErrInvalidEntry)
		}
		data, _ := s.Data()
		switch s.Type() {
		case zeroschema.Special_Type_socket:
			in.Mode = syscall.S_IFSOCK | a.perm
		case zeroschema.Special_Type_fifopipe:
			in.Mode = syscall.S_IFIFO | a.perm
		case zeroschema.Special_Type_block, zeroschema.Special_Type_chardev:
			in.Mode = syscall.S_IFCHR | a.perm
			if s.Type() == zeroschema.Special_Type_block {
				in.Mode = syscall.S_IFBLK | a.perm
			}
			major, minor, ok := parseDevice(string(data))
			if !ok {
				return in, nil, fmt.Errorf("device numbers %q: %w", data, ErrInvalidEntry)
			}
			in.Rdev = unix.Mkdev(major, minor)
		default:
			return in, nil, fmt.Errorf("special type %d: %w", s.Type(), ErrInvalidEntry)
		}
		in.Size = 0
	default:
		return in, nil, fmt.Errorf("attributes %d: %w", attrs.Which(), ErrInvalidEntry)
	}
	in.Ino = r.inoFor(childPath)
	return in, blocks, nil
}

func parseDevice(s string) (uint32, uint32, bool) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), ",")
	if !ok {
		return 0, 0, false
	}
	major, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 32)
	minor, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 32)
	return uint32(major), uint32(minor), err1 == nil && err2 == nil
}

func (r *zeroReader) Blocks(ctx context.Context, ino uint64) ([]block.Block, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.blocks[ino]
	if !ok {
		return nil, fmt.Errorf("file inode %d: %w", ino, ErrNotFound)
	}
	return b, nil
}

func (r *zeroReader) Xattrs(context.Context, uint64) ([]Xattr, error) { return nil, nil }

func (r *zeroReader) Tags(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	ok, err := tableExists(ctx, r.db, "metadata")
	if err != nil || !ok {
		return out, err
	}
	rows, err := r.db.QueryContext(ctx, "SELECT key, value FROM metadata")
	if err != nil {
		return nil, queryError(ctx, "metadata", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v sql.NullString
		if err := rows.Scan(&k, &v); err != nil {
			return nil, queryError(ctx, "metadata", err)
		}
		out[k.String] = v.String
	}
	if err := rows.Err(); err != nil {
		return nil, queryError(ctx, "metadata", err)
	}
	return out, nil
}

func (r *zeroReader) Routes(context.Context) ([]Route, error) { return r.routes, nil }

func (r *zeroReader) Close() error { return r.db.Close() }
