package format

import (
	"context"
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/zos-go/zos/pkg/flist/block"
)

// checkCancelled fails the test unless err is nil or a cancellation: a
// read that ends because its context is done says nothing about the flist.
func checkCancelled(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, ErrCorrupt) || !errors.Is(err, context.Canceled) {
		t.Errorf("%s with a cancelled context: %v, want context.Canceled and no ErrCorrupt", what, err)
	}
}

func TestCancelledReadsAreNotCorrupt(t *testing.T) {
	for _, kind := range []Kind{KindRFS, KindZero} {
		t.Run(kind.String(), func(t *testing.T) {
			ctx := context.Background()
			p := filepath.Join(t.TempDir(), "a.flist")
			create := CreateRFS
			if kind == KindZero {
				create = CreateZero
			}
			w, err := create(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			writeSample(t, w, kind.Codec())
			r, err := Open(ctx, p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			_, err = r.Root(cancelled)
			checkCancelled(t, "Root", err)
			_, err = r.Children(cancelled, RootIno)
			checkCancelled(t, "Children", err)
			_, err = r.Tags(cancelled)
			checkCancelled(t, "Tags", err)
			_, err = r.Routes(cancelled)
			checkCancelled(t, "Routes", err)
			bin, err := Lookup(ctx, r, "bin")
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.Children(cancelled, bin.Ino)
			checkCancelled(t, "Children of bin", err)
			tool, err := Lookup(ctx, r, "bin/tool")
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.Blocks(cancelled, tool.Ino)
			checkCancelled(t, "Blocks", err)
			_, err = r.Xattrs(cancelled, tool.Ino)
			checkCancelled(t, "Xattrs", err)
			// nothing of the cancelled reads stuck: the reader still
			// gives what the flist holds (0-flist owners come from ACIs
			// the cancelled listings may have been reading)
			got := readAll(t, r)
			for i, s := range sample {
				if g := got[s.path]; g.UID != uint32(i) || g.GID != uint32(100+i) || g.Mode&0o7777 != s.mode&0o7777 {
					t.Errorf("%q after cancelled reads: %+v", s.path, g)
				}
			}
		})
	}
}

// TestReadCancelledMidQuery cancels block list reads of a big file at
// random points: each read gives the whole list or a cancellation, never
// ErrCorrupt (the flistfs log once said "blocks of 31: context canceled:
// corrupt flist").
func TestReadCancelledMidQuery(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "big.fl")
	w, err := CreateRFS(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	root, err := w.Add(ctx, Entry{Mode: syscall.S_IFDIR | 0o755})
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := block.RFS.Encode([]byte("same block"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	blocks := make([]block.Block, n)
	for i := range blocks {
		blocks[i] = b
	}
	ino, err := w.Add(ctx, Entry{Parent: root, Name: "big", Mode: syscall.S_IFREG | 0o644, Size: n * block.ChunkSize, Blocks: blocks})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	start := time.Now()
	if got, err := r.Blocks(ctx, ino); err != nil || len(got) != n {
		t.Fatalf("Blocks: %d, %v", len(got), err)
	}
	full := time.Since(start)
	t.Logf("full read of %d blocks: %v", n, full)
	cancelledOnes := 0
	for i := range 40 {
		cctx, cancel := context.WithTimeout(ctx, full*time.Duration(i)/40)
		got, err := r.Blocks(cctx, ino)
		cancel()
		if err != nil {
			cancelledOnes++
			if errors.Is(err, ErrCorrupt) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Blocks cut after %v: %v, want context.DeadlineExceeded and no ErrCorrupt", full*time.Duration(i)/40, err)
			}
		} else if len(got) != n {
			t.Fatalf("Blocks cut after %v: %d blocks, no error", full*time.Duration(i)/40, len(got))
		}
	}
	if cancelledOnes == 0 {
		t.Errorf("no read was cut short (a full read takes %v)", full)
	}
}

// TestZeroCancelledACLNotKept: an owner lookup cut short by its context
// is no answer; it must not be kept as 0-fs's default owner for every
// later listing.
func TestZeroCancelledACLNotKept(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "a.flist")
	w, err := CreateZero(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	writeSample(t, w, block.Zero)
	r, err := Open(ctx, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	zr := r.(*zeroReader)
	d, err := zr.dir(ctx, "bin")
	if err != nil {
		t.Fatal(err)
	}
	contents, err := d.Contents()
	if err != nil || contents.Len() == 0 {
		t.Fatalf("bin: %v", err)
	}
	key, err := contents.At(0).Aclkey()
	if err != nil || key == "" {
		t.Fatalf("aci key %q: %v", key, err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := zr.access(cancelled, key); !errors.Is(err, context.Canceled) {
		t.Errorf("owner lookup with a cancelled context: %v", err)
	}
	a, err := zr.access(ctx, key)
	if err != nil || a == zeroDefaultAccess {
		t.Errorf("owner after a cancelled lookup: %+v, %v (the default: %+v)", a, err, zeroDefaultAccess)
	}
}
