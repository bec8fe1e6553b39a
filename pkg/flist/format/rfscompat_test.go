package format

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/zos-go/zos/pkg/flist/block"
)

// TestReadsRFSWrittenFlist reads an flist laid out exactly as rfs v2
// writes one: its schema only (no zos tables), the root named "/" with
// parent 0, symlink targets bound as BLOBs in extra, block ids and keys as
// 32-byte BLOBs in insertion order, one route, and tags.
func TestReadsRFSWrittenFlist(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rfs.fl")
	db, err := sql.Open("sqlite", p)
	if err != nil {
		t.Fatal(err)
	}
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS inode (ino INTEGER PRIMARY KEY AUTOINCREMENT, parent INTEGER, name VARCHAR(255), size INTEGER, uid INTEGER, gid INTEGER, mode INTEGER, rdev INTEGER, ctime INTEGER, mtime INTEGER)`,
		`CREATE INDEX IF NOT EXISTS parents ON inode (parent)`,
		`CREATE TABLE IF NOT EXISTS extra (ino INTEGER PRIMARY KEY, data VARCHAR(4096))`,
		`CREATE TABLE IF NOT EXISTS block (ino INTEGER, id VARCHAR(32), key VARCHAR(32))`,
		`CREATE INDEX IF NOT EXISTS block_ino ON block (ino)`,
		`CREATE TABLE IF NOT EXISTS tag (key VARCHAR(10) PRIMARY KEY, value VARCHAR(255))`,
		`CREATE TABLE IF NOT EXISTS route (start integer, end integer, url VARCHAR(2048))`,
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	ins := func(parent int64, name string, size int64, mode uint32) int64 {
		res, err := db.Exec(`insert into inode (parent, name, size, uid, gid, mode, rdev, ctime, mtime) values (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			parent, name, size, 1000, 1001, mode, 0, 1700000000, 1700000001)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := res.LastInsertId()
		return id
	}
	root := ins(0, "/", 4096, syscall.S_IFDIR|0o755)
	etc := ins(root, "etc", 4096, syscall.S_IFDIR|0o755)
	content := bytes.Repeat([]byte("rfs "), 200_000) // two chunks
	file := ins(etc, "motd", int64(len(content)), syscall.S_IFREG|0o644)
	link := ins(root, "motd", 8, syscall.S_IFLNK|0o777)
	if _, err := db.Exec("insert into extra(ino, data) values (?, ?)", link, []byte("etc/motd")); err != nil {
		t.Fatal(err)
	}
	var want []block.Block
	for off := 0; off < len(content); off += block.ChunkSize {
		b, _, _ := block.RFS.Encode(content[off:min(off+block.ChunkSize, len(content))])
		want = append(want, b)
		if _, err := db.Exec("insert into block (ino, id, key) values (?, ?, ?)", file, b.ID, b.Key); err != nil {
			t.Fatal(err)
		}
	}
	db.Exec("insert into route (start, end, url) values (?, ?, ?)", 0, 255, "dir:///tmp/store0")
	db.Exec("insert into tag (key, value) values (?, ?)", "version", "1")
	db.Close()

	r, err := Open(context.Background(), p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	l, err := Lookup(ctx, r, "motd")
	if err != nil || l.Target != "etc/motd" || l.Type() != syscall.S_IFLNK {
		t.Fatalf("symlink: %+v %v", l, err)
	}
	f, err := Lookup(ctx, r, "etc/motd")
	if err != nil || f.Size != uint64(len(content)) || f.UID != 1000 || f.GID != 1001 || f.Mtime != 1700000001 {
		t.Fatalf("file: %+v %v", f, err)
	}
	got, err := r.Blocks(ctx, f.Ino)
	if err != nil || len(got) != len(want) {
		t.Fatalf("blocks: %d %v", len(got), err)
	}
	for i := range want {
		if !bytes.Equal(got[i].ID, want[i].ID) || !bytes.Equal(got[i].Key, want[i].Key) {
			t.Errorf("block %d differs", i)
		}
	}
	if x, err := r.Xattrs(ctx, f.Ino); err != nil || x != nil {
		t.Errorf("xattrs of an rfs flist: %v %v", x, err)
	}
}
