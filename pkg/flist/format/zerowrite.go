package format

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"capnproto.org/go/capnp/v3"
	"golang.org/x/crypto/blake2b"
	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/pkg/flist/block"
	"github.com/zos-go/zos/pkg/flist/format/zeroschema"
)

// CreateZero returns a Writer of a 0-flist archive (tar.gz of
// flistdb.sqlite3 and, when routes are given, router.yaml) at path. The
// format has no xattrs nor hard links: xattrs are dropped and a hard link
// becomes an independent copy of its target. Blocks must come from
// block.Zero.
func CreateZero(_ context.Context, path string) (Writer, error) {
	return &zeroWriter{path: path, nodes: map[uint64]*zeroNode{}, tags: map[string]string{}}, nil
}

type zeroNode struct {
	e        Entry
	path     string
	children []uint64
}

type zeroWriter struct {
	path   string
	nodes  map[uint64]*zeroNode
	next   uint64
	tags   map[string]string
	routes []Route
	done   bool
}

func (w *zeroWriter) Add(_ context.Context, e Entry) (uint64, error) {
	if w.done {
		return 0, fmt.Errorf("flist %s: writer closed: %w", w.path, ErrWriter)
	}
	if !validType(e.Mode) {
		return 0, fmt.Errorf("entry %q: mode %o: %w", e.Name, e.Mode, ErrWriter)
	}
	p := ""
	if e.Parent == 0 {
		if len(w.nodes) > 0 || e.Mode&syscall.S_IFMT != syscall.S_IFDIR {
			return 0, fmt.Errorf("root must be the first entry and a directory: %w", ErrWriter)
		}
	} else {
		parent, ok := w.nodes[e.Parent]
		if !ok || parent.e.Mode&syscall.S_IFMT != syscall.S_IFDIR {
			return 0, fmt.Errorf("entry %q: parent %d is no directory: %w", e.Name, e.Parent, ErrWriter)
		}
		if err := ValidName(e.Name); err != nil {
			return 0, fmt.Errorf("%w: %w", ErrWriter, err)
		}
		for _, b := range e.Blocks {
			if len(b.ID) != 16 || len(b.Key) != 16 {
				return 0, fmt.Errorf("entry %q: block of the wrong codec: %w", e.Name, ErrWriter)
			}
		}
		p = path.Join(parent.path, e.Name)
	}
	w.next++
	ino := w.next
	w.nodes[ino] = &zeroNode{e: e, path: p}
	if e.Parent != 0 {
		w.nodes[e.Parent].children = append(w.nodes[e.Parent].children, ino)
	}
	return ino, nil
}

func (w *zeroWriter) Tag(_ context.Context, key, value string) error {
	w.tags[key] = value
	return nil
}

func (w *zeroWriter) Route(_ context.Context, r Route) error {
	if r.Start > r.End || r.URL == "" {
		return fmt.Errorf("route %d-%d %q: %w", r.Start, r.End, r.URL, ErrWriter)
	}
	w.routes = append(w.routes, r)
	return nil
}

func (w *zeroWriter) Abort() { w.done = true }

func (w *zeroWriter) Close(ctx context.Context) error {
	if w.done {
		return fmt.Errorf("flist %s: writer closed: %w", w.path, ErrWriter)
	}
	w.done = true
	if len(w.nodes) == 0 {
		return fmt.Errorf("flist %s: no root: %w", w.path, ErrWriter)
	}
	work, err := os.MkdirTemp(filepath.Dir(w.path), "."+filepath.Base(w.path)+".*.d")
	if err != nil {
		return fmt.Errorf("flist %s: %w", w.path, err)
	}
	defer os.RemoveAll(work)
	if err := w.writeDB(ctx, filepath.Join(work, ZeroDBName)); err != nil {
		return fmt.Errorf("flist %s: %w", w.path, err)
	}
	files := []string{ZeroDBName}
	if len(w.routes) > 0 {
		data, err := zeroRouterYAML(w.routes)
		if err != nil {
			return fmt.Errorf("flist %s: router: %w", w.path, err)
		}
		if err := os.WriteFile(filepath.Join(work, ZeroRouterName), data, 0o644); err != nil {
			return fmt.Errorf("flist %s: %w", w.path, err)
		}
		files = append(files, ZeroRouterName)
	}
	tmp := filepath.Join(work, "archive.tar.gz")
	if err := writeTarGz(tmp, work, files); err != nil {
		return fmt.Errorf("flist %s: archive: %w", w.path, err)
	}
	if err := syncRename(tmp, w.path); err != nil {
		return fmt.Errorf("flist %s: %w", w.path, err)
	}
	return nil
}

func writeTarGz(dst, dir string, files []string) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for _, name := range files {
		src, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		st, err := src.Stat()
		if err != nil {
			src.Close()
			return err
		}
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: st.Size(), ModTime: time.Unix(st.ModTime().Unix(), 0), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			src.Close()
			return err
		}
		_, err = io.Copy(tw, src)
		src.Close()
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return f.Close()
}

func (w *zeroWriter) writeDB(ctx context.Context, file string) error {
	dsn := "file:" + (&url.URL{Path: file}).EscapedPath() + "?_pragma=journal_mode(OFF)&_pragma=synchronous(OFF)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE TABLE entries (key VARCHAR(64) PRIMARY KEY, value BLOB);
		CREATE TABLE metadata (key VARCHAR(64) PRIMARY KEY, value TEXT);`); err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for k, v := range w.tags {
		if _, err := tx.ExecContext(ctx, "INSERT INTO metadata (key, value) VALUES (?, ?)", k, v); err != nil {
			return err
		}
	}
	acls := map[string][]byte{}
	inos := make([]uint64, 0, len(w.nodes))
	for ino, n := range w.nodes {
		if n.e.Mode&syscall.S_IFMT == syscall.S_IFDIR {
			inos = append(inos, ino)
		}
	}
	sort.Slice(inos, func(i, j int) bool { return inos[i] < inos[j] })
	for _, ino := range inos {
		n := w.nodes[ino]
		value, err := w.dirMessage(n, acls)
		if err != nil {
			return fmt.Errorf("directory %q: %w", "/"+n.path, err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO entries (key, value) VALUES (?, ?)", ZeroDirKey(n.path), value); err != nil {
			return err
		}
	}
	for key, value := range acls {
		if _, err := tx.ExecContext(ctx, "INSERT INTO entries (key, value) VALUES (?, ?)", key, value); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// aclKey returns the libflist ACL key of an entry's owner and mode and
// stores its ACI message in acls.
func aclKey(e Entry, acls map[string][]byte) (string, error) {
	uname, gname := ownerName(e.UID, false), ownerName(e.GID, true)
	perm := e.Mode & 0o7777
	text := fmt.Sprintf("user:%s\ngroup:%s\nmode:0o%o\nuid:%d\ngid:%d", uname, gname, perm, e.UID, e.GID)
	h, _ := blake2b.New(8, nil)
	h.Write([]byte(text))
	key := hex.EncodeToString(h.Sum(nil))
	if _, ok := acls[key]; ok {
		return key, nil
	}
	msg, seg, err := capnp.NewMessage(capnp.SingleSegment(nil))
	if err != nil {
		return "", err
	}
	aci, err := zeroschema.NewRootACI(seg)
	if err != nil {
		return "", err
	}
	if err := aci.SetUname(uname); err != nil {
		return "", err
	}
	if err := aci.SetGname(gname); err != nil {
		return "", err
	}
	aci.SetMode(uint16(perm))
	aci.SetUid(int64(e.UID))
	aci.SetGid(int64(e.GID))
	data, err := msg.Marshal()
	if err != nil {
		return "", err
	}
	acls[key] = data
	return key, nil
}

// ownerName is the build host's name for a uid or gid, or the number.
func ownerName(id uint32, group bool) string {
	s := strconv.FormatUint(uint64(id), 10)
	if group {
		if g, err := user.LookupGroupId(s); err == nil {
			return g.Name
		}
		return s
	}
	if u, err := user.LookupId(s); err == nil {
		return u.Username
	}
	return s
}

func (w *zeroWriter) dirMessage(n *zeroNode, acls map[string][]byte) ([]byte, error) {
	msg, seg, err := capnp.NewMessage(capnp.MultiSegment(nil))
	if err != nil {
		return nil, err
	}
	d, err := zeroschema.NewRootDir(seg)
	if err != nil {
		return nil, err
	}
	key, err := aclKey(n.e, acls)
	if err != nil {
		return nil, err
	}
	parent := ""
	if n.e.Parent != 0 {
		parent = ZeroDirKey(w.nodes[n.e.Parent].path)
	}
	if err := d.SetName(path.Base("/" + n.path)); err != nil {
		return nil, err
	}
	if err := d.SetLocation(n.path); err != nil {
		return nil, err
	}
	if err := d.SetParent(parent); err != nil {
		return nil, err
	}
	if err := d.SetAclkey(key); err != nil {
		return nil, err
	}
	d.SetSize(4096)
	d.SetModificationTime(uint32(n.e.Mtime))
	d.SetCreationTime(uint32(n.e.Ctime))
	contents, err := d.NewContents(int32(len(n.children)))
	if err != nil {
		return nil, err
	}
	for i, ino := range n.children {
		if err := w.fillInode(contents.At(i), w.nodes[ino], acls); err != nil {
			return nil, fmt.Errorf("entry %q: %w", w.nodes[ino].e.Name, err)
		}
	}
	return msg.Marshal()
}

func (w *zeroWriter) fillInode(in zeroschema.Inode, n *zeroNode, acls map[string][]byte) error {
	e := n.e
	key, err := aclKey(e, acls)
	if err != nil {
		return err
	}
	if err := in.SetName(e.Name); err != nil {
		return err
	}
	if err := in.SetAclkey(key); err != nil {
		return err
	}
	in.SetSize(e.Size)
	in.SetModificationTime(uint32(e.Mtime))
	in.SetCreationTime(uint32(e.Ctime))
	attrs := in.Attributes()
	switch e.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		in.SetSize(4096)
		sub, err := attrs.NewDir()
		if err != nil {
			return err
		}
		return sub.SetKey(ZeroDirKey(n.path))
	case syscall.S_IFREG:
		f, err := attrs.NewFile()
		if err != nil {
			return err
		}
		f.SetBlockSize(block.ChunkSize / 4096)
		list, err := f.NewBlocks(int32(len(e.Blocks)))
		if err != nil {
			return err
		}
		for i, b := range e.Blocks {
			if err := list.At(i).SetHash(b.ID); err != nil {
				return err
			}
			if err := list.At(i).SetKey(b.Key); err != nil {
				return err
			}
		}
		return nil
	case syscall.S_IFLNK:
		l, err := attrs.NewLink()
		if err != nil {
			return err
		}
		return l.SetTarget(e.Target)
	default:
		s, err := attrs.NewSpecial()
		if err != nil {
			return err
		}
		in.SetSize(0)
		switch e.Mode & syscall.S_IFMT {
		case syscall.S_IFSOCK:
			s.SetType(zeroschema.Special_Type_socket)
		case syscall.S_IFIFO:
			s.SetType(zeroschema.Special_Type_fifopipe)
		case syscall.S_IFBLK:
			s.SetType(zeroschema.Special_Type_block)
		case syscall.S_IFCHR:
			s.SetType(zeroschema.Special_Type_chardev)
		}
		return s.SetData([]byte(fmt.Sprintf("%d,%d", unix.Major(e.Rdev), unix.Minor(e.Rdev))))
	}
}
