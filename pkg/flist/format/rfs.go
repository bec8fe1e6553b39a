package format

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"syscall"

	"github.com/zos-go/zos/pkg/flist/block"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// rfsSchema is the rfs v2 schema (threefoldtech/rfs schema/schema.sql) plus
// our two extension tables.
const rfsSchema = `
CREATE TABLE IF NOT EXISTS inode (
    ino INTEGER PRIMARY KEY AUTOINCREMENT,
    parent INTEGER,
    name VARCHAR(255),
    size INTEGER,
    uid INTEGER,
    gid INTEGER,
    mode INTEGER,
    rdev INTEGER,
    ctime INTEGER,
    mtime INTEGER
);
CREATE INDEX IF NOT EXISTS parents ON inode (parent);
CREATE INDEX IF NOT EXISTS names ON inode (name);
CREATE TABLE IF NOT EXISTS extra (
    ino INTEGER PRIMARY KEY,
    data VARCHAR(4096)
);
CREATE TABLE IF NOT EXISTS block (
    ino INTEGER,
    id VARCHAR(32),
    key VARCHAR(32)
);
CREATE INDEX IF NOT EXISTS block_ino ON block (ino);
CREATE TABLE IF NOT EXISTS tag (
    key VARCHAR(10) PRIMARY KEY,
    value VARCHAR(255)
);
CREATE TABLE IF NOT EXISTS route (
    start integer,
    end integer,
    url VARCHAR(2048)
);
CREATE TABLE IF NOT EXISTS zos_xattr (
    ino INTEGER,
    name VARCHAR(255),
    value BLOB
);
CREATE INDEX IF NOT EXISTS zos_xattr_ino ON zos_xattr (ino);
CREATE TABLE IF NOT EXISTS zos_hardlink (
    ino INTEGER PRIMARY KEY,
    target INTEGER
);
`

// openSQLite opens path read-only and immutable (no locks, no journal).
func openSQLite(path string) (*sql.DB, error) {
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=ro&immutable=1"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	return db, nil
}

func tableExists(ctx context.Context, db *sql.DB, name string) (bool, error) {
	var n int
	err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", name).Scan(&n)
	if err != nil {
		return false, queryError(ctx, "sqlite schema", err)
	}
	return n > 0, nil
}

type rfsReader struct {
	db       *sql.DB
	bad      BadEntryFunc
	links    map[uint64]uint64 // hard link ino -> target ino
	nlink    map[uint64]uint32 // target ino -> names
	hasXattr bool
}

func openRFS(ctx context.Context, db *sql.DB, bad BadEntryFunc) (*rfsReader, error) {
	for _, t := range []string{"inode", "extra", "block", "route"} {
		ok, err := tableExists(ctx, db, t)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("rfs flist without table %s: %w", t, ErrCorrupt)
		}
	}
	r := &rfsReader{db: db, bad: bad, links: map[uint64]uint64{}, nlink: map[uint64]uint32{}}
	var err error
	if r.hasXattr, err = tableExists(ctx, db, "zos_xattr"); err != nil {
		return nil, err
	}
	hasLinks, err := tableExists(ctx, db, "zos_hardlink")
	if err != nil {
		return nil, err
	}
	if hasLinks {
		if err := r.loadLinks(ctx); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *rfsReader) loadLinks(ctx context.Context) error {
	rows, err := r.db.QueryContext(ctx, `SELECT h.ino, h.target FROM zos_hardlink h JOIN inode t ON t.ino = h.target
		WHERE t.mode & ? = ?`, syscall.S_IFMT, syscall.S_IFREG)
	if err != nil {
		return queryError(ctx, "hard links", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ino, target int64
		if err := rows.Scan(&ino, &target); err != nil {
			return queryError(ctx, "hard links", err)
		}
		if ino <= RootIno || target <= RootIno || ino == target {
			continue
		}
		r.links[uint64(ino)] = uint64(target)
	}
	if err := rows.Err(); err != nil {
		return queryError(ctx, "hard links", err)
	}
	for ino, target := range r.links {
		if _, chained := r.links[target]; chained {
			delete(r.links, ino) // links to links are not trusted
			continue
		}
		r.nlink[target]++
	}
	return nil
}

func (r *rfsReader) Kind() Kind { return KindRFS }

const rfsInodeColumns = `SELECT i.ino, i.name, i.size, i.uid, i.gid, i.mode, i.rdev, i.ctime, i.mtime, e.data
	FROM inode i LEFT JOIN extra e ON e.ino = i.ino`

type scanner interface{ Scan(dest ...any) error }

func (r *rfsReader) scanInode(ctx context.Context, s scanner) (Inode, error) {
	var (
		ino                                int64
		name                               sql.NullString
		size, uid, gid, mode, rdev, ct, mt sql.NullInt64
		data                               []byte
	)
	if err := s.Scan(&ino, &name, &size, &uid, &gid, &mode, &rdev, &ct, &mt, &data); err != nil {
		return Inode{}, queryError(ctx, "inode row", err)
	}
	in := Inode{
		Ino:       uint64(ino),
		Name:      name.String,
		Mode:      clampU32(mode.Int64),
		UID:       clampU32(uid.Int64),
		GID:       clampU32(gid.Int64),
		Rdev:      uint64(max(rdev.Int64, 0)),
		Ctime:     ct.Int64,
		Mtime:     mt.Int64,
		Nlink:     1,
		ChunkSize: block.ChunkSize,
	}
	if size.Int64 > 0 {
		in.Size = uint64(size.Int64)
	}
	if in.Type() == syscall.S_IFLNK {
		in.Target = string(data)
		in.Size = uint64(len(data))
	}
	if target, ok := r.links[in.Ino]; ok {
		in.Ino = target
	}
	if n, ok := r.nlink[in.Ino]; ok {
		in.Nlink = n + 1
	}
	return in, nil
}

func clampU32(v int64) uint32 {
	if v < 0 || v > math.MaxUint32 {
		return 0
	}
	return uint32(v)
}

func (r *rfsReader) Root(ctx context.Context) (Inode, error) {
	row := r.db.QueryRowContext(ctx, rfsInodeColumns+" WHERE i.ino = ?", RootIno)
	in, err := r.scanInode(ctx, row)
	if errors.Is(err, ErrCorrupt) {
		if errors.Is(row.Err(), sql.ErrNoRows) || errors.Is(r.db.QueryRowContext(ctx, "SELECT 1 FROM inode WHERE ino = 1").Scan(new(int)), sql.ErrNoRows) {
			return Inode{}, fmt.Errorf("rfs flist without root inode: %w", ErrCorrupt)
		}
		return Inode{}, err
	}
	in.Name = "/"
	in.Mode = syscall.S_IFDIR | in.Mode&^syscall.S_IFMT
	return in, nil
}

func (r *rfsReader) Children(ctx context.Context, dir uint64) ([]Inode, error) {
	rows, err := r.db.QueryContext(ctx, rfsInodeColumns+" WHERE i.parent = ? ORDER BY i.ino", int64(dir))
	if err != nil {
		return nil, queryError(ctx, fmt.Sprintf("children of %d", dir), err)
	}
	defer rows.Close()
	var out []Inode
	for rows.Next() {
		in, err := r.scanInode(ctx, rows)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, queryError(ctx, fmt.Sprintf("children of %d", dir), err)
	}
	return sortAndDedup(dir, out, r.bad), nil
}

func (r *rfsReader) Blocks(ctx context.Context, ino uint64) ([]block.Block, error) {
	rows, err := r.db.QueryContext(ctx, "SELECT id, key FROM block WHERE ino = ? ORDER BY rowid", int64(ino))
	if err != nil {
		return nil, queryError(ctx, fmt.Sprintf("blocks of %d", ino), err)
	}
	defer rows.Close()
	var out []block.Block
	for rows.Next() {
		var b block.Block
		if err := rows.Scan(&b.ID, &b.Key); err != nil {
			return nil, queryError(ctx, fmt.Sprintf("blocks of %d", ino), err)
		}
		if len(b.ID) != 32 || len(b.Key) != 32 {
			return nil, fmt.Errorf("blocks of %d: id of %d bytes, key of %d bytes: %w", ino, len(b.ID), len(b.Key), ErrCorrupt)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, queryError(ctx, fmt.Sprintf("blocks of %d", ino), err)
	}
	return out, nil
}

func (r *rfsReader) Xattrs(ctx context.Context, ino uint64) ([]Xattr, error) {
	if !r.hasXattr {
		return nil, nil
	}
	rows, err := r.db.QueryContext(ctx, "SELECT name, value FROM zos_xattr WHERE ino = ? ORDER BY rowid", int64(ino))
	if err != nil {
		return nil, queryError(ctx, fmt.Sprintf("xattrs of %d", ino), err)
	}
	defer rows.Close()
	var out []Xattr
	for rows.Next() {
		var x Xattr
		var name sql.NullString
		if err := rows.Scan(&name, &x.Value); err != nil {
			return nil, queryError(ctx, fmt.Sprintf("xattrs of %d", ino), err)
		}
		if name.String == "" || len(name.String) > 255 || len(x.Value) > 64<<10 {
			continue
		}
		x.Name = name.String
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, queryError(ctx, fmt.Sprintf("xattrs of %d", ino), err)
	}
	return out, nil
}

func (r *rfsReader) Tags(ctx context.Context) (map[string]string, error) {
	ok, err := tableExists(ctx, r.db, "tag")
	if err != nil || !ok {
		return map[string]string{}, err
	}
	rows, err := r.db.QueryContext(ctx, "SELECT key, value FROM tag")
	if err != nil {
		return nil, queryError(ctx, "tags", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v sql.NullString
		if err := rows.Scan(&k, &v); err != nil {
			return nil, queryError(ctx, "tags", err)
		}
		out[k.String] = v.String
	}
	if err := rows.Err(); err != nil {
		return nil, queryError(ctx, "tags", err)
	}
	return out, nil
}

func (r *rfsReader) Routes(ctx context.Context) ([]Route, error) {
	rows, err := r.db.QueryContext(ctx, "SELECT start, end, url FROM route ORDER BY rowid")
	if err != nil {
		return nil, queryError(ctx, "routes", err)
	}
	defer rows.Close()
	var out []Route
	for rows.Next() {
		var start, end sql.NullInt64
		var u sql.NullString
		if err := rows.Scan(&start, &end, &u); err != nil {
			return nil, queryError(ctx, "routes", err)
		}
		if start.Int64 < 0 || end.Int64 > 255 || start.Int64 > end.Int64 || u.String == "" {
			return nil, fmt.Errorf("route %d-%d %q: %w", start.Int64, end.Int64, u.String, ErrCorrupt)
		}
		out = append(out, Route{Start: uint8(start.Int64), End: uint8(end.Int64), URL: u.String})
	}
	if err := rows.Err(); err != nil {
		return nil, queryError(ctx, "routes", err)
	}
	return out, nil
}

func (r *rfsReader) Close() error { return r.db.Close() }
