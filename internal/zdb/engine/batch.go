package engine

// Write batches: an event loop serving many clients stores the entries of
// new keys (SetBatched) in memory, and the whole batch reaches the files in
// one write per file, when the loop commits before replying or when any
// other operation needs the files. The bytes written, and their order, are
// those of one write per entry: a batch changes the number of system calls,
// never the files. Keys replaced, deletions and everything else write at
// once, after the batch.

// batchMaxBytes is the data a batch holds before it is written anyway.
const batchMaxBytes = 1 << 20

// batch is the write batch of a namespace; guarded by the namespace mu.
type batch struct {
	id       uint64 // the batch filling now; every write starts the next
	dat, idx []byte // entries for the current data and index files
	// the namespace as it was before the batch, restored if it fails
	datFrom, idxFrom      int64
	datPrev, idxLast      uint32
	entries, payloadBytes uint64
	nextSeq               uint64
	keys                  []byte // the user keys inserted, one after the other
	keyEnds               []int
	failed                [64]failedBatch // the latest failures, by id % 64
}

type failedBatch struct {
	id  uint64
	err error
}

func (b *batch) empty() bool { return len(b.dat) == 0 && len(b.idx) == 0 }

// lock locks ns for writing once its batch is in the files.
func (ns *Namespace) lock() {
	ns.mu.Lock()
	_ = ns.flushLocked() // a failure is reported to the batch's writers
}

// rlock locks ns for reading once its batch is in the files: with a read
// lock, or with the write lock when it had to write the batch (exclusive).
// Release it with runlock(exclusive).
func (ns *Namespace) rlock() (exclusive bool) {
	ns.mu.RLock()
	if ns.batch.empty() {
		return false
	}
	ns.mu.RUnlock()
	ns.lock()
	return true
}

func (ns *Namespace) runlock(exclusive bool) {
	if exclusive {
		ns.mu.Unlock()
	} else {
		ns.mu.RUnlock()
	}
}

// tryRLock is rlock for callers that must not wait: ok is false when the
// lock is taken, or the batch must be written and the write lock is taken.
func (ns *Namespace) tryRLock() (exclusive, ok bool) {
	if !ns.mu.TryRLock() {
		return false, false
	}
	if ns.batch.empty() {
		return false, true
	}
	ns.mu.RUnlock()
	if !ns.mu.TryLock() {
		return false, false
	}
	_ = ns.flushLocked()
	return true, true
}

// needJumpLocked reports whether a payload of n bytes starts the next file
// pair.
func (ns *Namespace) needJumpLocked(n int) bool {
	return ns.datSize > DataHeaderSize && ns.datSize+int64(n) > ns.eng.cfg.DataSize
}

// flagCachedLocked reports whether flagging the index entry at (fid, off)
// needs no disk read: its flags byte is in the batch or the page cache.
func (ns *Namespace) flagCachedLocked(fid, off uint32) bool {
	if fid == ns.fileID && !ns.batch.empty() && int64(off) >= ns.batch.idxFrom {
		return true
	}
	if int(fid) >= len(ns.idxFiles) {
		return false
	}
	var b [1]byte
	return pread(ns.idxFiles[fid], b[:], int64(off)+indexFlagsOffset, true) == nil
}

// batchNewLocked adds the entry of a new key (a new id in sequential mode)
// to the batch; setLocked has checked it. With nowait it fails with
// ErrWouldBlock rather than rotate the files.
func (ns *Namespace) batchNewLocked(key, value []byte, crc, timestamp uint32, nowait bool) (SetResult, error) {
	if ns.needJumpLocked(len(value)) {
		if nowait {
			return SetResult{}, ErrWouldBlock
		}
		if err := ns.jumpLocked(); err != nil {
			return SetResult{}, err
		}
	}
	b := &ns.batch
	if b.empty() {
		b.datFrom, b.idxFrom = ns.datSize, ns.idxSize
		b.datPrev, b.idxLast = ns.datPrev, ns.idxLast[ns.fileID]
		b.entries, b.payloadBytes, b.nextSeq = ns.entries, ns.payloadBytes, ns.nextSeq
		b.keys, b.keyEnds = b.keys[:0], b.keyEnds[:0]
	}
	if ns.mode == ModeSeq {
		key = SeqKey(ns.nextSeq)
	}
	doff := ns.datSize
	b.dat = AppendDataEntry(b.dat, &DataEntry{Key: key, CRC: crc, Timestamp: timestamp, Previous: ns.datPrev}, value)
	ns.datSize = b.datFrom + int64(len(b.dat))
	ns.datPrev = uint32(doff)

	ioff := ns.idxSize
	e := IndexEntry{Key: key, Offset: uint32(doff), Length: uint32(len(value)), DataID: ns.fileID,
		Timestamp: timestamp, CRC: crc, Previous: ns.idxLast[ns.fileID]}
	b.idx = AppendIndexEntry(b.idx, &e)
	ns.idxSize = b.idxFrom + int64(len(b.idx))
	ns.idxLast[ns.fileID] = uint32(ioff)
	ns.dirty[ns.fileID] = true

	if ns.mode == ModeUser {
		ns.mem.put(key, location{DataID: ns.fileID, Offset: uint32(doff), Length: e.Length, CRC: crc, IdxID: ns.fileID, IdxOff: uint32(ioff)})
		b.keys = append(b.keys, key...)
		b.keyEnds = append(b.keyEnds, len(b.keys))
	}
	ns.nextSeq++
	ns.entries++
	ns.payloadBytes += uint64(len(value))
	ns.written.Add(1)
	res := SetResult{Key: key, Batch: b.id}
	if len(b.dat) >= batchMaxBytes {
		if err := ns.flushLocked(); err != nil {
			return SetResult{}, err
		}
	}
	return res, nil
}

// flushLocked writes the batch. If a write fails, the batch is undone: the
// files are cut back, the keys removed, the counters restored, and the
// failure kept for Commit.
func (ns *Namespace) flushLocked() error {
	b := &ns.batch
	if b.empty() {
		return nil
	}
	id := b.id
	b.id++
	var err error
	if ns.closed {
		err = ErrClosed
	} else if werr := ns.writeAt(ns.datFiles[ns.fileID], b.dat, b.datFrom); werr != nil {
		ns.eng.stats.DataWriteFailed.Add(1)
		ns.log.Error("data write failed", "file", ns.datPath(ns.fileID), "bytes", len(b.dat), "err", werr)
		err = ErrWriteData
	} else if werr := ns.writeAt(ns.idxFiles[ns.fileID], b.idx, b.idxFrom); werr != nil {
		ns.eng.stats.IndexWriteFailed.Add(1)
		ns.log.Error("index write failed", "file", ns.idxPath(ns.fileID), "bytes", len(b.idx), "err", werr)
		_ = ns.datFiles[ns.fileID].Truncate(b.datFrom)
		err = ErrWriteIndex
	} else {
		ns.eng.stats.DataWriteBytes.Add(uint64(len(b.dat)))
		ns.eng.stats.IndexWriteBytes.Add(uint64(len(b.idx)))
	}
	if err != nil {
		ns.datSize, ns.idxSize = b.datFrom, b.idxFrom
		ns.datPrev, ns.idxLast[ns.fileID] = b.datPrev, b.idxLast
		ns.entries, ns.payloadBytes, ns.nextSeq = b.entries, b.payloadBytes, b.nextSeq
		if ns.mem != nil {
			for i := len(b.keyEnds) - 1; i >= 0; i-- {
				start := 0
				if i > 0 {
					start = b.keyEnds[i-1]
				}
				ns.mem.del(b.keys[start:b.keyEnds[i]])
			}
		}
		b.failed[id%uint64(len(b.failed))] = failedBatch{id: id, err: err}
	}
	if cap(b.dat) > 4*batchMaxBytes {
		b.dat, b.idx = nil, nil
	}
	b.dat, b.idx = b.dat[:0], b.idx[:0]
	b.keys, b.keyEnds = b.keys[:0], b.keyEnds[:0]
	return err
}

// Commit writes batch id unless it was written already, and returns the
// error that undid it, if any (Commit(0) is nil: nothing was batched).
func (ns *Namespace) Commit(id uint64) error {
	if id == 0 {
		return nil
	}
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return ns.commitLocked(id)
}

func (ns *Namespace) commitLocked(id uint64) error {
	if id == ns.batch.id {
		return ns.flushLocked()
	}
	if f := ns.batch.failed[id%uint64(len(ns.batch.failed))]; f.id == id {
		return f.err
	}
	return nil
}
