// Package format reads and writes flist metadata: the rfs ".fl" format (a
// SQLite database of inodes, blocks, tags and routes) and the 0-flist format
// of the v0.4 era (a tar.gz holding a SQLite database of Cap'n Proto
// directory entries). Readers expose both through one Reader interface so the
// mount, the CLI and the hub do not care which format an flist uses.
//
// Readers never trust the file: entries whose names would escape their
// directory ("", ".", "..", names holding "/" or NUL), unknown file types,
// self-referencing directories and duplicates are skipped and reported to
// Options.OnBadEntry; malformed block references fail with ErrCorrupt.
//
// Extensions. The rfs schema has no place for extended attributes nor hard
// links; our writer adds two tables that rfs ignores: zos_xattr(ino, name,
// value) and zos_hardlink(ino, target). A hard link is still written as a
// full inode row with its own copy of the block list, so rfs reads it as an
// ordinary file; our reader presents it as the same inode as its target.
package format

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"syscall"

	"github.com/zos-go/zos/pkg/flist/block"
)

// Kind identifies an flist metadata format.
type Kind int

// The flist formats.
const (
	// KindRFS is the rfs ".fl" SQLite database.
	KindRFS Kind = iota + 1
	// KindZero is the 0-flist archive (tar.gz of flistdb.sqlite3).
	KindZero
)

// String returns "rfs" or "0-flist".
func (k Kind) String() string {
	switch k {
	case KindRFS:
		return "rfs"
	case KindZero:
		return "0-flist"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Codec returns the block codec of flists of this kind.
func (k Kind) Codec() block.Codec {
	if k == KindZero {
		return block.Zero
	}
	return block.RFS
}

// RootIno is the inode number of the root directory in every reader.
const RootIno = 1

// MaxNameLen is the longest entry name accepted.
const MaxNameLen = 255

var (
	// ErrCorrupt is returned for metadata that cannot be parsed. A read
	// that ends because its context is done never wraps it: it wraps the
	// context's error.
	ErrCorrupt = errors.New("corrupt flist")
	// ErrUnknownFormat is returned for a file that is no flist.
	ErrUnknownFormat = errors.New("unknown flist format")
	// ErrInvalidEntry describes an entry that was skipped.
	ErrInvalidEntry = errors.New("invalid flist entry")
	// ErrNotFound is returned for an inode that is not in the flist.
	ErrNotFound = errors.New("flist entry not found")
)

// Inode is one entry of an flist.
type Inode struct {
	// Ino is unique within one Reader; RootIno for the root. Hard links
	// share the Ino of their target.
	Ino uint64
	// Name is the entry name ("/" for the root).
	Name string
	// Mode is the full st_mode, type bits included.
	Mode uint32
	// Size in bytes (files: content size; symlinks: target length).
	Size uint64
	UID  uint32
	GID  uint32
	// Rdev is the device number of block and character devices.
	Rdev uint64
	// Mtime and Ctime are Unix seconds.
	Mtime int64
	Ctime int64
	// Target is the symlink target.
	Target string
	// Nlink is the number of names of this inode (1 but for hard links).
	Nlink uint32
	// ChunkSize is the plain size of each block but the last (files).
	ChunkSize uint32
}

// Type returns the file type bits of Mode.
func (i Inode) Type() uint32 { return i.Mode & syscall.S_IFMT }

// IsDir reports whether the inode is a directory.
func (i Inode) IsDir() bool { return i.Type() == syscall.S_IFDIR }

// IsRegular reports whether the inode is a regular file.
func (i Inode) IsRegular() bool { return i.Type() == syscall.S_IFREG }

// Xattr is one extended attribute.
type Xattr struct {
	Name  string
	Value []byte
}

// Route says which store holds the blocks whose id starts with a byte in
// [Start, End].
type Route struct {
	Start uint8
	End   uint8
	URL   string
}

// Reader reads one flist. Implementations are safe for concurrent use.
type Reader interface {
	// Kind of the flist.
	Kind() Kind
	// Root returns the root directory.
	Root(ctx context.Context) (Inode, error)
	// Children lists the valid entries of directory dir, sorted by name.
	Children(ctx context.Context, dir uint64) ([]Inode, error)
	// Blocks returns the blocks of a regular file, in order.
	Blocks(ctx context.Context, ino uint64) ([]block.Block, error)
	// Xattrs returns the extended attributes of an inode (nil if none).
	Xattrs(ctx context.Context, ino uint64) ([]Xattr, error)
	// Tags returns the flist's tags (rfs tag table, 0-flist metadata).
	Tags(ctx context.Context) (map[string]string, error)
	// Routes returns the stores the flist names for its blocks.
	Routes(ctx context.Context) ([]Route, error)
	// Close releases the database.
	Close() error
}

// ValidName reports why name cannot be an entry name, or nil.
func ValidName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("name %q: %w", name, ErrInvalidEntry)
	case len(name) > MaxNameLen:
		return fmt.Errorf("name of %d bytes: %w", len(name), ErrInvalidEntry)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("name %q holds a slash or NUL: %w", name, ErrInvalidEntry)
	}
	return nil
}

func validType(mode uint32) bool {
	switch mode & syscall.S_IFMT {
	case syscall.S_IFREG, syscall.S_IFDIR, syscall.S_IFLNK, syscall.S_IFBLK,
		syscall.S_IFCHR, syscall.S_IFIFO, syscall.S_IFSOCK:
		return true
	}
	return false
}

// queryError wraps err, the failure of a database query about what. A
// query that ended because ctx is done wraps ctx's error (or err, when it
// is a context error): a cancelled read says nothing about the flist.
// Anything else means a damaged flist and wraps ErrCorrupt.
func queryError(ctx context.Context, what string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: %w", what, cerr)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %v: %w", what, err, ErrCorrupt)
}

// BadEntryFunc receives every entry a reader skipped: the inode of its
// directory, its name (possibly invalid) and why.
type BadEntryFunc func(dir uint64, name string, err error)

// sortAndDedup sorts children by name and drops invalid entries and later
// duplicates, reporting each to bad.
func sortAndDedup(dir uint64, in []Inode, bad BadEntryFunc) []Inode {
	out := in[:0]
	for _, c := range in {
		if err := ValidName(c.Name); err != nil {
			bad(dir, c.Name, err)
			continue
		}
		if !validType(c.Mode) {
			bad(dir, c.Name, fmt.Errorf("mode %o: unknown file type: %w", c.Mode, ErrInvalidEntry))
			continue
		}
		if c.Ino == dir || c.Ino == RootIno {
			bad(dir, c.Name, fmt.Errorf("entry refers to its own directory: %w", ErrInvalidEntry))
			continue
		}
		out = append(out, c)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	dedup := out[:0]
	for i, c := range out {
		if i > 0 && c.Name == out[i-1].Name {
			bad(dir, c.Name, fmt.Errorf("duplicate name: %w", ErrInvalidEntry))
			continue
		}
		dedup = append(dedup, c)
	}
	return dedup
}

// WalkFunc is called by Walk for every entry with its slash-separated path
// relative to the root ("" for the root itself).
type WalkFunc func(p string, in Inode) error

// ErrSkipDir, returned by a WalkFunc for a directory, skips its content.
var ErrSkipDir = errors.New("skip this directory")

// Walk visits the root and every entry below it, depth first, in name order.
func Walk(ctx context.Context, r Reader, fn WalkFunc) error {
	root, err := r.Root(ctx)
	if err != nil {
		return err
	}
	return walk(ctx, r, "", root, fn)
}

func walk(ctx context.Context, r Reader, p string, in Inode, fn WalkFunc) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := fn(p, in); err != nil {
		if errors.Is(err, ErrSkipDir) {
			return nil
		}
		return err
	}
	if !in.IsDir() {
		return nil
	}
	children, err := r.Children(ctx, in.Ino)
	if err != nil {
		return fmt.Errorf("directory %q: %w", "/"+p, err)
	}
	for _, c := range children {
		if err := walk(ctx, r, path.Join(p, c.Name), c, fn); err != nil {
			return err
		}
	}
	return nil
}

// Lookup returns the entry at slash-separated path p ("" or "/" for the root).
func Lookup(ctx context.Context, r Reader, p string) (Inode, error) {
	cur, err := r.Root(ctx)
	if err != nil {
		return Inode{}, err
	}
	for _, name := range strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/") {
		if name == "" {
			continue
		}
		if !cur.IsDir() {
			return Inode{}, fmt.Errorf("%q: %w", p, ErrNotFound)
		}
		children, err := r.Children(ctx, cur.Ino)
		if err != nil {
			return Inode{}, err
		}
		i := sort.Search(len(children), func(i int) bool { return children[i].Name >= name })
		if i == len(children) || children[i].Name != name {
			return Inode{}, fmt.Errorf("%q: %w", p, ErrNotFound)
		}
		cur = children[i]
	}
	return cur, nil
}
