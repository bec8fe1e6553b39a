package engine

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// dirFiles returns the zdb files under dir by name, without their headers
// (which hold creation times).
func dirFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !isZdbFile(d.Name()) {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		hdr := DataHeaderSize
		if d.Name()[0] == 'i' {
			hdr = IndexHeaderSize
		}
		rel, _ := filepath.Rel(dir, path)
		out[rel] = b[min(hdr, len(b)):]
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBatchWritesSameFiles: the same writes, batched or not, leave the same
// bytes in the files, across rotations, replacements and deletions.
func TestBatchWritesSameFiles(t *testing.T) {
	for _, mode := range []Mode{ModeUser, ModeSeq} {
		t.Run(mode.String(), func(t *testing.T) {
			plainDir, batchDir := t.TempDir(), t.TempDir()
			plain, batched := testEngine(t, plainDir, mode), testEngine(t, batchDir, mode)
			pns, _ := plain.Namespace(DefaultNamespace)
			bns, _ := batched.Namespace(DefaultNamespace)
			rng := rand.New(rand.NewPCG(1, 2))
			var seqKeys [][]byte
			var pending []uint64
			for i := range 3000 {
				key := []byte(fmt.Sprintf("key-%d", rng.IntN(400)))
				if mode == ModeSeq {
					key = nil
					if len(seqKeys) > 0 && rng.IntN(4) == 0 {
						key = seqKeys[rng.IntN(len(seqKeys))]
					}
				}
				value := bytes.Repeat([]byte{byte(i)}, rng.IntN(300))
				ts := uint32(1000 + i)
				if mode == ModeUser && rng.IntN(10) == 0 {
					perr, berr := pns.Del(key, ts), bns.Del(key, ts)
					if !errors.Is(berr, perr) {
						t.Fatalf("del %s: batched %v, plain %v", key, berr, perr)
					}
					continue
				}
				pres, perr := pns.Set(key, value, ts)
				bres, berr := bns.SetBatched(key, value, ts)
				if perr != nil || berr != nil {
					t.Fatalf("set %d: plain %v, batched %v", i, perr, berr)
				}
				if !bytes.Equal(pres.Key, bres.Key) || pres.Unchanged != bres.Unchanged {
					t.Fatalf("set %d: plain %+v, batched %+v", i, pres, bres)
				}
				if mode == ModeSeq && len(key) == 0 {
					seqKeys = append(seqKeys, bres.Key)
				}
				pending = append(pending, bres.Batch)
				if rng.IntN(20) == 0 {
					for _, b := range pending {
						if err := bns.Commit(b); err != nil {
							t.Fatal(err)
						}
					}
					pending = pending[:0]
				}
			}
			for _, b := range pending {
				if err := bns.Commit(b); err != nil {
					t.Fatal(err)
				}
			}
			if pns.Entries() != bns.Entries() {
				t.Fatalf("entries: plain %d, batched %d", pns.Entries(), bns.Entries())
			}
			plain.Close()
			batched.Close()
			pf, bf := dirFiles(t, plainDir), dirFiles(t, batchDir)
			if len(pf) < 4 || len(pf) != len(bf) {
				t.Fatalf("files: plain %d, batched %d", len(pf), len(bf))
			}
			for name, b := range pf {
				if !bytes.Equal(b, bf[name]) {
					t.Fatalf("%s differs (plain %d bytes, batched %d)", name, len(b), len(bf[name]))
				}
			}
		})
	}
}

// TestBatchReadYourWrites: a batched entry is visible to every reader
// before the batch is committed; reading writes the batch.
func TestBatchReadYourWrites(t *testing.T) {
	e := testEngine(t, t.TempDir(), ModeUser)
	defer e.Close()
	ns, _ := e.Namespace(DefaultNamespace)
	res, err := ns.SetBatched([]byte("k"), []byte("value"), 0)
	if err != nil || res.Batch == 0 {
		t.Fatalf("SetBatched: %+v %v", res, err)
	}
	v, ok, err := ns.Get([]byte("k"))
	if err != nil || !ok || string(v) != "value" {
		t.Fatalf("Get = %q %v %v", v, ok, err)
	}
	if err := ns.Commit(res.Batch); err != nil {
		t.Fatalf("Commit of a batch written by a reader: %v", err)
	}
	// a replaced key is written at once, after the batch
	res2, err := ns.SetBatched([]byte("k"), []byte("other"), 0)
	if err != nil || res2.Batch != 0 {
		t.Fatalf("replacing SetBatched: %+v %v", res2, err)
	}
}

// TestBatchFailureUndone: when the batch cannot be written, every entry of
// it is undone (keys, counters, file sizes) and Commit reports the error;
// the namespace goes on and restarts cleanly.
func TestBatchFailureUndone(t *testing.T) {
	for _, broken := range []string{"data", "index"} {
		t.Run(broken, func(t *testing.T) {
			dir := t.TempDir()
			e := testEngine(t, dir, ModeUser)
			ns, _ := e.Namespace(DefaultNamespace)
			if _, err := ns.Set([]byte("before"), []byte("kept"), 0); err != nil {
				t.Fatal(err)
			}
			entries, info := ns.Entries(), ns.Info()
			datSize, idxSize := ns.datSize, ns.idxSize
			var ids []uint64
			for _, k := range []string{"a", "b", "c"} {
				res, err := ns.SetBatched([]byte(k), []byte("lost-"+k), 0)
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, res.Batch)
			}
			// swap the file for a read-only one: the batch write fails
			ns.mu.Lock()
			files := ns.datFiles
			path := ns.datPath(ns.fileID)
			if broken == "index" {
				files, path = ns.idxFiles, ns.idxPath(ns.fileID)
			}
			good := files[ns.fileID]
			ro, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			files[ns.fileID] = ro
			ns.mu.Unlock()
			for _, id := range ids {
				if err := ns.Commit(id); !errors.Is(err, ErrWriteData) && !errors.Is(err, ErrWriteIndex) {
					t.Fatalf("Commit(%d) = %v, want a write error", id, err)
				}
			}
			ns.mu.Lock()
			files[ns.fileID] = good
			ns.mu.Unlock()
			ro.Close()

			for _, k := range []string{"a", "b", "c"} {
				if ok, _ := ns.Exists([]byte(k)); ok {
					t.Fatalf("key %s of the failed batch exists", k)
				}
			}
			if ns.Entries() != entries || ns.Info().DataSizeBytes != info.DataSizeBytes || ns.datSize != datSize || ns.idxSize != idxSize {
				t.Fatalf("state not restored: entries %d/%d size %d/%d", ns.Entries(), entries, ns.datSize, datSize)
			}
			if st, _ := os.Stat(ns.datPath(ns.fileID)); st.Size() != datSize {
				t.Fatalf("data file is %d bytes, want %d", st.Size(), datSize)
			}
			res, err := ns.SetBatched([]byte("after"), []byte("stored"), 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := ns.Commit(res.Batch); err != nil {
				t.Fatal(err)
			}
			e.Close()

			e = testEngine(t, dir, ModeUser)
			defer e.Close()
			ns, _ = e.Namespace(DefaultNamespace)
			for k, want := range map[string]string{"before": "kept", "after": "stored", "a": ""} {
				v, ok, err := ns.Get([]byte(k))
				if err != nil || ok != (want != "") || string(v) != want {
					t.Fatalf("after restart, %s = %q %v %v, want %q", k, v, ok, err, want)
				}
			}
		})
	}
}

// TestNoWaitAppendGet: a value in the page cache is returned as AppendGet
// returns it; one that is not fails with ErrWouldBlock and leaves dst and
// the error counters alone, and AppendGet still reads it.
func TestNoWaitAppendGet(t *testing.T) {
	e := testEngine(t, t.TempDir(), ModeUser)
	defer e.Close()
	ns, _ := e.Namespace(DefaultNamespace)
	value := bytes.Repeat([]byte("v"), 3000)
	if _, err := ns.Set([]byte("k"), value, 0); err != nil {
		t.Fatal(err)
	}
	header := func(b []byte, n int) []byte { return append(b, fmt.Sprintf("<%d>", n)...) }
	want := append([]byte("prefix<3000>"), value...)
	got, ok, err := ns.NoWait().AppendGet([]byte("prefix"), []byte("k"), header)
	if noWaitUnsupported.Load() {
		t.Skip("RWF_NOWAIT not supported here")
	}
	if err != nil || !ok || !bytes.Equal(got, want) {
		t.Fatalf("cached read: %q %v %v", got, ok, err)
	}
	if got, ok, err := ns.NoWait().AppendGet(nil, []byte("missing"), header); err != nil || ok || len(got) != 0 {
		t.Fatalf("missing key: %q %v %v", got, ok, err)
	}

	// drop the data from the page cache
	ns.mu.RLock()
	f := ns.datFiles[ns.fileID]
	ns.mu.RUnlock()
	if err := fdatasync(f); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
	failed := e.Stats().DataReadFailed.Load()
	got, ok, err = ns.NoWait().AppendGet([]byte("prefix"), []byte("k"), header)
	switch {
	case errors.Is(err, ErrWouldBlock):
		if ok || string(got) != "prefix" || e.Stats().DataReadFailed.Load() != failed {
			t.Fatalf("would block: %q %v, failures %d", got, ok, e.Stats().DataReadFailed.Load()-failed)
		}
	case err != nil || !ok || !bytes.Equal(got, want):
		t.Fatalf("cached read after eviction: %q %v %v", got, ok, err)
	default:
		t.Log("the page cache kept the data")
	}
	if got, ok, err := ns.AppendGet([]byte("prefix"), []byte("k"), header); err != nil || !ok || !bytes.Equal(got, want) {
		t.Fatalf("read: %q %v %v", got, ok, err)
	}
}
