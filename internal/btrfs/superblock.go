package btrfs

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// SuperblockOffset is where the primary btrfs superblock sits on a device.
const SuperblockOffset = 64 << 10

// superblockSize is the size of the superblock read by ReadSuperblock.
const superblockSize = 4096

var superMagic = []byte("_BHRfS_M")

// ErrNotBtrfs is returned by ReadSuperblock when the device holds no btrfs
// superblock.
var ErrNotBtrfs = errors.New("no btrfs superblock")

// Superblock is what identifies a btrfs member device.
type Superblock struct {
	FSID       [16]byte
	Label      string
	NumDevices uint64
	// DevID is this device's id inside the filesystem.
	DevID uint64
	// TotalBytes is the size of the whole filesystem.
	TotalBytes uint64
}

// FSIDString formats the filesystem id as a UUID.
func (s Superblock) FSIDString() string { return UUIDString(s.FSID) }

// UUIDString formats 16 bytes as a UUID.
func UUIDString(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// ReadSuperblock reads the primary superblock of a device.
func ReadSuperblock(r io.ReaderAt) (Superblock, error) {
	buf := make([]byte, superblockSize)
	n, err := r.ReadAt(buf, SuperblockOffset)
	if n < len(buf) {
		if err == nil || errors.Is(err, io.EOF) {
			return Superblock{}, ErrNotBtrfs
		}
		return Superblock{}, fmt.Errorf("read superblock: %w", err)
	}
	return ParseSuperblock(buf)
}

// ParseSuperblock decodes a 4 KiB btrfs superblock (the checksum is not
// verified).
func ParseSuperblock(b []byte) (Superblock, error) {
	var s Superblock
	if len(b) < 299+256 || !bytes.Equal(b[64:72], superMagic) {
		return s, ErrNotBtrfs
	}
	copy(s.FSID[:], b[32:48])
	s.TotalBytes = binary.LittleEndian.Uint64(b[112:120])
	s.NumDevices = binary.LittleEndian.Uint64(b[136:144])
	s.DevID = binary.LittleEndian.Uint64(b[201:209])
	label := b[299 : 299+256]
	if i := bytes.IndexByte(label, 0); i >= 0 {
		label = label[:i]
	}
	s.Label = string(label)
	return s, nil
}

// Mkfs runs mkfs.btrfs -L label -d profile -m profile on devices. It never
// forces: mkfs refuses devices that already carry a filesystem.
func Mkfs(ctx context.Context, label, profile string, devices ...string) error {
	args := append([]string{"-q", "-L", label, "-d", profile, "-m", profile}, devices...)
	cmd := exec.CommandContext(ctx, "mkfs.btrfs", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mkfs.btrfs %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
