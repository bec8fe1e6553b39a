package engine

import (
	"bytes"
	"time"
)

// ScanItem is one key returned by a scan.
type ScanItem struct {
	Key       []byte
	Length    uint32
	Timestamp uint32
}

// ScanResult is a page of a scan and the cursor of its last item.
type ScanResult struct {
	Next  []byte
	Items []ScanItem
}

// Scan limits: a page stops after this many keys or this long.
const (
	scanMaxItems = 1000
	scanBudget   = 5 * time.Millisecond
)

type scanPos struct {
	fid uint32
	off uint32
}

// Scan walks the live keys in index order (forward) or backward, starting
// after cursor, or at the first (last) key when cursor is nil. It fails with
// ErrNoMoreData at the end and ErrInvalidCursor on a forged cursor.
func (ns *Namespace) Scan(cursor []byte, forward bool) (ScanResult, error) {
	defer ns.runlock(ns.rlock())
	if err := ns.readableLocked(); err != nil {
		return ScanResult{}, err
	}
	var (
		res  ScanResult
		pos  scanPos
		last IndexEntry
	)
	if cursor == nil {
		var ok bool
		if forward {
			pos, last, ok = ns.liveFrom(scanPos{0, IndexHeaderSize}, true)
		} else {
			pos, last, ok = ns.lastLive()
		}
		if !ok {
			return ScanResult{}, ErrNoMoreData
		}
		res.Items = append(res.Items, ScanItem{Key: last.Key, Length: last.Length, Timestamp: last.Timestamp})
	} else {
		c, err := ParseCursor(cursor)
		if err != nil {
			return ScanResult{}, err
		}
		e, err := ns.entryAtLocked(scanPos{c.FileID, c.IdxOffset})
		if err != nil || len(e.Key) != int(c.KeyLen) || e.Length != c.Length || e.CRC != c.CRC {
			return ScanResult{}, ErrInvalidCursor
		}
		pos, last = scanPos{c.FileID, c.IdxOffset}, e
	}
	deadline := time.Now().Add(scanBudget)
	for len(res.Items) < scanMaxItems && time.Now().Before(deadline) {
		next, ok := ns.step(pos, last, forward)
		if !ok {
			break
		}
		p, e, ok := ns.liveFrom(next, forward)
		if !ok {
			break
		}
		pos, last = p, e
		res.Items = append(res.Items, ScanItem{Key: e.Key, Length: e.Length, Timestamp: e.Timestamp})
	}
	if len(res.Items) == 0 {
		return ScanResult{}, ErrNoMoreData
	}
	res.Next = Cursor{KeyLen: uint8(len(last.Key)), FileID: pos.fid, Length: last.Length, IdxOffset: pos.off, CRC: last.CRC}.Marshal()
	return res, nil
}

// entryAtLocked reads the index entry at pos, whatever its key length.
func (ns *Namespace) entryAtLocked(pos scanPos) (IndexEntry, error) {
	if int(pos.fid) >= len(ns.idxFiles) || pos.off < IndexHeaderSize || pos.off > ns.idxLast[pos.fid] || ns.idxLast[pos.fid] == 0 {
		return IndexEntry{}, ErrInvalidCursor
	}
	var head [1]byte
	f := ns.idxFiles[pos.fid]
	if _, err := f.ReadAt(head[:], int64(pos.off)); err != nil {
		return IndexEntry{}, err
	}
	return ns.readIndexEntryLocked(pos.fid, pos.off, int(head[0]))
}

// step returns the position after (forward) or before pos, whose entry is e.
func (ns *Namespace) step(pos scanPos, e IndexEntry, forward bool) (scanPos, bool) {
	if forward {
		if pos.off < ns.idxLast[pos.fid] {
			return scanPos{pos.fid, pos.off + uint32(e.Size())}, true
		}
		for fid := pos.fid + 1; int(fid) < len(ns.idxLast); fid++ {
			if ns.idxLast[fid] != 0 {
				return scanPos{fid, IndexHeaderSize}, true
			}
		}
		return scanPos{}, false
	}
	if pos.off > IndexHeaderSize {
		if e.Previous >= pos.off || e.Previous < IndexHeaderSize {
			return scanPos{}, false
		}
		return scanPos{pos.fid, e.Previous}, true
	}
	for fid := int(pos.fid) - 1; fid >= 0; fid-- {
		if ns.idxLast[fid] != 0 {
			return scanPos{uint32(fid), ns.idxLast[fid]}, true
		}
	}
	return scanPos{}, false
}

// liveFrom returns the first entry at or after (before) pos that is not
// deleted.
func (ns *Namespace) liveFrom(pos scanPos, forward bool) (scanPos, IndexEntry, bool) {
	if int(pos.fid) < len(ns.idxLast) && ns.idxLast[pos.fid] == 0 {
		var ok bool
		if pos, ok = ns.step(scanPos{pos.fid, ns.idxLast[pos.fid]}, IndexEntry{}, forward); !ok {
			return scanPos{}, IndexEntry{}, false
		}
	}
	for {
		e, err := ns.entryAtLocked(pos)
		if err != nil {
			return scanPos{}, IndexEntry{}, false
		}
		if e.Flags&FlagDeleted == 0 {
			return pos, e, true
		}
		next, ok := ns.step(pos, e, forward)
		if !ok {
			return scanPos{}, IndexEntry{}, false
		}
		pos = next
	}
}

// lastLive returns the newest live entry.
func (ns *Namespace) lastLive() (scanPos, IndexEntry, bool) {
	for fid := int(ns.fileID); fid >= 0; fid-- {
		if ns.idxLast[fid] != 0 {
			return ns.liveFrom(scanPos{uint32(fid), ns.idxLast[fid]}, false)
		}
	}
	return scanPos{}, IndexEntry{}, false
}

// KeyCursor returns the cursor of key (KEYCUR), usable with Scan.
func (ns *Namespace) KeyCursor(key []byte) ([]byte, error) {
	defer ns.runlock(ns.rlock())
	if err := ns.readableLocked(); err != nil {
		return nil, err
	}
	loc, ok := ns.lookupLocked(key)
	if !ok {
		return nil, ErrKeyNotFound
	}
	return Cursor{KeyLen: uint8(len(key)), FileID: loc.IdxID, Length: loc.Length, IdxOffset: loc.IdxOff, CRC: loc.CRC}.Marshal(), nil
}

// HistoryItem is one version of a key.
type HistoryItem struct {
	Prev      HistoryRef // the version before this one; zero at the end
	Timestamp uint32
	Payload   []byte
}

// History returns the current version of key when ref is nil, else the
// version ref points to (a Prev of an earlier call).
func (ns *Namespace) History(key, ref []byte) (HistoryItem, error) {
	defer ns.runlock(ns.rlock())
	if err := ns.readableLocked(); err != nil {
		return HistoryItem{}, err
	}
	var e IndexEntry
	if ref == nil {
		loc, ok := ns.lookupLocked(key)
		if !ok {
			return HistoryItem{}, ErrKeyNotFound
		}
		var err error
		if e, err = ns.readIndexEntryLocked(loc.IdxID, loc.IdxOff, len(key)); err != nil {
			return HistoryItem{}, ErrReadData
		}
	} else {
		r, err := ParseHistoryRef(ref)
		if err != nil {
			return HistoryItem{}, ErrInvalidArgs
		}
		if r.IsZero() {
			return HistoryItem{}, ErrNoMoreHistory
		}
		if int(r.FileID) >= len(ns.idxLast) || r.Offset < IndexHeaderSize || r.Offset > ns.idxLast[r.FileID] {
			return HistoryItem{}, ErrHistoryIndex
		}
		if e, err = ns.readIndexEntryLocked(r.FileID, r.Offset, len(key)); err != nil {
			return HistoryItem{}, ErrHistoryIndex
		}
		if !bytes.Equal(e.Key, key) {
			return HistoryItem{}, ErrHistoryKey
		}
	}
	if int(e.DataID) >= len(ns.datFiles) {
		return HistoryItem{}, ErrReadData
	}
	v := make([]byte, e.Length)
	if err := ns.readAtLocked(e.DataID, v, int64(e.Offset)+DataEntrySize+int64(len(key))); err != nil {
		return HistoryItem{}, err
	}
	return HistoryItem{Prev: HistoryRef{FileID: e.ParentID, Offset: e.ParentOff}, Timestamp: e.Timestamp, Payload: v}, nil
}

// RawEntry is a data record read by position (DATA RAW).
type RawEntry struct {
	DataEntry
	Payload []byte
}

// DataRaw reads the data record at offset of data file fid.
func (ns *Namespace) DataRaw(fid, offset uint32) (RawEntry, error) {
	defer ns.runlock(ns.rlock())
	if err := ns.readableLocked(); err != nil {
		return RawEntry{}, err
	}
	if int(fid) >= len(ns.datFiles) || offset < DataHeaderSize {
		return RawEntry{}, ErrRawNotFound
	}
	hdr := make([]byte, DataEntrySize+MaxKeySize)
	n, _ := ns.datFiles[fid].ReadAt(hdr, int64(offset))
	d, err := ParseDataEntry(hdr[:n])
	if err != nil || len(d.Key) == 0 {
		return RawEntry{}, ErrRawNotFound
	}
	d.Key = append([]byte(nil), d.Key...)
	v := make([]byte, d.Length)
	if err := ns.readAtLocked(fid, v, int64(offset)+DataEntrySize+int64(len(d.Key))); err != nil {
		return RawEntry{}, ErrRawNotFound
	}
	return RawEntry{DataEntry: d, Payload: v}, nil
}

// KScan returns the live keys starting with prefix (user mode only).
func (ns *Namespace) KScan(prefix []byte) ([][]byte, error) {
	defer ns.runlock(ns.rlock())
	if err := ns.readableLocked(); err != nil {
		return nil, err
	}
	if ns.mode != ModeUser {
		return nil, ErrModeNoSupport
	}
	var keys [][]byte
	ns.mem.walk(func(key []byte, _ location) bool {
		if bytes.HasPrefix(key, prefix) {
			keys = append(keys, append([]byte(nil), key...))
		}
		return true
	})
	if len(keys) == 0 {
		return nil, ErrNoKeysMatch
	}
	return keys, nil
}

// DirtyIndexes returns the ids of the index files written since the last
// reset (INDEX DIRTY), and clears the set when reset is true.
func (ns *Namespace) DirtyIndexes(reset bool) []uint32 {
	ns.lock()
	defer ns.mu.Unlock()
	var ids []uint32
	for id := uint32(0); int(id) <= int(ns.fileID); id++ {
		if ns.dirty[id] {
			ids = append(ids, id)
		}
	}
	if reset {
		ns.dirty = map[uint32]bool{}
	}
	return ids
}
