package format

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"syscall"

	"github.com/zos-go/zos/internal/atomicfile"
	"github.com/zos-go/zos/pkg/flist/block"
)

// Entry is one inode handed to a Writer.
type Entry struct {
	// Parent is the inode number Add returned for the parent directory;
	// 0 for the root, which must be added first.
	Parent uint64
	// Name of the entry; ignored for the root.
	Name  string
	Mode  uint32
	Size  uint64
	UID   uint32
	GID   uint32
	Rdev  uint64
	Mtime int64
	Ctime int64
	// Target of a symlink.
	Target string
	// Blocks of a regular file, in order.
	Blocks []block.Block
	// Xattrs of the entry.
	Xattrs []Xattr
	// LinkTo is the inode number of an earlier regular file this entry is
	// a hard link of (0: none). Blocks must repeat the target's.
	LinkTo uint64
}

// Writer builds an flist file. Entries are added parents first. Nothing is
// visible at the destination until Close succeeds; Abort (or a failed Close)
// removes the partial output. A Writer is not safe for concurrent use.
type Writer interface {
	// Add adds an entry and returns its inode number.
	Add(ctx context.Context, e Entry) (uint64, error)
	// Tag sets a tag (rfs tag table, 0-flist metadata table).
	Tag(ctx context.Context, key, value string) error
	// Route adds a block route (rfs route table, 0-flist router.yaml).
	Route(ctx context.Context, r Route) error
	// Close finishes the file and moves it into place.
	Close(ctx context.Context) error
	// Abort drops the output.
	Abort()
}

// ErrWriter is returned for entries a writer refuses (bad parent, bad
// name, root not first).
var ErrWriter = errors.New("invalid flist entry for writer")

// CreateRFS returns a Writer of an rfs .fl file at path.
func CreateRFS(ctx context.Context, path string) (Writer, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("flist %s: %w", path, err)
	}
	tmp.Close()
	dsn := "file:" + (&url.URL{Path: tmp.Name()}).EscapedPath() + "?_pragma=journal_mode(OFF)&_pragma=synchronous(OFF)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("flist %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	w := &rfsWriter{db: db, path: path, tmp: tmp.Name(), dirs: map[uint64]bool{}, files: map[uint64]bool{}}
	if _, err := db.ExecContext(ctx, rfsSchema); err != nil {
		w.Abort()
		return nil, fmt.Errorf("flist %s: schema: %w", path, err)
	}
	if w.tx, err = db.BeginTx(ctx, nil); err != nil {
		w.Abort()
		return nil, fmt.Errorf("flist %s: %w", path, err)
	}
	return w, nil
}

type rfsWriter struct {
	db    *sql.DB
	tx    *sql.Tx
	path  string
	tmp   string
	dirs  map[uint64]bool
	files map[uint64]bool
	done  bool
}

func (w *rfsWriter) Add(ctx context.Context, e Entry) (uint64, error) {
	name := e.Name
	if e.Parent == 0 {
		if len(w.dirs) > 0 || e.Mode&syscall.S_IFMT != syscall.S_IFDIR {
			return 0, fmt.Errorf("root must be the first entry and a directory: %w", ErrWriter)
		}
		name = "/"
	} else {
		if !w.dirs[e.Parent] {
			return 0, fmt.Errorf("entry %q: parent %d is no directory: %w", e.Name, e.Parent, ErrWriter)
		}
		if err := ValidName(e.Name); err != nil {
			return 0, fmt.Errorf("%w: %w", ErrWriter, err)
		}
	}
	if !validType(e.Mode) {
		return 0, fmt.Errorf("entry %q: mode %o: %w", e.Name, e.Mode, ErrWriter)
	}
	res, err := w.tx.ExecContext(ctx, `INSERT INTO inode (parent, name, size, uid, gid, mode, rdev, ctime, mtime)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, int64(e.Parent), name, int64(e.Size), int64(e.UID), int64(e.GID),
		int64(e.Mode), int64(e.Rdev), e.Ctime, e.Mtime)
	if err != nil {
		return 0, fmt.Errorf("flist %s: inode %q: %w", w.path, e.Name, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("flist %s: inode %q: %w", w.path, e.Name, err)
	}
	ino := uint64(id)
	switch e.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		w.dirs[ino] = true
	case syscall.S_IFREG:
		w.files[ino] = true
	case syscall.S_IFLNK:
		if _, err := w.tx.ExecContext(ctx, "INSERT INTO extra (ino, data) VALUES (?, ?)", id, e.Target); err != nil {
			return 0, fmt.Errorf("flist %s: symlink %q: %w", w.path, e.Name, err)
		}
	}
	for _, b := range e.Blocks {
		if _, err := w.tx.ExecContext(ctx, "INSERT INTO block (ino, id, key) VALUES (?, ?, ?)", id, b.ID, b.Key); err != nil {
			return 0, fmt.Errorf("flist %s: blocks of %q: %w", w.path, e.Name, err)
		}
	}
	for _, x := range e.Xattrs {
		if _, err := w.tx.ExecContext(ctx, "INSERT INTO zos_xattr (ino, name, value) VALUES (?, ?, ?)", id, x.Name, x.Value); err != nil {
			return 0, fmt.Errorf("flist %s: xattrs of %q: %w", w.path, e.Name, err)
		}
	}
	if e.LinkTo != 0 {
		if !w.files[e.LinkTo] || e.Mode&syscall.S_IFMT != syscall.S_IFREG {
			return 0, fmt.Errorf("entry %q: hard link to %d, no regular file: %w", e.Name, e.LinkTo, ErrWriter)
		}
		if _, err := w.tx.ExecContext(ctx, "INSERT INTO zos_hardlink (ino, target) VALUES (?, ?)", id, int64(e.LinkTo)); err != nil {
			return 0, fmt.Errorf("flist %s: hard link %q: %w", w.path, e.Name, err)
		}
	}
	return ino, nil
}

func (w *rfsWriter) Tag(ctx context.Context, key, value string) error {
	if _, err := w.tx.ExecContext(ctx, "INSERT OR REPLACE INTO tag (key, value) VALUES (?, ?)", key, value); err != nil {
		return fmt.Errorf("flist %s: tag %q: %w", w.path, key, err)
	}
	return nil
}

func (w *rfsWriter) Route(ctx context.Context, r Route) error {
	if r.Start > r.End || r.URL == "" {
		return fmt.Errorf("route %d-%d %q: %w", r.Start, r.End, r.URL, ErrWriter)
	}
	if _, err := w.tx.ExecContext(ctx, "INSERT INTO route (start, end, url) VALUES (?, ?, ?)", int64(r.Start), int64(r.End), r.URL); err != nil {
		return fmt.Errorf("flist %s: route: %w", w.path, err)
	}
	return nil
}

func (w *rfsWriter) Close(ctx context.Context) error {
	if w.done {
		return fmt.Errorf("flist %s: writer closed: %w", w.path, ErrWriter)
	}
	if len(w.dirs) == 0 {
		w.Abort()
		return fmt.Errorf("flist %s: no root: %w", w.path, ErrWriter)
	}
	if err := w.tx.Commit(); err != nil {
		w.Abort()
		return fmt.Errorf("flist %s: commit: %w", w.path, err)
	}
	if err := w.db.Close(); err != nil {
		w.Abort()
		return fmt.Errorf("flist %s: %w", w.path, err)
	}
	w.done = true
	if err := syncRename(w.tmp, w.path); err != nil {
		os.Remove(w.tmp)
		return fmt.Errorf("flist %s: %w", w.path, err)
	}
	return nil
}

func (w *rfsWriter) Abort() {
	if w.done {
		return
	}
	w.done = true
	if w.tx != nil {
		_ = w.tx.Rollback()
	}
	_ = w.db.Close()
	_ = os.Remove(w.tmp)
}

// syncRename fsyncs tmp, renames it to path and fsyncs the directory.
func syncRename(tmp, path string) error {
	f, err := os.OpenFile(tmp, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(path))
}
