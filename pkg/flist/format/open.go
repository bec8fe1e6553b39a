package format

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"syscall"

	"github.com/zos-go/zos/internal/atomicfile"
)

// MaxDBBytes bounds the SQLite database unpacked from a 0-flist archive.
const MaxDBBytes = 4 << 30

// maxRouterBytes bounds router.yaml.
const maxRouterBytes = 1 << 20

// Options configures Open.
type Options struct {
	// OnBadEntry, when set, receives every entry a reader skips.
	OnBadEntry BadEntryFunc
	// UnpackDir is where a 0-flist archive is unpacked; default: the
	// archive path plus ".d" (what 0-fs does). An existing unpacked
	// directory is reused.
	UnpackDir string
}

var sqliteMagic = []byte("SQLite format 3\x00")

// Open opens the flist at p: an rfs .fl file, a 0-flist archive (tar.gz),
// a bare 0-flist database, or a directory holding an unpacked 0-flist.
// Errors wrap ErrUnknownFormat or ErrCorrupt for bad files.
func Open(ctx context.Context, p string, opts Options) (Reader, error) {
	bad := opts.OnBadEntry
	if bad == nil {
		bad = func(uint64, string, error) {}
	}
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("flist %s: %w", p, err)
	}
	if st.IsDir() {
		return openZeroDir(ctx, p, bad)
	}
	head := make([]byte, len(sqliteMagic))
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("flist %s: %w", p, err)
	}
	n, _ := io.ReadFull(f, head)
	f.Close()
	head = head[:n]
	switch {
	case bytes.Equal(head, sqliteMagic):
		return openDB(ctx, p, nil, bad)
	case len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		dir := opts.UnpackDir
		if dir == "" {
			dir = p + ".d"
		}
		if err := unpack(p, dir); err != nil {
			return nil, err
		}
		return openZeroDir(ctx, dir, bad)
	}
	return nil, fmt.Errorf("flist %s: %w", p, ErrUnknownFormat)
}

// openDB opens a SQLite flist database and picks the reader by its tables.
func openDB(ctx context.Context, p string, routes []Route, bad BadEntryFunc) (Reader, error) {
	db, err := openSQLite(p)
	if err != nil {
		return nil, err
	}
	isRFS, err := tableExists(ctx, db, "inode")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("flist %s: %w", p, err)
	}
	var r Reader
	if isRFS {
		r, err = openRFS(ctx, db, bad)
	} else {
		var isZero bool
		if isZero, err = tableExists(ctx, db, "entries"); err == nil && !isZero {
			err = ErrUnknownFormat
		}
		if err == nil {
			r, err = openZero(ctx, db, routes, bad)
		}
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("flist %s: %w", p, err)
	}
	if _, err := r.Root(ctx); err != nil {
		r.Close()
		return nil, fmt.Errorf("flist %s: %w", p, err)
	}
	return r, nil
}

func openZeroDir(ctx context.Context, dir string, bad BadEntryFunc) (Reader, error) {
	db := filepath.Join(dir, ZeroDBName)
	if _, err := os.Stat(db); err != nil {
		return nil, fmt.Errorf("flist %s: no %s: %w", dir, ZeroDBName, ErrUnknownFormat)
	}
	var routes []Route
	if data, err := os.ReadFile(filepath.Join(dir, ZeroRouterName)); err == nil {
		if routes, err = ParseZeroRouter(data); err != nil {
			return nil, fmt.Errorf("flist %s: %w", dir, err)
		}
	}
	return openDB(ctx, db, routes, bad)
}

// unpack extracts flistdb.sqlite3 and router.yaml of the archive at p into
// dir, atomically: a complete dir is reused, a partial one never appears.
func unpack(p, dir string) error {
	if _, err := os.Stat(filepath.Join(dir, ZeroDBName)); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("unpack %s: %w", p, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".*.tmp")
	if err != nil {
		return fmt.Errorf("unpack %s: %w", p, err)
	}
	defer os.RemoveAll(tmp)
	if err := extract(p, tmp); err != nil {
		return fmt.Errorf("unpack %s: %w", p, err)
	}
	if err := atomicfile.SyncDir(tmp); err != nil {
		return fmt.Errorf("unpack %s: %w", p, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, ZeroDBName)); serr == nil {
			return nil // unpacked concurrently by someone else
		}
		if errors.Is(err, os.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
			// a stale partial directory: replace it
			if rerr := os.RemoveAll(dir); rerr == nil {
				err = os.Rename(tmp, dir)
			}
		}
		if err != nil {
			return fmt.Errorf("unpack %s: %w", p, err)
		}
	}
	return atomicfile.SyncDir(filepath.Dir(dir))
}

func extract(p, dst string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("gzip: %v: %w", err, ErrCorrupt)
	}
	tr := tar.NewReader(gz)
	found := false
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("tar: %v: %w", err, ErrCorrupt)
		}
		name := path.Clean("/" + hdr.Name)[1:]
		var limit int64
		switch name {
		case ZeroDBName:
			limit = MaxDBBytes
		case ZeroRouterName:
			limit = maxRouterBytes
		default:
			continue // 0-fs only uses these two files; never write others
		}
		if hdr.Typeflag != tar.TypeReg {
			return fmt.Errorf("tar: %s is no regular file: %w", name, ErrCorrupt)
		}
		if hdr.Size > limit {
			return fmt.Errorf("tar: %s of %d bytes: %w", name, hdr.Size, ErrCorrupt)
		}
		if err := writeLimited(filepath.Join(dst, name), tr, limit); err != nil {
			return err
		}
		if name == ZeroDBName {
			found = true
		}
	}
	if !found {
		return fmt.Errorf("archive without %s: %w", ZeroDBName, ErrUnknownFormat)
	}
	return nil
}

func writeLimited(p string, r io.Reader, limit int64) error {
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	n, err := io.Copy(out, io.LimitReader(r, limit+1))
	if err == nil && n > limit {
		err = fmt.Errorf("%s over %d bytes: %w", filepath.Base(p), limit, ErrCorrupt)
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil && !errors.Is(err, ErrCorrupt) {
		err = fmt.Errorf("tar: %v: %w", err, ErrCorrupt)
	}
	return err
}
