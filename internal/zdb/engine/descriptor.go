package engine

import (
	"encoding/binary"
	"fmt"
)

// DescriptorFile is the name of the namespace descriptor in the index dir.
const DescriptorFile = "zdb-namespace"

// Descriptor flags.
const (
	nsFlagPublic   = 1
	nsFlagWorm     = 2
	nsFlagExtended = 4
)

// Descriptor is the persistent part of a namespace: the zdb-namespace file.
type Descriptor struct {
	Name     string
	Password string // empty: no password
	Public   bool
	Worm     bool
	MaxSize  uint64 // bytes, 0 = unlimited
}

// MarshalDescriptor encodes d in the extended (version 1) format 0-db writes:
// u8 name_len, u8 pass_len, u32 legacy maxsize (0), u8 flags, name, password,
// u32 version, u64 maxsize.
func MarshalDescriptor(d Descriptor) ([]byte, error) {
	if len(d.Name) > 255 || len(d.Password) > 255 {
		return nil, fmt.Errorf("descriptor %q: name or password longer than 255 bytes: %w", d.Name, ErrBadName)
	}
	flags := byte(nsFlagExtended)
	if d.Public {
		flags |= nsFlagPublic
	}
	if d.Worm {
		flags |= nsFlagWorm
	}
	b := make([]byte, 0, 7+len(d.Name)+len(d.Password)+12)
	b = append(b, byte(len(d.Name)), byte(len(d.Password)), 0, 0, 0, 0, flags)
	b = append(b, d.Name...)
	b = append(b, d.Password...)
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint64(b, d.MaxSize)
	return b, nil
}

// ParseDescriptor decodes a zdb-namespace file, legacy (v0) or extended.
func ParseDescriptor(b []byte) (Descriptor, error) {
	if len(b) < 7 {
		return Descriptor{}, fmt.Errorf("namespace descriptor: %d bytes: %w", len(b), ErrCorrupt)
	}
	nl, pl := int(b[0]), int(b[1])
	legacy := binary.LittleEndian.Uint32(b[2:])
	flags := b[6]
	if len(b) < 7+nl+pl {
		return Descriptor{}, fmt.Errorf("namespace descriptor: %d bytes, name and password need %d: %w", len(b), 7+nl+pl, ErrCorrupt)
	}
	d := Descriptor{
		Name:     string(b[7 : 7+nl]),
		Password: string(b[7+nl : 7+nl+pl]),
		Public:   flags&nsFlagPublic != 0,
		Worm:     flags&nsFlagWorm != 0,
		MaxSize:  uint64(legacy),
	}
	if flags&nsFlagExtended != 0 {
		rest := b[7+nl+pl:]
		if len(rest) < 12 {
			return Descriptor{}, fmt.Errorf("namespace descriptor: extended header of %d bytes: %w", len(rest), ErrCorrupt)
		}
		d.MaxSize = binary.LittleEndian.Uint64(rest[4:])
	}
	return d, nil
}
