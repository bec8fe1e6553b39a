package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// SetResult is the outcome of Set.
type SetResult struct {
	Key       []byte // the key stored (the new id in sequential mode)
	Unchanged bool   // the value was already stored: nothing written
	// Batch is the write batch holding the entry (SetBatched), 0 when it
	// was written at once: Commit(Batch) tells whether it reached the files.
	Batch uint64
}

// Set stores value under key. In user mode key must not be empty; in
// sequential mode an empty key allocates a new id and a non-empty key must
// be an existing id. timestamp 0 means now. With Config.Sync, Set returns
// once the write is on disk.
func (ns *Namespace) Set(key, value []byte, timestamp uint32) (SetResult, error) {
	if len(key) > MaxKeySize {
		return SetResult{}, ErrKeyTooLarge
	}
	if uint64(len(value)) > maxPayload {
		return SetResult{}, ErrPayloadTooLong
	}
	if timestamp == 0 {
		timestamp = uint32(time.Now().Unix())
	}
	ns.mu.Lock()
	res, err := ns.setLocked(key, value, timestamp, false, false)
	w := ns.written.Load()
	ns.mu.Unlock()
	if err != nil || res.Unchanged {
		return res, err
	}
	if ns.eng.cfg.Sync {
		if err := ns.durable(w); err != nil {
			return SetResult{}, err
		}
	}
	return res, nil
}

// SetBatched is Set for an event loop serving many clients. The entry of a
// new key (a new id in sequential mode) joins the current write batch, and
// the batch is written with one write per file; replacing a key writes at
// once, as Set does. Before telling its client that the write is done, the
// caller must call Commit(res.Batch), which writes the batch unless another
// operation on the namespace did, and reports whether the entry reached the
// files: a batch that fails to be written is undone as a whole. SetBatched
// does not wait for fsync (Config.Sync): callers that must, use Set.
func (ns *Namespace) SetBatched(key, value []byte, timestamp uint32) (SetResult, error) {
	return ns.setBatched(key, value, timestamp, false)
}

func (ns *Namespace) setBatched(key, value []byte, timestamp uint32, nowait bool) (SetResult, error) {
	if len(key) > MaxKeySize {
		return SetResult{}, ErrKeyTooLarge
	}
	if uint64(len(value)) > maxPayload {
		return SetResult{}, ErrPayloadTooLong
	}
	if timestamp == 0 {
		timestamp = uint32(time.Now().Unix())
	}
	if nowait {
		if !ns.mu.TryLock() {
			return SetResult{}, ErrWouldBlock
		}
	} else {
		ns.mu.Lock()
	}
	defer ns.mu.Unlock()
	return ns.setLocked(key, value, timestamp, true, nowait)
}

// maxPayload is the largest payload a data entry can describe.
const maxPayload = 1<<32 - 1 - DataEntrySize - MaxKeySize

func (ns *Namespace) writableLocked() error {
	switch {
	case ns.closed:
		return ErrClosed
	case ns.frozen:
		return ErrFrozen
	case ns.locked:
		return ErrLocked
	}
	return nil
}

// setLocked stores value under key. With batched, the entry of a new key
// joins the write batch; otherwise (or for a key replaced) the batch is
// written first and the entry written at once. With nowait (batched only),
// it fails with ErrWouldBlock, having changed nothing, rather than wait for
// the disk: to read an index entry not in the page cache, or to rotate the
// files (which syncs them).
func (ns *Namespace) setLocked(key, value []byte, timestamp uint32, batched, nowait bool) (SetResult, error) {
	if !batched || (ns.mode == ModeSeq && len(key) > 0) {
		if nowait {
			return SetResult{}, ErrWouldBlock // an update reads the index
		}
		// the entry goes after the batch; a failed batch was undone and
		// reported to its own writers
		_ = ns.flushLocked()
		batched = false
	}
	if err := ns.writableLocked(); err != nil {
		return SetResult{}, err
	}
	var (
		old    location
		oldEnt IndexEntry
		exists bool
		seqID  uint64
	)
	if ns.mode == ModeUser {
		if len(key) == 0 {
			return SetResult{}, ErrKeyNeeded
		}
		old, exists = ns.mem.get(key)
	} else if len(key) > 0 {
		var ok bool
		seqID, ok = seqIDOf(key)
		if ok {
			oldEnt, old, exists = ns.seqEntryLocked(seqID)
		}
		if !exists {
			return SetResult{}, ErrOnlyUpdate
		}
	}
	if exists && ns.desc.Worm {
		return SetResult{}, ErrWorm
	}
	if ns.desc.MaxSize > 0 {
		var floating uint64
		if exists {
			floating = uint64(old.Length)
		}
		if ns.payloadBytes+uint64(len(value)) > ns.desc.MaxSize+floating {
			return SetResult{}, ErrNoSpace
		}
	}
	crc := CRC(value)
	if exists && old.CRC == crc && (ns.mode == ModeUser || old.Length == uint32(len(value))) {
		return SetResult{Key: key, Unchanged: true}, nil
	}
	if batched {
		if !exists {
			return ns.batchNewLocked(key, value, crc, timestamp, nowait)
		}
		if nowait && (ns.needJumpLocked(len(value)) || !ns.flagCachedLocked(old.IdxID, old.IdxOff)) {
			return SetResult{}, ErrWouldBlock
		}
		// a replacement flags the old entry in place: write the batch, then
		// check again against what the files hold
		return ns.setLocked(key, value, timestamp, false, false)
	}
	if ns.needJumpLocked(len(value)) {
		if err := ns.jumpLocked(); err != nil {
			return SetResult{}, err
		}
	}
	if ns.mode == ModeSeq && !exists {
		seqID = ns.nextSeq
		key = SeqKey(seqID)
	}
	doff, err := ns.appendData(&DataEntry{Key: key, CRC: crc, Timestamp: timestamp}, value)
	if err != nil {
		return SetResult{}, err
	}
	e := IndexEntry{Key: key, Offset: doff, Length: uint32(len(value)), DataID: ns.fileID, Timestamp: timestamp, CRC: crc}
	loc := location{DataID: ns.fileID, Offset: doff, Length: e.Length, CRC: crc, IdxID: ns.fileID}
	if ns.mode == ModeUser {
		if exists {
			e.ParentID, e.ParentOff = old.IdxID, old.IdxOff
		}
		ioff, err := ns.appendIndex(&e)
		if err != nil {
			return SetResult{}, err
		}
		if exists {
			// the new entry is on disk before the old one is flagged: a crash
			// in between leaves both live, and replay keeps the newer one
			if err := ns.flagIndexLocked(old.IdxID, old.IdxOff); err != nil {
				return SetResult{}, err
			}
			ns.payloadBytes -= uint64(old.Length)
		} else {
			ns.entries++
		}
		loc.IdxOff = ioff
		ns.mem.put(key, loc)
		ns.nextSeq++
	} else {
		if exists {
			// append a deleted copy of the old version (history), then
			// overwrite the entry at the id's fixed position
			cp := oldEnt
			cp.Flags |= FlagDeleted
			coff, err := ns.appendIndex(&cp)
			if err != nil {
				return SetResult{}, err
			}
			ns.nextSeq++
			e.Previous = oldEnt.Previous
			e.ParentID, e.ParentOff = ns.fileID, coff
			if err := ns.overwriteIndexLocked(old.IdxID, old.IdxOff, &e); err != nil {
				return SetResult{}, err
			}
			ns.payloadBytes -= uint64(old.Length)
		} else {
			if _, err := ns.appendIndex(&e); err != nil {
				return SetResult{}, err
			}
			ns.nextSeq++
			ns.entries++
		}
	}
	ns.payloadBytes += uint64(len(value))
	ns.written.Add(1)
	return SetResult{Key: key}, nil
}

func seqIDOf(key []byte) (uint64, bool) {
	if len(key) != SeqKeySize {
		return 0, false
	}
	return binary.LittleEndian.Uint64(key), true
}

// seqEntryLocked reads the live index entry of sequential id.
func (ns *Namespace) seqEntryLocked(id uint64) (IndexEntry, location, bool) {
	e, loc, ok, _ := ns.seqEntryModeLocked(id, false)
	return e, loc, ok
}

// seqEntryModeLocked is seqEntryLocked; with nowait it fails with
// ErrWouldBlock rather than wait for the disk.
func (ns *Namespace) seqEntryModeLocked(id uint64, nowait bool) (IndexEntry, location, bool, error) {
	if id >= ns.nextSeq || len(ns.seqFirst) == 0 {
		return IndexEntry{}, location{}, false, nil
	}
	// the last file whose first id is <= id
	lo, hi := 0, len(ns.seqFirst)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if ns.seqFirst[mid] <= id {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	fid := uint32(lo)
	off := uint32(IndexHeaderSize + (id-ns.seqFirst[lo])*(IndexEntrySize+SeqKeySize))
	e, err := ns.readIndexEntryModeLocked(fid, off, SeqKeySize, nowait)
	if errors.Is(err, ErrWouldBlock) {
		return IndexEntry{}, location{}, false, err
	}
	if err != nil || e.Flags&FlagDeleted != 0 {
		return IndexEntry{}, location{}, false, nil
	}
	if got, ok := seqIDOf(e.Key); !ok || got != id {
		return IndexEntry{}, location{}, false, nil
	}
	return e, location{DataID: e.DataID, Offset: e.Offset, Length: e.Length, IdxID: fid, IdxOff: off, CRC: e.CRC}, true, nil
}

// readIndexEntryLocked reads the entry of key length klen at (fid, off).
func (ns *Namespace) readIndexEntryLocked(fid, off uint32, klen int) (IndexEntry, error) {
	return ns.readIndexEntryModeLocked(fid, off, klen, false)
}

// readIndexEntryModeLocked is readIndexEntryLocked; with nowait it fails
// with ErrWouldBlock rather than wait for the disk.
func (ns *Namespace) readIndexEntryModeLocked(fid, off uint32, klen int, nowait bool) (IndexEntry, error) {
	if int(fid) >= len(ns.idxFiles) {
		return IndexEntry{}, fmt.Errorf("index file %d: %w", fid, os.ErrNotExist)
	}
	b := make([]byte, IndexEntrySize+klen)
	if err := pread(ns.idxFiles[fid], b, int64(off), nowait); err != nil {
		return IndexEntry{}, err
	}
	ns.eng.stats.IndexReadBytes.Add(uint64(len(b)))
	e, err := ParseIndexEntry(b)
	if err != nil {
		return IndexEntry{}, err
	}
	if len(e.Key) != klen {
		return IndexEntry{}, ErrCorrupt
	}
	return e, nil
}

// appendData writes a data entry at the end of the current data file.
func (ns *Namespace) appendData(d *DataEntry, payload []byte) (uint32, error) {
	off := ns.datSize
	d.Previous = ns.datPrev
	ns.buf = AppendDataEntry(ns.buf[:0], d, payload)
	if err := ns.writeAt(ns.datFiles[ns.fileID], ns.buf, off); err != nil {
		ns.eng.stats.DataWriteFailed.Add(1)
		ns.log.Error("data write failed", "file", ns.datPath(ns.fileID), "err", err)
		return 0, ErrWriteData
	}
	ns.eng.stats.DataWriteBytes.Add(uint64(len(ns.buf)))
	ns.datSize += int64(len(ns.buf))
	ns.datPrev = uint32(off)
	return uint32(off), nil
}

// appendIndex writes e at the end of the current index file.
func (ns *Namespace) appendIndex(e *IndexEntry) (uint32, error) {
	off := ns.idxSize
	e.Previous = ns.idxLast[ns.fileID]
	ns.buf = AppendIndexEntry(ns.buf[:0], e)
	if err := ns.writeAt(ns.idxFiles[ns.fileID], ns.buf, off); err != nil {
		ns.eng.stats.IndexWriteFailed.Add(1)
		ns.log.Error("index write failed", "file", ns.idxPath(ns.fileID), "err", err)
		return 0, ErrWriteIndex
	}
	ns.eng.stats.IndexWriteBytes.Add(uint64(len(ns.buf)))
	ns.idxSize += int64(len(ns.buf))
	ns.idxLast[ns.fileID] = uint32(off)
	ns.dirty[ns.fileID] = true
	return uint32(off), nil
}

// writeAt writes b at off; on a partial write it cuts the file back to off
// so the file never ends inside a record it did not finish.
func (ns *Namespace) writeAt(f *os.File, b []byte, off int64) error {
	n, err := f.WriteAt(b, off)
	if err != nil || n != len(b) {
		_ = f.Truncate(off)
		if err == nil {
			err = io.ErrShortWrite
		}
		return err
	}
	return nil
}

// flagIndexLocked marks the entry at (fid, off) deleted, in place.
func (ns *Namespace) flagIndexLocked(fid, off uint32) error {
	if int(fid) >= len(ns.idxFiles) {
		return ErrWriteIndex
	}
	var flag [1]byte
	if _, err := ns.idxFiles[fid].ReadAt(flag[:], int64(off)+indexFlagsOffset); err != nil {
		ns.eng.stats.IndexWriteFailed.Add(1)
		return ErrWriteIndex
	}
	flag[0] |= FlagDeleted
	if _, err := ns.idxFiles[fid].WriteAt(flag[:], int64(off)+indexFlagsOffset); err != nil {
		ns.eng.stats.IndexWriteFailed.Add(1)
		ns.log.Error("index write failed", "file", ns.idxPath(fid), "err", err)
		return ErrWriteIndex
	}
	ns.markOldDirtyLocked(fid)
	return nil
}

// overwriteIndexLocked rewrites the entry at (fid, off) with e (sequential
// updates keep the id at its position).
func (ns *Namespace) overwriteIndexLocked(fid, off uint32, e *IndexEntry) error {
	b := AppendIndexEntry(nil, e)
	if _, err := ns.idxFiles[fid].WriteAt(b, int64(off)); err != nil {
		ns.eng.stats.IndexWriteFailed.Add(1)
		ns.log.Error("index write failed", "file", ns.idxPath(fid), "err", err)
		return ErrWriteIndex
	}
	ns.eng.stats.IndexWriteBytes.Add(uint64(len(b)))
	ns.markOldDirtyLocked(fid)
	return nil
}

func (ns *Namespace) markOldDirtyLocked(fid uint32) {
	ns.dirty[fid] = true
	if fid != ns.fileID {
		if ns.oldDirty == nil {
			ns.oldDirty = map[uint32]bool{}
		}
		ns.oldDirty[fid] = true
	}
}

// jumpLocked closes the current file pair (synced) and starts the next one.
func (ns *Namespace) jumpLocked() error {
	if err := ns.flushLocked(); err != nil {
		return err
	}
	old := ns.fileID
	if err := fdatasync(ns.datFiles[old]); err != nil {
		return err
	}
	if err := fdatasync(ns.idxFiles[old]); err != nil {
		return err
	}
	if err := ns.createPair(old + 1); err != nil {
		ns.log.Error("rotation failed", "file_id", old+1, "err", err)
		return ErrWriteIndex
	}
	ns.log.Info("files rotated", "file_id", ns.fileID)
	ns.eng.event("jump-index", ns.idxPath(old), ns.idxPath(ns.fileID))
	ns.eng.event("jump-data", ns.datPath(old), ns.datPath(ns.fileID))
	return nil
}

// rotateIfUsed jumps to the next file pair when the current one holds data.
func (ns *Namespace) rotateIfUsed() error {
	ns.lock()
	defer ns.mu.Unlock()
	if ns.closed {
		return ErrClosed
	}
	if ns.datSize <= DataHeaderSize {
		return nil
	}
	return ns.jumpLocked()
}

// Jump closes the current index and data files and opens the next ids
// (NSJUMP). It returns the new file id.
func (ns *Namespace) Jump() (uint32, error) {
	ns.lock()
	defer ns.mu.Unlock()
	if ns.closed {
		return 0, ErrClosed
	}
	if err := ns.jumpLocked(); err != nil {
		return 0, err
	}
	return ns.fileID, nil
}

// Del deletes key: a deleted-flagged record is appended to the data file and
// the index entry is flagged. timestamp 0 means now.
func (ns *Namespace) Del(key []byte, timestamp uint32) error {
	if len(key) > MaxKeySize {
		return ErrKeyTooLarge
	}
	if timestamp == 0 {
		timestamp = uint32(time.Now().Unix())
	}
	ns.mu.Lock()
	_ = ns.flushLocked()
	err := ns.delLocked(key, timestamp, false)
	w := ns.written.Load()
	ns.mu.Unlock()
	if err != nil {
		return err
	}
	if ns.eng.cfg.Sync {
		return ns.durable(w)
	}
	return nil
}

// delLocked deletes key; the batch must be written. With nowait it fails
// with ErrWouldBlock, having changed nothing, rather than read the disk.
func (ns *Namespace) delLocked(key []byte, timestamp uint32, nowait bool) error {
	if err := ns.writableLocked(); err != nil {
		return err
	}
	loc, ok, err := ns.lookupModeLocked(key, nowait)
	if err != nil {
		return err
	}
	if !ok {
		return ErrKeyNotFound
	}
	if ns.desc.Worm {
		return ErrWormDelete
	}
	if nowait && !ns.flagCachedLocked(loc.IdxID, loc.IdxOff) {
		return ErrWouldBlock
	}
	if _, err := ns.appendData(&DataEntry{Key: key, Flags: FlagDeleted, Timestamp: timestamp}, nil); err != nil {
		return err
	}
	if err := ns.flagIndexLocked(loc.IdxID, loc.IdxOff); err != nil {
		return err
	}
	if ns.mode == ModeUser {
		ns.mem.del(key)
	}
	ns.entries--
	ns.payloadBytes -= uint64(loc.Length)
	ns.written.Add(1)
	return nil
}

// lookupLocked finds the live version of key.
func (ns *Namespace) lookupLocked(key []byte) (location, bool) {
	loc, ok, _ := ns.lookupModeLocked(key, false)
	return loc, ok
}

// lookupModeLocked is lookupLocked; with nowait it fails with ErrWouldBlock
// rather than wait for the disk.
func (ns *Namespace) lookupModeLocked(key []byte, nowait bool) (location, bool, error) {
	if ns.closed {
		return location{}, false, nil
	}
	if ns.mode == ModeUser {
		loc, ok := ns.mem.get(key)
		return loc, ok, nil
	}
	id, ok := seqIDOf(key)
	if !ok {
		return location{}, false, nil
	}
	_, loc, ok, err := ns.seqEntryModeLocked(id, nowait)
	return loc, ok, err
}

func (ns *Namespace) readableLocked() error {
	switch {
	case ns.closed:
		return ErrClosed
	case ns.frozen:
		return ErrFrozen
	}
	return nil
}

// Get returns the value of key, or nil and false when it is missing.
func (ns *Namespace) Get(key []byte) ([]byte, bool, error) {
	defer ns.runlock(ns.rlock())
	if err := ns.readableLocked(); err != nil {
		return nil, false, err
	}
	loc, ok := ns.lookupLocked(key)
	if !ok {
		return nil, false, nil
	}
	v, err := ns.readPayloadLocked(loc, len(key))
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}

// AppendGet appends header(dst, length) then the value of key to dst (the
// server reads straight into its reply buffer). dst is returned unchanged
// when the key is missing or on error.
func (ns *Namespace) AppendGet(dst, key []byte, header func([]byte, int) []byte) ([]byte, bool, error) {
	return ns.appendGet(dst, key, header, false)
}

func (ns *Namespace) appendGet(dst, key []byte, header func([]byte, int) []byte, nowait bool) ([]byte, bool, error) {
	if nowait {
		excl, ok := ns.tryRLock()
		if !ok {
			return dst, false, ErrWouldBlock
		}
		defer ns.runlock(excl)
	} else {
		defer ns.runlock(ns.rlock())
	}
	if err := ns.readableLocked(); err != nil {
		return dst, false, err
	}
	loc, ok, err := ns.lookupModeLocked(key, nowait)
	if err != nil || !ok {
		return dst, false, err
	}
	orig := len(dst)
	dst = header(dst, int(loc.Length))
	n := len(dst)
	// room for the value, not zeroed: the read fills it or fails
	dst = slices.Grow(dst, int(loc.Length))[:n+int(loc.Length)]
	if err := ns.readAtModeLocked(loc.DataID, dst[n:], int64(loc.Offset)+DataEntrySize+int64(len(key)), nowait); err != nil {
		return dst[:orig], false, err
	}
	return dst, true, nil
}

func (ns *Namespace) readPayloadLocked(loc location, klen int) ([]byte, error) {
	v := make([]byte, loc.Length)
	if err := ns.readAtLocked(loc.DataID, v, int64(loc.Offset)+DataEntrySize+int64(klen)); err != nil {
		return nil, err
	}
	return v, nil
}

func (ns *Namespace) readAtLocked(fid uint32, b []byte, off int64) error {
	return ns.readAtModeLocked(fid, b, off, false)
}

// readAtModeLocked is readAtLocked; with nowait it fails with ErrWouldBlock
// rather than wait for the disk.
func (ns *Namespace) readAtModeLocked(fid uint32, b []byte, off int64, nowait bool) error {
	if int(fid) >= len(ns.datFiles) {
		ns.eng.stats.DataReadFailed.Add(1)
		return ErrReadData
	}
	if err := pread(ns.datFiles[fid], b, off, nowait); err != nil {
		if errors.Is(err, ErrWouldBlock) {
			return err
		}
		ns.eng.stats.DataReadFailed.Add(1)
		ns.log.Error("data read failed", "file", ns.datPath(fid), "offset", off, "err", err)
		return ErrReadData
	}
	ns.eng.stats.DataReadBytes.Add(uint64(len(b)))
	return nil
}

// Exists reports whether key is live.
func (ns *Namespace) Exists(key []byte) (bool, error) {
	defer ns.runlock(ns.rlock())
	if err := ns.readableLocked(); err != nil {
		return false, err
	}
	_, ok := ns.lookupLocked(key)
	return ok, nil
}

// Length returns the payload length of key.
func (ns *Namespace) Length(key []byte) (uint32, bool, error) {
	defer ns.runlock(ns.rlock())
	if err := ns.readableLocked(); err != nil {
		return 0, false, err
	}
	loc, ok := ns.lookupLocked(key)
	return loc.Length, ok, nil
}

// KeyTime returns the timestamp of the live version of key.
func (ns *Namespace) KeyTime(key []byte) (uint32, bool, error) {
	defer ns.runlock(ns.rlock())
	if err := ns.readableLocked(); err != nil {
		return 0, false, err
	}
	loc, ok := ns.lookupLocked(key)
	if !ok {
		return 0, false, nil
	}
	e, err := ns.readIndexEntryLocked(loc.IdxID, loc.IdxOff, len(key))
	if err != nil {
		return 0, false, ErrReadData
	}
	return e.Timestamp, true, nil
}

// Check reports whether the stored payload of key still matches its CRC.
func (ns *Namespace) Check(key []byte) (valid, found bool, err error) {
	defer ns.runlock(ns.rlock())
	if err := ns.readableLocked(); err != nil {
		return false, false, err
	}
	loc, ok := ns.lookupLocked(key)
	if !ok {
		return false, false, nil
	}
	hdr := make([]byte, DataEntrySize+len(key))
	if err := ns.readAtLocked(loc.DataID, hdr, int64(loc.Offset)); err != nil {
		return false, true, nil
	}
	d, err := ParseDataEntry(hdr)
	if err != nil {
		return false, true, nil
	}
	v := make([]byte, d.Length)
	if err := ns.readAtLocked(loc.DataID, v, int64(loc.Offset)+int64(len(hdr))); err != nil {
		return false, true, nil
	}
	return CRC(v) == d.CRC, true, nil
}
