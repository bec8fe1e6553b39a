package engine

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// checkData validates the data file f. For the newest file (last) it walks
// every record, checks payload CRCs, and truncates a torn tail: a record cut
// short, a zero-filled tail, or a final record whose CRC does not match. Any
// other damage is ErrCorrupt. It returns the valid end of the file and the
// offset of its last record.
func (ns *Namespace) checkData(f *os.File, last bool) (end int64, prev uint32, err error) {
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	size := st.Size()
	hdr := make([]byte, DataHeaderSize)
	if size < DataHeaderSize {
		if !last {
			return 0, 0, fmt.Errorf("header of %d bytes: %w", size, ErrCorrupt)
		}
		return ns.rewriteHeader(f, MarshalDataHeader(DataHeader{Version: DataVersion, Created: uint64(time.Now().Unix()), FileID: uint32(len(ns.datFiles) - 1)}))
	}
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return 0, 0, err
	}
	if _, err := ParseDataHeader(hdr); err != nil {
		return 0, 0, err
	}
	if !last {
		return size, 0, nil
	}
	r := bufio.NewReaderSize(io.NewSectionReader(f, DataHeaderSize, size-DataHeaderSize), 1<<20)
	off := int64(DataHeaderSize)
	var head [DataEntrySize]byte
	var payload []byte
	for off < size {
		bad := ""
		n, err := io.ReadFull(r, head[:])
		if err != nil {
			_ = n
			bad = "record header cut short"
		}
		var klen, plen int64
		if bad == "" {
			klen = int64(head[0])
			plen = int64(uint32(head[1]) | uint32(head[2])<<8 | uint32(head[3])<<16 | uint32(head[4])<<24)
			if klen == 0 {
				bad = "empty key"
			} else if off+DataEntrySize+klen+plen > size {
				bad = "record cut short"
			}
		}
		if bad == "" {
			if int64(cap(payload)) < klen+plen {
				payload = make([]byte, klen+plen)
			}
			payload = payload[:klen+plen]
			if _, err := io.ReadFull(r, payload); err != nil {
				return 0, 0, err
			}
			e, _ := ParseDataEntry(append(head[:], payload[:klen]...))
			if CRC(payload[klen:]) != e.CRC {
				bad = "payload checksum mismatch"
				if off+DataEntrySize+klen+plen < size {
					return 0, 0, fmt.Errorf("offset %d: %s and more records follow: %w", off, bad, ErrCorrupt)
				}
			}
		}
		if bad != "" {
			if bad == "empty key" && !restZero(f, off, size) {
				return 0, 0, fmt.Errorf("offset %d: %s: %w", off, bad, ErrCorrupt)
			}
			if err := ns.truncate(f, off, bad); err != nil {
				return 0, 0, err
			}
			return off, prev, nil
		}
		prev = uint32(off)
		off += DataEntrySize + klen + plen
	}
	return off, prev, nil
}

// rewriteHeader replaces a file cut inside its header by a fresh header.
func (ns *Namespace) rewriteHeader(f *os.File, hdr []byte) (int64, uint32, error) {
	ns.log.Warn("torn header rewritten", "file", f.Name())
	if err := f.Truncate(0); err != nil {
		return 0, 0, err
	}
	if _, err := f.WriteAt(hdr, 0); err != nil {
		return 0, 0, err
	}
	return int64(len(hdr)), 0, fdatasync(f)
}

// truncate cuts a torn tail off f at off.
func (ns *Namespace) truncate(f *os.File, off int64, why string) error {
	ns.log.Warn("torn tail truncated", "file", f.Name(), "offset", off, "reason", why)
	if err := f.Truncate(off); err != nil {
		return fmt.Errorf("truncate %s: %w", f.Name(), err)
	}
	return fdatasync(f)
}

// restZero reports whether f holds only zero bytes from off to size.
func restZero(f *os.File, off, size int64) bool {
	buf := make([]byte, 64<<10)
	for off < size {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		for _, c := range buf[:n] {
			if c != 0 {
				return false
			}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return false
		}
		if n == 0 {
			return true
		}
		off += int64(n)
	}
	return true
}

// replayIndex loads index file id into memory. datEnds holds the valid end of
// every data file: an entry of the newest index file that points past the end
// of its data (the data write was lost) starts a torn tail.
func (ns *Namespace) replayIndex(id uint32, last bool, datEnds []int64) error {
	f := ns.idxFiles[id]
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if size < IndexHeaderSize {
		if !last {
			return fmt.Errorf("header of %d bytes: %w", size, ErrCorrupt)
		}
		if id == 0 {
			ns.mode = ns.eng.defaultMode()
		}
		now := uint64(time.Now().Unix())
		if _, _, err := ns.rewriteHeader(f, MarshalIndexHeader(IndexHeader{Version: IndexVersion, Created: now, Opened: now, FileID: id, Mode: ns.mode})); err != nil {
			return err
		}
		size = IndexHeaderSize
	} else {
		hdr := make([]byte, IndexHeaderSize)
		if _, err := f.ReadAt(hdr, 0); err != nil {
			return err
		}
		h, err := ParseIndexHeader(hdr)
		if err != nil {
			return err
		}
		if h.FileID != id {
			return fmt.Errorf("header names file id %d: %w", h.FileID, ErrCorrupt)
		}
		if id == 0 {
			ns.mode = h.Mode
			if !ns.eng.cfg.Mixed && h.Mode != ns.eng.cfg.Mode {
				return fmt.Errorf("mode %s, server runs %s: %w", h.Mode, ns.eng.cfg.Mode, ErrModeMismatch)
			}
		} else if h.Mode != ns.mode {
			return fmt.Errorf("mode %s, namespace is %s: %w", h.Mode, ns.mode, ErrModeMismatch)
		}
	}
	if id == 0 && ns.mode == ModeUser {
		ns.mem = newMemIndex()
	}
	if ns.mode == ModeSeq {
		ns.seqFirst = append(ns.seqFirst, ns.nextSeq)
	}

	r := bufio.NewReaderSize(io.NewSectionReader(f, IndexHeaderSize, size-IndexHeaderSize), 1<<20)
	off := int64(IndexHeaderSize)
	var lastOff uint32
	buf := make([]byte, IndexEntrySize+MaxKeySize)
	for off < size {
		bad := ""
		var e IndexEntry
		if _, err := io.ReadFull(r, buf[:IndexEntrySize]); err != nil {
			bad = "entry cut short"
		} else if klen := int(buf[0]); klen == 0 {
			bad = "empty key"
		} else if _, err := io.ReadFull(r, buf[IndexEntrySize:IndexEntrySize+klen]); err != nil {
			bad = "key cut short"
		} else {
			e, _ = ParseIndexEntry(buf[:IndexEntrySize+klen])
			if int(e.DataID) >= len(datEnds) || int64(e.Offset) < DataHeaderSize ||
				int64(e.Offset)+DataEntrySize+int64(klen)+int64(e.Length) > datEnds[e.DataID] {
				bad = fmt.Sprintf("entry points past the data (file %d offset %d length %d)", e.DataID, e.Offset, e.Length)
				if !last || int(e.DataID) != len(datEnds)-1 {
					return fmt.Errorf("offset %d: %s: %w", off, bad, ErrCorrupt)
				}
			}
		}
		if bad != "" {
			if !last || (bad == "empty key" && !restZero(f, off, size)) {
				return fmt.Errorf("offset %d: %s: %w", off, bad, ErrCorrupt)
			}
			if err := ns.truncate(f, off, bad); err != nil {
				return err
			}
			size = off
			break
		}
		ns.replayEntry(id, uint32(off), &e)
		lastOff = uint32(off)
		off += int64(e.Size())
	}
	ns.idxLast[id] = lastOff
	if last {
		ns.idxSize = size
	}
	return nil
}

// replayEntry applies one index entry read at start-up, like 0-db does: a
// deleted entry removes the key, a live one inserts or replaces it.
func (ns *Namespace) replayEntry(id, off uint32, e *IndexEntry) {
	deleted := e.Flags&FlagDeleted != 0
	if ns.mode == ModeSeq {
		ns.nextSeq++
		if !deleted {
			ns.entries++
			ns.payloadBytes += uint64(e.Length)
		}
		return
	}
	if deleted {
		if old, ok := ns.mem.del(e.Key); ok {
			ns.entries--
			ns.payloadBytes -= uint64(old.Length)
		}
		return
	}
	loc := location{DataID: e.DataID, Offset: e.Offset, Length: e.Length, IdxID: id, IdxOff: off, CRC: e.CRC}
	if old, ok := ns.mem.put(e.Key, loc); ok {
		ns.payloadBytes -= uint64(old.Length)
	} else {
		ns.entries++
	}
	ns.payloadBytes += uint64(e.Length)
	ns.nextSeq++
}
