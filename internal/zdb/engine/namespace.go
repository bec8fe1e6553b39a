package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/internal/atomicfile"
)

// Namespace is one 0-db namespace: its descriptor, its index and data files
// and, in user mode, the in-memory key index. All methods are safe for
// concurrent use.
type Namespace struct {
	name    string
	idxDir  string
	dataDir string
	eng     *Engine
	log     *slog.Logger

	mu       sync.RWMutex
	closed   bool       // guarded by mu
	desc     Descriptor // guarded by mu
	locked   bool       // guarded by mu
	frozen   bool       // guarded by mu
	mode     Mode       // guarded by mu
	mem      *memIndex  // user mode only; guarded by mu
	seqFirst []uint64   // seq mode: first id of each index file; guarded by mu
	nextSeq  uint64     // seq mode: next id; guarded by mu

	fileID   uint32     // current index/data file id; guarded by mu
	idxFiles []*os.File // by id, opened read-write; guarded by mu
	datFiles []*os.File // by id; guarded by mu
	idxSize  int64      // size of the current index file; guarded by mu
	datSize  int64      // size of the current data file; guarded by mu
	idxLast  []uint32   // offset of the last entry of each index file (0: none); guarded by mu
	datPrev  uint32     // offset of the last data entry of the current file; guarded by mu

	entries      uint64          // live keys; guarded by mu
	payloadBytes uint64          // payload bytes of live keys; guarded by mu
	dirty        map[uint32]bool // index files written since INDEX DIRTY RESET; guarded by mu
	oldDirty     map[uint32]bool // older index files written in place since the last sync; guarded by mu
	buf          []byte          // write scratch; guarded by mu

	batch batch // entries of new keys not written yet; guarded by mu

	// closed and mode, readable without the lock (set with the lock held)
	closedNow atomic.Bool
	modeNow   atomic.Uint32

	written atomic.Uint64 // count of writes, for group commit
	synced  groupSync
}

// groupSync lets concurrent writers share one fsync: the first waiter syncs
// for everybody whose write happened before the sync started.
type groupSync struct {
	mu      sync.Mutex
	cond    *sync.Cond
	done    uint64 // writes known durable; guarded by mu
	running bool   // guarded by mu
}

// Name returns the namespace name.
func (ns *Namespace) Name() string { return ns.name }

func (ns *Namespace) idxPath(id uint32) string { return filepath.Join(ns.idxDir, IndexFileName(id)) }
func (ns *Namespace) datPath(id uint32) string { return filepath.Join(ns.dataDir, DataFileName(id)) }

// openNamespace loads (or creates) namespace name from disk. def is the
// descriptor used when the namespace has none yet.
func (e *Engine) openNamespace(name string, def Descriptor) (*Namespace, error) {
	ns := &Namespace{
		name:    name,
		idxDir:  filepath.Join(e.cfg.IndexDir, name),
		dataDir: filepath.Join(e.cfg.DataDir, name),
		eng:     e,
		log:     e.log.With("namespace", name),
		dirty:   map[uint32]bool{},
	}
	ns.batch.id = 1
	ns.synced.cond = sync.NewCond(&ns.synced.mu)
	for _, d := range []string{ns.idxDir, ns.dataDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("namespace %s: %w", name, err)
		}
	}
	desc, err := loadDescriptor(ns.idxDir, def)
	if err != nil {
		return nil, fmt.Errorf("namespace %s: %w", name, err)
	}
	desc.Name = name
	ns.desc = desc
	if err := ns.load(); err != nil {
		ns.closeFiles()
		return nil, fmt.Errorf("namespace %s: %w", name, err)
	}
	ns.modeNow.Store(uint32(ns.mode))
	return ns, nil
}

// loadDescriptor reads dir/zdb-namespace, or writes def there when absent
// (0-db opens the descriptor create-or-read: an existing one is adopted).
func loadDescriptor(dir string, def Descriptor) (Descriptor, error) {
	path := filepath.Join(dir, DescriptorFile)
	b, err := os.ReadFile(path)
	if err == nil {
		d, err := ParseDescriptor(b)
		if err != nil {
			return Descriptor{}, fmt.Errorf("%s: %w", path, err)
		}
		return d, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return Descriptor{}, err
	}
	if err := writeDescriptor(dir, def); err != nil {
		return Descriptor{}, err
	}
	return def, nil
}

func writeDescriptor(dir string, d Descriptor) error {
	b, err := MarshalDescriptor(d)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, DescriptorFile), b, 0o600)
}

// defaultMode is the mode of a namespace created on this server.
func (e *Engine) defaultMode() Mode {
	if e.cfg.Mixed {
		return ModeUser
	}
	return e.cfg.Mode
}

// load replays the namespace files into memory, repairing a torn tail of the
// newest index and data files.
func (ns *Namespace) load() error {
	var last uint32
	n := 0
	for ; ; n++ {
		if _, err := os.Stat(ns.idxPath(uint32(n))); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				break
			}
			return err
		}
	}
	if n == 0 {
		if _, err := os.Stat(filepath.Join(ns.idxDir, "zdb-index-00000")); err == nil {
			return fmt.Errorf("%s: 0-db v1 index files are not supported: %w", ns.idxDir, ErrUnsupported)
		}
		ns.mode = ns.eng.defaultMode()
		return ns.createPair(0)
	}
	last = uint32(n - 1)

	// Open every file pair; check the data files before replaying the index
	// so that index entries pointing past a torn data tail are dropped.
	datEnds := make([]int64, n)
	for id := uint32(0); id <= last; id++ {
		f, err := os.OpenFile(ns.idxPath(id), os.O_RDWR, 0)
		if err != nil {
			return err
		}
		ns.idxFiles = append(ns.idxFiles, f)
		df, err := os.OpenFile(ns.datPath(id), os.O_RDWR, 0)
		if errors.Is(err, os.ErrNotExist) && id == last {
			// crash while rotating: the index was created, the data not yet
			df, err = ns.createFile(ns.datPath(id), MarshalDataHeader(DataHeader{Version: DataVersion, Created: uint64(time.Now().Unix()), FileID: id}))
		}
		if err != nil {
			return err
		}
		ns.datFiles = append(ns.datFiles, df)
		end, prev, err := ns.checkData(df, id == last)
		if err != nil {
			return fmt.Errorf("%s: %w", ns.datPath(id), err)
		}
		datEnds[id] = end
		if id == last {
			ns.datSize, ns.datPrev = end, prev
		}
	}
	ns.idxLast = make([]uint32, n)
	for id := uint32(0); id <= last; id++ {
		if err := ns.replayIndex(id, id == last, datEnds); err != nil {
			return fmt.Errorf("%s: %w", ns.idxPath(id), err)
		}
	}
	ns.fileID = last
	return nil
}

// createPair creates index and data file id and makes them current.
func (ns *Namespace) createPair(id uint32) error {
	now := uint64(time.Now().Unix())
	ih := MarshalIndexHeader(IndexHeader{Version: IndexVersion, Created: now, Opened: now, FileID: id, Mode: ns.mode})
	f, err := ns.createFile(ns.idxPath(id), ih)
	if err != nil {
		return err
	}
	df, err := ns.createFile(ns.datPath(id), MarshalDataHeader(DataHeader{Version: DataVersion, Created: now, FileID: id}))
	if err != nil {
		f.Close()
		_ = os.Remove(ns.idxPath(id))
		return err
	}
	ns.idxFiles = append(ns.idxFiles, f)
	ns.datFiles = append(ns.datFiles, df)
	ns.idxLast = append(ns.idxLast, 0)
	if id == 0 {
		ns.seqFirst = nil
		ns.nextSeq = 0
		if ns.mode == ModeUser {
			ns.mem = newMemIndex()
		}
	}
	if ns.mode == ModeSeq {
		ns.seqFirst = append(ns.seqFirst, ns.nextSeq)
	}
	ns.fileID = id
	ns.idxSize = IndexHeaderSize
	ns.datSize = DataHeaderSize
	ns.datPrev = 0
	ns.dirty[id] = true
	ns.eng.stats.IndexWriteBytes.Add(IndexHeaderSize)
	ns.eng.stats.DataWriteBytes.Add(DataHeaderSize)
	return nil
}

// createFile creates path (truncating a stale one) holding header, synced.
func (ns *Namespace) createFile(path string, header []byte) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(header); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := fdatasync(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(path)); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// closeFiles closes every open file of the namespace.
func (ns *Namespace) closeFiles() {
	for _, f := range ns.idxFiles {
		f.Close()
	}
	for _, f := range ns.datFiles {
		f.Close()
	}
	ns.idxFiles, ns.datFiles = nil, nil
}

// fdatasync flushes the data of f (and the size) to the device.
func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fdatasync(int(fd)) }); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("fdatasync %s: %w", f.Name(), serr)
	}
	return nil
}

// Descriptor returns the namespace settings.
func (ns *Namespace) Descriptor() Descriptor {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	return ns.desc
}

// Mode returns the namespace mode. It never waits for the namespace lock.
func (ns *Namespace) Mode() Mode { return Mode(ns.modeNow.Load()) }

// Closed reports whether the namespace was deleted or closed. It never
// waits for the namespace lock.
func (ns *Namespace) Closed() bool { return ns.closedNow.Load() }

// Frozen reports whether every access is refused (NSSET freeze).
func (ns *Namespace) Frozen() bool {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	return ns.frozen
}

// Locked reports whether the namespace is read-only (NSSET lock).
func (ns *Namespace) Locked() bool {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	return ns.locked
}

// Entries returns the number of live keys (DBSIZE).
func (ns *Namespace) Entries() uint64 {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	return ns.entries
}

// Info is a snapshot of a namespace for NSINFO.
type Info struct {
	Descriptor
	Mode          Mode
	Entries       uint64
	DataSizeBytes uint64
	IndexMemBytes uint64 // in-memory index size
	NextID        uint64 // next sequential id (seq mode), entries written (user mode)
	Locked        bool
	Frozen        bool
	IndexPath     string
	DataPath      string
}

// Info returns a snapshot of the namespace state.
func (ns *Namespace) Info() Info {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	in := Info{
		Descriptor:    ns.desc,
		Mode:          ns.mode,
		Entries:       ns.entries,
		DataSizeBytes: ns.payloadBytes,
		NextID:        ns.nextSeq,
		Locked:        ns.locked,
		Frozen:        ns.frozen,
		IndexPath:     ns.idxDir,
		DataPath:      ns.dataDir,
	}
	if ns.mem != nil {
		in.IndexMemBytes = uint64(ns.mem.memBytes())
	}
	return in
}

// IndexMemBytes returns the memory the key index holds and the bytes its
// live records and table need (a measure of the per-key cost).
func (ns *Namespace) IndexMemBytes() (held, live int) {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	if ns.mem == nil {
		return 0, 0
	}
	return ns.mem.memBytes(), ns.mem.liveBytes()
}

// Fresh reports whether the namespace never stored anything.
func (ns *Namespace) Fresh() bool {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	return ns.freshLocked()
}

func (ns *Namespace) freshLocked() bool {
	return ns.fileID == 0 && ns.idxSize == IndexHeaderSize && ns.datSize == DataHeaderSize
}

// close closes the files; later calls fail with ErrClosed.
func (ns *Namespace) close() {
	ns.lock()
	defer ns.mu.Unlock()
	if ns.closed {
		return
	}
	ns.closed = true
	ns.closedNow.Store(true)
	ns.closeFiles()
	ns.mem = nil
}
