package block

import (
	"encoding/binary"
	"fmt"
)

// XXTEA (corrected block TEA, Wheeler & Needham 1998) as used by libflist
// and 0-fs: the byte string is read as little-endian 32-bit words, the
// encrypter appends one word holding the plain length, and the 16-byte key
// is read as four little-endian words.

const xxteaDelta = 0x9e3779b9

func xxteaWords(p []byte, withLength bool) []uint32 {
	n := (len(p) + 3) / 4
	words := n
	if withLength {
		words++
	}
	v := make([]uint32, words)
	for i, b := range p {
		v[i/4] |= uint32(b) << (8 * (i % 4))
	}
	if withLength {
		v[n] = uint32(len(p))
	}
	return v
}

func xxteaKey(key []byte) [4]uint32 {
	var k [4]uint32
	var padded [16]byte
	copy(padded[:], key)
	for i := range k {
		k[i] = binary.LittleEndian.Uint32(padded[4*i:])
	}
	return k
}

func xxteaMX(sum, y, z, p, e uint32, k *[4]uint32) uint32 {
	return ((z>>5 ^ y<<2) + (y>>3 ^ z<<4)) ^ ((sum ^ y) + (k[(p&3)^e] ^ z))
}

func xxteaEncrypt(plain, key []byte) []byte {
	if len(plain) == 0 {
		return nil
	}
	v := xxteaWords(plain, true)
	k := xxteaKey(key)
	n := uint32(len(v))
	last := n - 1
	z := v[last]
	var sum uint32
	for rounds := 6 + 52/n; rounds > 0; rounds-- {
		sum += xxteaDelta
		e := sum >> 2 & 3
		var p uint32
		for p = 0; p < last; p++ {
			y := v[p+1]
			v[p] += xxteaMX(sum, y, z, p, e, &k)
			z = v[p]
		}
		y := v[0]
		v[last] += xxteaMX(sum, y, z, p, e, &k)
		z = v[last]
	}
	out := make([]byte, 4*n)
	for i, w := range v {
		binary.LittleEndian.PutUint32(out[4*i:], w)
	}
	return out
}

func xxteaDecrypt(data, key []byte) ([]byte, error) {
	if len(data) == 0 {
		return nil, nil
	}
	if len(data)%4 != 0 || len(data) < 8 {
		return nil, fmt.Errorf("xxtea: %d bytes: %w", len(data), ErrCorrupt)
	}
	v := make([]uint32, len(data)/4)
	for i := range v {
		v[i] = binary.LittleEndian.Uint32(data[4*i:])
	}
	k := xxteaKey(key)
	n := uint32(len(v))
	last := n - 1
	y := v[0]
	rounds := 6 + 52/n
	for sum := rounds * xxteaDelta; sum != 0; sum -= xxteaDelta {
		e := sum >> 2 & 3
		var p uint32
		for p = last; p > 0; p-- {
			z := v[p-1]
			v[p] -= xxteaMX(sum, y, z, p, e, &k)
			y = v[p]
		}
		z := v[last]
		v[0] -= xxteaMX(sum, y, z, p, e, &k)
		y = v[0]
	}
	size := 4 * (n - 1)
	m := v[last]
	if m > size || m+3 < size {
		return nil, fmt.Errorf("xxtea: length word %d for %d bytes: %w", m, size, ErrCorrupt)
	}
	out := make([]byte, size)
	for i := range n - 1 {
		binary.LittleEndian.PutUint32(out[4*i:], v[i])
	}
	return out[:m], nil
}
