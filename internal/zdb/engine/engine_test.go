package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func testEngine(t testing.TB, dir string, mode Mode) *Engine {
	t.Helper()
	cfg := DefaultConfig()
	cfg.IndexDir, cfg.DataDir = filepath.Join(dir, "index"), filepath.Join(dir, "data")
	cfg.Mode = mode
	cfg.DataSize = 1 << 16
	e := New(cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err := e.Open(); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestCRC(t *testing.T) {
	// CRC-32C with seed 0 and no inversion, as the SSE4.2 instruction gives:
	// the empty payload is 0, and "123456789" is the inverse-free variant
	// of the standard check value 0xE3069283.
	if CRC(nil) != 0 {
		t.Fatalf("CRC(empty) = %#x", CRC(nil))
	}
	if got := CRC([]byte("a")); got != 0x93ad1061 {
		t.Fatalf("CRC(a) = %#x, want 0x93ad1061", got)
	}
}

func TestHeadersGolden(t *testing.T) {
	ih := MarshalIndexHeader(IndexHeader{Version: IndexVersion, Created: 1, Opened: 2, FileID: 3, Mode: ModeSeq})
	want := []byte("IDX0\x04\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x01")
	if !bytes.Equal(ih, want) {
		t.Fatalf("index header % x", ih)
	}
	dh := MarshalDataHeader(DataHeader{Version: DataVersion, Created: 1, Opened: 2, FileID: 3})
	if len(dh) != 28 || string(dh[:4]) != "DAT0" || dh[4] != 3 || dh[24] != 3 {
		t.Fatalf("data header % x", dh)
	}
	e := IndexEntry{Key: []byte("k"), Offset: 28, Length: 5, Previous: 29, Flags: 1, DataID: 2, Timestamp: 7, CRC: 9, ParentID: 1, ParentOff: 40}
	b := AppendIndexEntry(nil, &e)
	if len(b) != 35 || b[0] != 1 || b[13] != 1 || b[34] != 'k' || binary.LittleEndian.Uint32(b[30:]) != 40 {
		t.Fatalf("index entry % x", b)
	}
	back, err := ParseIndexEntry(b)
	if err != nil || back.ParentOff != 40 || back.DataID != 2 || string(back.Key) != "k" {
		t.Fatalf("round trip %+v %v", back, err)
	}
	if _, err := ParseIndexHeader(append([]byte("IDX0\x02\x00\x00\x00"), make([]byte, 21)...)); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("v1 header: %v", err)
	}
}

func TestDescriptorFixtures(t *testing.T) {
	// zos test_data/zdb-namespace: legacy, 11 bytes, name "test", public
	legacy := []byte{4, 0, 0, 0, 0, 0, 1, 't', 'e', 's', 't'}
	d, err := ParseDescriptor(legacy)
	if err != nil || d.Name != "test" || !d.Public || d.Password != "" || d.MaxSize != 0 {
		t.Fatalf("legacy: %+v %v", d, err)
	}
	// zos test_data/zdb-namespace.v1: extended, name test, password, 1 GiB
	v1, err := MarshalDescriptor(Descriptor{Name: "test", Password: "password", MaxSize: 1 << 30})
	if err != nil || len(v1) != 31 {
		t.Fatalf("v1 length %d: %v", len(v1), err)
	}
	d, err = ParseDescriptor(v1)
	if err != nil || d.Password != "password" || d.MaxSize != 1<<30 || d.Public {
		t.Fatalf("v1: %+v %v", d, err)
	}
	// storaged's descriptor: flags public+extended, version 1, maxsize
	if v1[6] != 4 || binary.LittleEndian.Uint32(v1[19:]) != 1 {
		t.Fatalf("extended header % x", v1)
	}
	if _, err := ParseDescriptor(v1[:20]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short extended: %v", err)
	}
}

// TestMemIndex compares the compact index with a map under random churn.
func TestMemIndex(t *testing.T) {
	m := newMemIndex()
	ref := map[string]location{}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		k := []byte(fmt.Sprintf("k%d", r.IntN(20000)))
		switch r.IntN(3) {
		case 0, 1:
			l := location{DataID: uint32(i), Offset: uint32(i * 3), Length: uint32(i % 77), CRC: uint32(i * 7)}
			old, ok := m.put(k, l)
			if rl, rok := ref[string(k)]; rok != ok || (ok && rl != old) {
				t.Fatalf("put %s: old %v %v, want %v %v", k, old, ok, rl, rok)
			}
			ref[string(k)] = l
		case 2:
			old, ok := m.del(k)
			if rl, rok := ref[string(k)]; rok != ok || (ok && rl != old) {
				t.Fatalf("del %s: %v %v, want %v %v", k, old, ok, rl, rok)
			}
			delete(ref, string(k))
		}
	}
	if m.count != len(ref) {
		t.Fatalf("count %d, want %d", m.count, len(ref))
	}
	for k, l := range ref {
		if got, ok := m.get([]byte(k)); !ok || got != l {
			t.Fatalf("get %s = %v %v, want %v", k, got, ok, l)
		}
	}
	n := 0
	m.walk(func([]byte, location) bool { n++; return true })
	if n != len(ref) {
		t.Fatalf("walk saw %d", n)
	}
}

// TestMemIndexCost: per key, the index holds at most 64 bytes beyond the key.
func TestMemIndexCost(t *testing.T) {
	m := newMemIndex()
	const n = 300000
	for i := 0; i < n; i++ {
		m.put([]byte(fmt.Sprintf("key:%012d", i)), location{})
	}
	perKey := float64(m.memBytes())/n - 16
	t.Logf("index: %.1f bytes per key beyond the key", perKey)
	if perKey > 64 {
		t.Fatalf("%.1f bytes per key beyond the key", perKey)
	}
}

func TestEngineReplay(t *testing.T) {
	dir := t.TempDir()
	e := testEngine(t, dir, ModeUser)
	ns, _ := e.Namespace(DefaultNamespace)
	val := bytes.Repeat([]byte("v"), 5000)
	for i := 0; i < 50; i++ {
		if _, err := ns.Set([]byte(fmt.Sprint("k", i)), append(val, byte(i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := ns.Del([]byte("k3"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := ns.Set([]byte("k4"), []byte("new"), 0); err != nil {
		t.Fatal(err)
	}
	if ns.fileID < 2 {
		t.Fatalf("no rotation: file id %d", ns.fileID)
	}
	e.Close()
	e = testEngine(t, dir, ModeUser)
	defer e.Close()
	ns, _ = e.Namespace(DefaultNamespace)
	if got := ns.Entries(); got != 49 {
		t.Fatalf("entries %d", got)
	}
	if v, ok, _ := ns.Get([]byte("k4")); !ok || string(v) != "new" {
		t.Fatalf("k4 = %q %v", v, ok)
	}
	if _, ok, _ := ns.Get([]byte("k3")); ok {
		t.Fatal("k3 resurrected")
	}
	if v, ok, _ := ns.Get([]byte("k49")); !ok || !bytes.Equal(v, append(val, 49)) {
		t.Fatal("k49 lost")
	}
	// a server in the other mode refuses the namespace
	cfg := e.cfg
	cfg.Mode = ModeSeq
	other := New(cfg, e.log)
	if err := other.Open(); !errors.Is(err, ErrModeMismatch) {
		t.Fatalf("seq server on user data: %v", err)
	}
}

func TestSyncGroupCommit(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.IndexDir, cfg.DataDir, cfg.Sync = filepath.Join(dir, "i"), filepath.Join(dir, "d"), true
	e := New(cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err := e.Open(); err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ns, _ := e.Namespace(DefaultNamespace)
	done := make(chan error)
	for w := 0; w < 20; w++ {
		go func() {
			for i := 0; i < 50; i++ {
				if _, err := ns.Set([]byte(fmt.Sprint(w, "-", i)), []byte("x"), 0); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for w := 0; w < 20; w++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	ns.synced.mu.Lock()
	synced := ns.synced.done
	ns.synced.mu.Unlock()
	if synced != 1000 || ns.Entries() != 1000 {
		t.Fatalf("synced %d, entries %d", synced, ns.Entries())
	}
}

// FuzzLoadIndex writes arbitrary bytes after a valid header as the index
// file of a namespace and opens it: it must load or fail with an error,
// never panic.
func FuzzLoadIndex(f *testing.F) {
	e := IndexEntry{Key: []byte("key"), Offset: 28, Length: 1, DataID: 0, CRC: CRC([]byte("v"))}
	f.Add(AppendIndexEntry(nil, &e), AppendDataEntry(nil, &DataEntry{Key: []byte("key"), CRC: CRC([]byte("v"))}, []byte("v")))
	f.Add([]byte{0, 1, 2}, []byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 40), bytes.Repeat([]byte{3}, 30))
	f.Fuzz(func(t *testing.T, idx, dat []byte) {
		dir := t.TempDir()
		for _, d := range []string{"index/default", "data/default"} {
			os.MkdirAll(filepath.Join(dir, d), 0o755)
		}
		now := uint64(time.Now().Unix())
		ih := MarshalIndexHeader(IndexHeader{Version: IndexVersion, Created: now, FileID: 0, Mode: ModeUser})
		dh := MarshalDataHeader(DataHeader{Version: DataVersion, Created: now})
		os.WriteFile(filepath.Join(dir, "index/default/i0"), append(ih, idx...), 0o600)
		os.WriteFile(filepath.Join(dir, "data/default/d0"), append(dh, dat...), 0o600)
		cfg := DefaultConfig()
		cfg.IndexDir, cfg.DataDir = filepath.Join(dir, "index"), filepath.Join(dir, "data")
		eng := New(cfg, slog.New(slog.DiscardHandler))
		if err := eng.Open(); err != nil {
			return
		}
		defer eng.Close()
		ns, _ := eng.Namespace(DefaultNamespace)
		// whatever loaded must be readable and writable
		ns.mem.walk(func(k []byte, _ location) bool {
			if _, _, err := ns.Get(append([]byte(nil), k...)); err != nil {
				t.Fatalf("loaded key %q unreadable: %v", k, err)
			}
			return true
		})
		if _, err := ns.Set([]byte("after"), []byte("x"), 0); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzParseDescriptor: any bytes parse or fail, and what parses round-trips.
func FuzzParseDescriptor(f *testing.F) {
	f.Add([]byte{4, 0, 0, 0, 0, 0, 1, 't', 'e', 's', 't'})
	b, _ := MarshalDescriptor(Descriptor{Name: "n", Password: "p", Worm: true, MaxSize: 7})
	f.Add(b)
	f.Fuzz(func(t *testing.T, in []byte) {
		d, err := ParseDescriptor(in)
		if err != nil {
			return
		}
		enc, err := MarshalDescriptor(d)
		if err != nil {
			t.Fatal(err)
		}
		if d2, err := ParseDescriptor(enc); err != nil || d2 != d {
			t.Fatalf("round trip %+v -> %+v (%v)", d, d2, err)
		}
	})
}

// TestRotateTime: with RotateTime, a namespace that received data gets its
// next file pair on the period; one with nothing new is left alone, and the
// data stays readable across the files (also after a reopen).
func TestRotateTime(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.IndexDir, cfg.DataDir = filepath.Join(dir, "index"), filepath.Join(dir, "data")
	cfg.RotateTime = 20 * time.Millisecond
	e := New(cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err := e.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	ns, err := e.Namespace(DefaultNamespace)
	if err != nil {
		t.Fatal(err)
	}
	files := func() int {
		m, _ := filepath.Glob(filepath.Join(cfg.DataDir, DefaultNamespace, "d*"))
		return len(m)
	}
	if _, err := ns.Set([]byte("a"), []byte("first"), 0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for files() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if files() != 2 {
		t.Fatalf("%d data files after a write and a rotation period, want 2", files())
	}
	time.Sleep(100 * time.Millisecond) // five idle periods
	if n := files(); n != 2 {
		t.Fatalf("%d data files: an empty pair was rotated", n)
	}
	if _, err := ns.Set([]byte("b"), []byte("second"), 0); err != nil {
		t.Fatal(err)
	}
	for files() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := files(); n != 3 {
		t.Fatalf("%d data files after the second write, want 3", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e.Close()
	e = New(cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err := e.Open(); err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ns, _ = e.Namespace(DefaultNamespace)
	for k, want := range map[string]string{"a": "first", "b": "second"} {
		if v, ok, err := ns.Get([]byte(k)); err != nil || !ok || string(v) != want {
			t.Errorf("%s after rotations and a reopen: %q %v %v", k, v, ok, err)
		}
	}
}
