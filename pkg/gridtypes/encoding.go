package gridtypes

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"math"
	"slices"
)

// encoder builds the canonical, length-prefixed encoding documented in the
// package comment. It never fails: a string longer than 4 GiB cannot pass
// validation, so its length is clamped rather than reported.
type encoder struct {
	buf []byte
}

func newEncoder(tag string) *encoder {
	e := &encoder{buf: make([]byte, 0, 512)}
	e.str(tag)
	return e
}

func (e *encoder) u8(v uint8) { e.buf = append(e.buf, v) }

func (e *encoder) boolean(v bool) {
	if v {
		e.u8(1)
		return
	}
	e.u8(0)
}

func (e *encoder) u32(v uint32) { e.buf = binary.BigEndian.AppendUint32(e.buf, v) }

func (e *encoder) u64(v uint64) { e.buf = binary.BigEndian.AppendUint64(e.buf, v) }

func (e *encoder) i64(v int64) { e.u64(uint64(v)) }

func (e *encoder) count(n int) {
	if n > math.MaxUint32 {
		n = math.MaxUint32
	}
	e.u32(uint32(n))
}

func (e *encoder) bytes(b []byte) {
	e.count(len(b))
	e.buf = append(e.buf, b...)
}

func (e *encoder) str(s string) {
	e.count(len(s))
	e.buf = append(e.buf, s...)
}

func (e *encoder) strs(l []string) {
	e.count(len(l))
	for _, s := range l {
		e.str(s)
	}
}

func (e *encoder) u64s(l []uint64) {
	e.count(len(l))
	for _, v := range l {
		e.u64(v)
	}
}

// strMap encodes a map as its pair count followed by key, value pairs in
// increasing byte order of the keys.
func (e *encoder) strMap(m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e.count(len(keys))
	for _, k := range keys {
		e.str(k)
		e.str(m[k])
	}
}

// rawJSON encodes a JSON document in its canonical text: compacted and
// HTML-escaped, which is exactly what encoding/json emits when it marshals a
// json.RawMessage. A signature over it therefore survives any number of
// JSON round trips. An empty document is encoded as empty bytes; invalid
// JSON is encoded as given (validation rejects it elsewhere).
func (e *encoder) rawJSON(b []byte) {
	e.bytes(canonicalJSON(b))
}

func canonicalJSON(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	var c bytes.Buffer
	if err := json.Compact(&c, b); err != nil {
		return b
	}
	var h bytes.Buffer
	json.HTMLEscape(&h, c.Bytes())
	return h.Bytes()
}

func (e *encoder) sum() [32]byte { return sha256.Sum256(e.buf) }
