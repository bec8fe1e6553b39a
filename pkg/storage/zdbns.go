package storage

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/zos-go/zos/pkg"
)

// NamespaceFile is the name of the 0-db namespace descriptor inside
// <volume>/<namespace>/.
const NamespaceFile = "zdb-namespace"

// Namespace descriptor flags (0-db v1 layout).
const (
	nsFlagPublic   = 1
	nsFlagWorm     = 2
	nsFlagExtended = 4
)

// ErrBadDescriptor is returned by DecodeNamespace for bytes that are not a
// 0-db namespace descriptor.
var ErrBadDescriptor = errors.New("bad 0-db namespace descriptor")

// NamespaceDescriptor is the content of a 0-db namespace descriptor
// (zdb-namespace), as 0-db v1 writes it.
type NamespaceDescriptor struct {
	Name     string
	Password string
	// MaxSizeBytes is the namespace's size limit (0 = none).
	MaxSizeBytes uint64
	Public       bool
	Worm         bool
}

// EncodeNamespace returns the descriptor in 0-db's v1 layout
// (little-endian, packed): u8 name_len, u8 pass_len, u32 legacy maxsize,
// u8 flags, name, password, then (extended flag) u32 version 1 and u64
// maxsize. The legacy maxsize is 0, the size lives in the extended part.
func EncodeNamespace(d NamespaceDescriptor) ([]byte, error) {
	if len(d.Name) > 255 || len(d.Password) > 255 {
		return nil, fmt.Errorf("namespace %q: name or password over 255 bytes: %w", d.Name, ErrBadDescriptor)
	}
	flags := byte(nsFlagExtended)
	if d.Public {
		flags |= nsFlagPublic
	}
	if d.Worm {
		flags |= nsFlagWorm
	}
	b := make([]byte, 0, 7+len(d.Name)+len(d.Password)+12)
	b = append(b, byte(len(d.Name)), byte(len(d.Password)))
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = append(b, flags)
	b = append(b, d.Name...)
	b = append(b, d.Password...)
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint64(b, d.MaxSizeBytes)
	return b, nil
}

// DecodeNamespace parses a descriptor in 0-db's v1 layout, legacy (no
// extended part: the size is the u32 legacy maxsize) or extended.
func DecodeNamespace(b []byte) (NamespaceDescriptor, error) {
	var d NamespaceDescriptor
	if len(b) < 7 {
		return d, fmt.Errorf("%d bytes: %w", len(b), ErrBadDescriptor)
	}
	nameLen, passLen := int(b[0]), int(b[1])
	legacy := binary.LittleEndian.Uint32(b[2:6])
	flags := b[6]
	rest := b[7:]
	if len(rest) < nameLen+passLen {
		return d, fmt.Errorf("truncated name or password: %w", ErrBadDescriptor)
	}
	d.Name = string(rest[:nameLen])
	d.Password = string(rest[nameLen : nameLen+passLen])
	rest = rest[nameLen+passLen:]
	d.Public = flags&nsFlagPublic != 0
	d.Worm = flags&nsFlagWorm != 0
	d.MaxSizeBytes = uint64(legacy)
	if flags&nsFlagExtended != 0 {
		if len(rest) < 12 {
			return d, fmt.Errorf("truncated extended part: %w", ErrBadDescriptor)
		}
		if v := binary.LittleEndian.Uint32(rest[:4]); v != 1 {
			return d, fmt.Errorf("extended version %d: %w", v, ErrBadDescriptor)
		}
		d.MaxSizeBytes = binary.LittleEndian.Uint64(rest[4:12])
	}
	return d, nil
}

// ZDBIndexModeOffset is where 0-db v1 keeps the namespace mode in
// zdb-index-00000 (0 user, 1 seq).
const ZDBIndexModeOffset = 26

// modeFromIndex maps the mode byte of a 0-db index header to a ZDBMode.
func modeFromIndex(b byte) (pkg.ZDBMode, bool) {
	switch b {
	case 0:
		return pkg.ZDBModeUser, true
	case 1:
		return pkg.ZDBModeSeq, true
	}
	return "", false
}
