// Package engine is the storage engine of our 0-db server: namespaces kept as
// append-only index and data files in the 0-db v2 on-disk layout (byte
// compatible with the original C 0-db v2.x), an in-memory key index for user
// mode, positional lookups for sequential mode, start-up replay with torn-tail
// repair, file rotation, and group-committed fsync.
//
// Layout of one namespace N (all integers little-endian, structs packed):
//
//	<index>/N/zdb-namespace   descriptor (name, password, flags, maxsize)
//	<index>/N/i<id>           index files: 29 B header, entries of 34 B + key
//	<data>/N/d<id>            data files: 28 B header, entries of 18 B + key + payload
//
// Index and data file ids advance together. The engine is safe for concurrent
// use; each namespace has its own lock. Entries of new keys may be written in
// batches (SetBatched, Commit; batch.go): fewer system calls, same bytes.
package engine

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strconv"
)

// On-disk constants of the 0-db v2 layout.
const (
	IndexMagic   = "IDX0"
	DataMagic    = "DAT0"
	IndexVersion = 4 // index file version written by 0-db v2.x
	DataVersion  = 3 // data file version written by 0-db v2.x

	IndexHeaderSize = 29 // magic, version, created, opened, fileid u32, mode u8
	DataHeaderSize  = 28 // magic, version, created, opened, fileid u32
	IndexEntrySize  = 34 // fixed part of an index entry, the key follows
	DataEntrySize   = 18 // fixed part of a data entry, key and payload follow

	// SeqKeySize is the length of a sequential-mode key: a little-endian u64 id.
	SeqKeySize = 8
	// MaxKeySize is the longest key 0-db accepts (the key length is a u8).
	MaxKeySize = 255

	// FlagDeleted marks an index or data entry as deleted.
	FlagDeleted = 1
	// FlagTruncated marks a data entry truncated by compaction.
	FlagTruncated = 2

	// CursorSize is the length of a SCAN/KEYCUR cursor (index_bkey_t).
	CursorSize = 17
	// HistoryRefSize is the length of a HISTORY reference (index_ekey_t).
	HistoryRefSize = 8
)

// Mode is the running mode of a namespace, as stored in the index header.
type Mode uint8

// Modes of the index header. Direct modes are read as sequential.
const (
	ModeUser Mode = 0 // user keys (key-value)
	ModeSeq  Mode = 1 // sequential ids assigned by the server
)

// Name returns the mode name NSINFO prints: userkey or sequential.
func (m Mode) Name() string {
	if m == ModeSeq {
		return "sequential"
	}
	return "userkey"
}

// String returns the flag spelling of the mode: user or seq.
func (m Mode) String() string {
	if m == ModeSeq {
		return "seq"
	}
	return "user"
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// CRC returns the 0-db payload checksum: CRC-32C as computed by the SSE4.2
// crc32 instruction with seed 0 and no pre/post inversion.
func CRC(p []byte) uint32 {
	return ^crc32.Update(0xFFFFFFFF, castagnoli, p)
}

// IndexFileName returns the name of index file id: i<id>.
func IndexFileName(id uint32) string { return "i" + strconv.FormatUint(uint64(id), 10) }

// DataFileName returns the name of data file id: d<id>.
func DataFileName(id uint32) string { return "d" + strconv.FormatUint(uint64(id), 10) }

// IndexHeader is the header of an index file.
type IndexHeader struct {
	Version uint32
	Created uint64
	Opened  uint64
	FileID  uint32
	Mode    Mode
}

// MarshalIndexHeader encodes h (with the IDX0 magic) into 29 bytes.
func MarshalIndexHeader(h IndexHeader) []byte {
	b := make([]byte, IndexHeaderSize)
	copy(b, IndexMagic)
	binary.LittleEndian.PutUint32(b[4:], h.Version)
	binary.LittleEndian.PutUint64(b[8:], h.Created)
	binary.LittleEndian.PutUint64(b[16:], h.Opened)
	binary.LittleEndian.PutUint32(b[24:], h.FileID)
	b[28] = byte(h.Mode)
	return b
}

// ParseIndexHeader decodes and validates an index file header.
func ParseIndexHeader(b []byte) (IndexHeader, error) {
	if len(b) < IndexHeaderSize {
		return IndexHeader{}, fmt.Errorf("index header: %d bytes, want %d: %w", len(b), IndexHeaderSize, ErrCorrupt)
	}
	if string(b[:4]) != IndexMagic {
		return IndexHeader{}, fmt.Errorf("index header: magic %q: %w", b[:4], ErrCorrupt)
	}
	h := IndexHeader{
		Version: binary.LittleEndian.Uint32(b[4:]),
		Created: binary.LittleEndian.Uint64(b[8:]),
		Opened:  binary.LittleEndian.Uint64(b[16:]),
		FileID:  binary.LittleEndian.Uint32(b[24:]),
		Mode:    Mode(b[28]),
	}
	if h.Version != IndexVersion {
		return h, fmt.Errorf("index header: version %d, supported %d: %w", h.Version, IndexVersion, ErrUnsupported)
	}
	if h.Mode > 3 {
		return h, fmt.Errorf("index header: mode %d: %w", h.Mode, ErrCorrupt)
	}
	if h.Mode != ModeUser {
		h.Mode = ModeSeq // direct-key and block modes are sequential ids too
	}
	return h, nil
}

// DataHeader is the header of a data file.
type DataHeader struct {
	Version uint32
	Created uint64
	Opened  uint64
	FileID  uint32
}

// MarshalDataHeader encodes h (with the DAT0 magic) into 28 bytes.
func MarshalDataHeader(h DataHeader) []byte {
	b := make([]byte, DataHeaderSize)
	copy(b, DataMagic)
	binary.LittleEndian.PutUint32(b[4:], h.Version)
	binary.LittleEndian.PutUint64(b[8:], h.Created)
	binary.LittleEndian.PutUint64(b[16:], h.Opened)
	binary.LittleEndian.PutUint32(b[24:], h.FileID)
	return b
}

// ParseDataHeader decodes and validates a data file header.
func ParseDataHeader(b []byte) (DataHeader, error) {
	if len(b) < DataHeaderSize {
		return DataHeader{}, fmt.Errorf("data header: %d bytes, want %d: %w", len(b), DataHeaderSize, ErrCorrupt)
	}
	if string(b[:4]) != DataMagic {
		return DataHeader{}, fmt.Errorf("data header: magic %q: %w", b[:4], ErrCorrupt)
	}
	h := DataHeader{
		Version: binary.LittleEndian.Uint32(b[4:]),
		Created: binary.LittleEndian.Uint64(b[8:]),
		Opened:  binary.LittleEndian.Uint64(b[16:]),
		FileID:  binary.LittleEndian.Uint32(b[24:]),
	}
	if h.Version != DataVersion {
		return h, fmt.Errorf("data header: version %d, supported %d: %w", h.Version, DataVersion, ErrUnsupported)
	}
	return h, nil
}

// IndexEntry is one index record (index_item_t).
type IndexEntry struct {
	Key       []byte
	Offset    uint32 // offset of the data entry in data file DataID
	Length    uint32 // payload length
	Previous  uint32 // offset of the previous index entry in this file
	Flags     uint8
	DataID    uint32
	Timestamp uint32
	CRC       uint32 // payload CRC
	ParentID  uint32 // index file of the previous version (history)
	ParentOff uint32 // offset of the previous version (history)
}

// Size returns the encoded size of e.
func (e *IndexEntry) Size() int { return IndexEntrySize + len(e.Key) }

// AppendIndexEntry appends the encoding of e to b.
func AppendIndexEntry(b []byte, e *IndexEntry) []byte {
	var h [IndexEntrySize]byte
	h[0] = byte(len(e.Key))
	binary.LittleEndian.PutUint32(h[1:], e.Offset)
	binary.LittleEndian.PutUint32(h[5:], e.Length)
	binary.LittleEndian.PutUint32(h[9:], e.Previous)
	h[13] = e.Flags
	binary.LittleEndian.PutUint32(h[14:], e.DataID)
	binary.LittleEndian.PutUint32(h[18:], e.Timestamp)
	binary.LittleEndian.PutUint32(h[22:], e.CRC)
	binary.LittleEndian.PutUint32(h[26:], e.ParentID)
	binary.LittleEndian.PutUint32(h[30:], e.ParentOff)
	b = append(b, h[:]...)
	return append(b, e.Key...)
}

// indexFlagsOffset is the position of the flags byte inside an index entry.
const indexFlagsOffset = 13

// ParseIndexEntry decodes the index entry at the start of b. The key aliases
// b. It returns ErrShort when b holds only part of an entry.
func ParseIndexEntry(b []byte) (IndexEntry, error) {
	if len(b) < IndexEntrySize {
		return IndexEntry{}, ErrShort
	}
	n := int(b[0])
	if len(b) < IndexEntrySize+n {
		return IndexEntry{}, ErrShort
	}
	e := IndexEntry{
		Offset:    binary.LittleEndian.Uint32(b[1:]),
		Length:    binary.LittleEndian.Uint32(b[5:]),
		Previous:  binary.LittleEndian.Uint32(b[9:]),
		Flags:     b[13],
		DataID:    binary.LittleEndian.Uint32(b[14:]),
		Timestamp: binary.LittleEndian.Uint32(b[18:]),
		CRC:       binary.LittleEndian.Uint32(b[22:]),
		ParentID:  binary.LittleEndian.Uint32(b[26:]),
		ParentOff: binary.LittleEndian.Uint32(b[30:]),
		Key:       b[IndexEntrySize : IndexEntrySize+n],
	}
	if n == 0 {
		return e, fmt.Errorf("index entry: empty key: %w", ErrCorrupt)
	}
	return e, nil
}

// DataEntry is the fixed header of a data record (data_entry_header_t).
type DataEntry struct {
	Key       []byte
	Length    uint32 // payload length
	Previous  uint32 // offset of the previous data entry in this file
	CRC       uint32
	Flags     uint8
	Timestamp uint32
}

// AppendDataEntry appends the header and key of e, then payload, to b.
func AppendDataEntry(b []byte, e *DataEntry, payload []byte) []byte {
	var h [DataEntrySize]byte
	h[0] = byte(len(e.Key))
	binary.LittleEndian.PutUint32(h[1:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[5:], e.Previous)
	binary.LittleEndian.PutUint32(h[9:], e.CRC)
	h[13] = e.Flags
	binary.LittleEndian.PutUint32(h[14:], e.Timestamp)
	b = append(b, h[:]...)
	b = append(b, e.Key...)
	return append(b, payload...)
}

// ParseDataEntry decodes the fixed header and key of the data entry at the
// start of b (the key aliases b). It returns ErrShort when b is too short.
func ParseDataEntry(b []byte) (DataEntry, error) {
	if len(b) < DataEntrySize {
		return DataEntry{}, ErrShort
	}
	n := int(b[0])
	if len(b) < DataEntrySize+n {
		return DataEntry{}, ErrShort
	}
	return DataEntry{
		Length:    binary.LittleEndian.Uint32(b[1:]),
		Previous:  binary.LittleEndian.Uint32(b[5:]),
		CRC:       binary.LittleEndian.Uint32(b[9:]),
		Flags:     b[13],
		Timestamp: binary.LittleEndian.Uint32(b[14:]),
		Key:       b[DataEntrySize : DataEntrySize+n],
	}, nil
}

// Cursor is a SCAN/KEYCUR position (0-db's index_bkey_t): it names an index
// entry and carries enough of it to reject forged cursors.
type Cursor struct {
	KeyLen    uint8
	FileID    uint32
	Length    uint32
	IdxOffset uint32
	CRC       uint32
}

// Marshal encodes c into its 17-byte wire form.
func (c Cursor) Marshal() []byte {
	b := make([]byte, CursorSize)
	b[0] = c.KeyLen
	binary.LittleEndian.PutUint32(b[1:], c.FileID)
	binary.LittleEndian.PutUint32(b[5:], c.Length)
	binary.LittleEndian.PutUint32(b[9:], c.IdxOffset)
	binary.LittleEndian.PutUint32(b[13:], c.CRC)
	return b
}

// ParseCursor decodes a cursor; it fails with ErrInvalidCursor on a bad length.
func ParseCursor(b []byte) (Cursor, error) {
	if len(b) != CursorSize {
		return Cursor{}, ErrInvalidCursor
	}
	return Cursor{
		KeyLen:    b[0],
		FileID:    binary.LittleEndian.Uint32(b[1:]),
		Length:    binary.LittleEndian.Uint32(b[5:]),
		IdxOffset: binary.LittleEndian.Uint32(b[9:]),
		CRC:       binary.LittleEndian.Uint32(b[13:]),
	}, nil
}

// HistoryRef points at an older index entry of a key (0-db's index_ekey_t).
type HistoryRef struct {
	FileID uint32
	Offset uint32
}

// IsZero reports whether r is the end-of-history marker.
func (r HistoryRef) IsZero() bool { return r.FileID == 0 && r.Offset == 0 }

// Marshal encodes r into its 8-byte wire form.
func (r HistoryRef) Marshal() []byte {
	b := make([]byte, HistoryRefSize)
	binary.LittleEndian.PutUint32(b, r.FileID)
	binary.LittleEndian.PutUint32(b[4:], r.Offset)
	return b
}

// ParseHistoryRef decodes an 8-byte history reference.
func ParseHistoryRef(b []byte) (HistoryRef, error) {
	if len(b) != HistoryRefSize {
		return HistoryRef{}, ErrInvalidArgs
	}
	return HistoryRef{FileID: binary.LittleEndian.Uint32(b), Offset: binary.LittleEndian.Uint32(b[4:])}, nil
}

// SeqKey encodes a sequential id as its 8-byte key.
func SeqKey(id uint64) []byte {
	b := make([]byte, SeqKeySize)
	binary.LittleEndian.PutUint64(b, id)
	return b
}
