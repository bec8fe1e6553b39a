package engine

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
)

// location is where the live version of a user key lives on disk.
type location struct {
	DataID uint32 // data file id
	Offset uint32 // data entry offset in that file
	Length uint32 // payload length
	IdxID  uint32 // index file id of the entry
	IdxOff uint32 // offset of the entry in that index file
	CRC    uint32 // payload CRC
}

// memIndex maps user keys to their location with little memory: records
// (25 bytes + key) are packed in 1 MiB arena chunks, and an open-addressing
// table of 8-byte slots (linear probing, backward-shift deletion) points to
// them. A slot holds the record reference and 24 bits of the key's hash.
// Freed records are reused by later keys of the same length. Not safe for
// concurrent use: the namespace lock guards it.
type memIndex struct {
	seed  maphash.Seed
	slots []uint64 // 0 = empty; else (ref+1) | tag<<40
	bits  uint     // len(slots) == 1<<bits
	count int

	chunks [][]byte
	tail   int                       // bytes used in the last chunk
	free   [recHeader + 256][]uint64 // freed record refs, by record size
}

const (
	recHeader    = 25
	chunkSize    = 1 << 20
	refBits      = 40
	refMask      = 1<<refBits - 1
	minTableBits = 10
)

func newMemIndex() *memIndex {
	return &memIndex{seed: maphash.MakeSeed(), slots: make([]uint64, 1<<minTableBits), bits: minTableBits}
}

func (m *memIndex) hash(key []byte) uint64 { return maphash.Bytes(m.seed, key) }

// home returns the first slot a hash probes.
func (m *memIndex) home(h uint64) uint64 { return h >> (64 - m.bits) }

func (m *memIndex) record(ref uint64) []byte {
	c := m.chunks[ref/chunkSize]
	off := ref % chunkSize
	n := int(c[off])
	return c[off : off+recHeader+uint64(n)]
}

func recKey(r []byte) []byte { return r[recHeader:] }

func recLoc(r []byte) location {
	return location{
		DataID: binary.LittleEndian.Uint32(r[1:]),
		Offset: binary.LittleEndian.Uint32(r[5:]),
		Length: binary.LittleEndian.Uint32(r[9:]),
		IdxID:  binary.LittleEndian.Uint32(r[13:]),
		IdxOff: binary.LittleEndian.Uint32(r[17:]),
		CRC:    binary.LittleEndian.Uint32(r[21:]),
	}
}

func putLoc(r []byte, l location) {
	binary.LittleEndian.PutUint32(r[1:], l.DataID)
	binary.LittleEndian.PutUint32(r[5:], l.Offset)
	binary.LittleEndian.PutUint32(r[9:], l.Length)
	binary.LittleEndian.PutUint32(r[13:], l.IdxID)
	binary.LittleEndian.PutUint32(r[17:], l.IdxOff)
	binary.LittleEndian.PutUint32(r[21:], l.CRC)
}

// find returns the slot index holding key, or -1.
func (m *memIndex) find(key []byte, h uint64) int {
	mask := uint64(len(m.slots) - 1)
	tag := h >> refBits
	for i := m.home(h); ; i = (i + 1) & mask {
		s := m.slots[i]
		if s == 0 {
			return -1
		}
		if s>>refBits == tag && bytes.Equal(recKey(m.record(s&refMask-1)), key) {
			return int(i)
		}
	}
}

// get returns the location of key.
func (m *memIndex) get(key []byte) (location, bool) {
	i := m.find(key, m.hash(key))
	if i < 0 {
		return location{}, false
	}
	return recLoc(m.record(m.slots[i]&refMask - 1)), true
}

// put sets the location of key and returns the previous one, if any.
func (m *memIndex) put(key []byte, l location) (location, bool) {
	h := m.hash(key)
	if i := m.find(key, h); i >= 0 {
		r := m.record(m.slots[i]&refMask - 1)
		old := recLoc(r)
		putLoc(r, l)
		return old, true
	}
	if (m.count+1)*4 > len(m.slots)*3 {
		m.grow()
	}
	ref := m.alloc(len(key))
	r := m.record0(ref, len(key))
	r[0] = byte(len(key))
	putLoc(r, l)
	copy(r[recHeader:], key)
	m.insertSlot(h, ref)
	m.count++
	return location{}, false
}

// record0 returns the record at ref before its length byte is set.
func (m *memIndex) record0(ref uint64, keyLen int) []byte {
	c := m.chunks[ref/chunkSize]
	off := ref % chunkSize
	return c[off : off+recHeader+uint64(keyLen)]
}

func (m *memIndex) insertSlot(h, ref uint64) {
	mask := uint64(len(m.slots) - 1)
	i := m.home(h)
	for m.slots[i] != 0 {
		i = (i + 1) & mask
	}
	m.slots[i] = (ref + 1) | (h>>refBits)<<refBits
}

func (m *memIndex) alloc(keyLen int) uint64 {
	size := recHeader + keyLen
	if fl := m.free[size]; len(fl) > 0 {
		ref := fl[len(fl)-1]
		m.free[size] = fl[:len(fl)-1]
		return ref
	}
	if len(m.chunks) == 0 || m.tail+size > chunkSize {
		m.chunks = append(m.chunks, make([]byte, chunkSize))
		m.tail = 0
	}
	ref := uint64(len(m.chunks)-1)*chunkSize + uint64(m.tail)
	m.tail += size
	return ref
}

// del removes key and returns its location.
func (m *memIndex) del(key []byte) (location, bool) {
	h := m.hash(key)
	i := m.find(key, h)
	if i < 0 {
		return location{}, false
	}
	ref := m.slots[i]&refMask - 1
	r := m.record(ref)
	l := recLoc(r)
	size := len(r)
	m.free[size] = append(m.free[size], ref)
	m.removeSlot(uint64(i))
	m.count--
	return l, true
}

// removeSlot empties slot i and shifts the following cluster back so that
// every key stays reachable from its home slot.
func (m *memIndex) removeSlot(i uint64) {
	mask := uint64(len(m.slots) - 1)
	for {
		m.slots[i] = 0
		j := i
		for {
			j = (j + 1) & mask
			s := m.slots[j]
			if s == 0 {
				return
			}
			home := m.slotHome(s)
			// move s into the hole i if its home is not in (i, j]
			if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
				m.slots[i] = s
				i = j
				break
			}
		}
	}
}

// slotHome returns the home slot of the record a slot points to.
func (m *memIndex) slotHome(s uint64) uint64 {
	if m.bits <= 64-refBits {
		return (s >> refBits) >> (64 - refBits - m.bits)
	}
	return m.home(m.hash(recKey(m.record(s&refMask - 1))))
}

func (m *memIndex) grow() {
	old := m.slots
	m.bits++
	m.slots = make([]uint64, 1<<m.bits)
	mask := uint64(len(m.slots) - 1)
	for _, s := range old {
		if s == 0 {
			continue
		}
		var home uint64
		if m.bits <= 64-refBits {
			home = (s >> refBits) >> (64 - refBits - m.bits)
		} else {
			home = m.home(m.hash(recKey(m.record(s&refMask - 1))))
		}
		for m.slots[home] != 0 {
			home = (home + 1) & mask
		}
		m.slots[home] = s
	}
}

// walk calls fn for every key until fn returns false. fn must not modify m.
func (m *memIndex) walk(fn func(key []byte, l location) bool) {
	for _, s := range m.slots {
		if s == 0 {
			continue
		}
		r := m.record(s&refMask - 1)
		if !fn(recKey(r), recLoc(r)) {
			return
		}
	}
}

// memBytes returns the memory held by the index (arena, table, free lists).
func (m *memIndex) memBytes() int {
	n := len(m.chunks)*chunkSize + len(m.slots)*8
	for _, fl := range m.free {
		n += cap(fl) * 8
	}
	return n
}

// liveBytes returns the bytes of live records plus the table: what a key
// costs once the arena is full.
func (m *memIndex) liveBytes() int {
	n := len(m.slots) * 8
	m.walk(func(key []byte, _ location) bool {
		n += recHeader + len(key)
		return true
	})
	return n
}
