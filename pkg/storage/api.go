package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/zos-go/zos/pkg"
)

// Names of the special volumes.
const (
	// CacheVolume is the volume holding the node's own state.
	CacheVolume = "zos-cache"
	// VDisksVolume holds the virtual disk files (one per SSD pool at most).
	VDisksVolume = "vdisks"
	// ZDBPrefix starts the name of every 0-db volume.
	ZDBPrefix = "zdb"
	// MaxNameLen is the longest volume, snapshot or namespace name.
	MaxNameLen = 255
	// MaxSizeBytes is the largest size accepted anywhere (1 EiB); more is
	// refused as absurd with ErrInvalidSize.
	MaxSizeBytes uint64 = 1 << 60
)

var (
	// ErrInvalidName is returned for an empty, too long, hidden (leading
	// dot), path-like ("a/b", "..", ".") or reserved name. Nothing is
	// created.
	ErrInvalidName = errors.New("invalid name")
	// ErrInvalidSize is returned for a zero size or one over MaxSizeBytes.
	// Nothing is created.
	ErrInvalidSize = errors.New("invalid size")
	// ErrInvalidMode is returned for a 0-db mode other than user or seq.
	ErrInvalidMode = errors.New("invalid 0-db mode")
	// ErrNotFound is returned for an unknown volume, snapshot or namespace;
	// it wraps os.ErrNotExist.
	ErrNotFound = fmt.Errorf("not found: %w", os.ErrNotExist)
	// ErrExists is returned when a name is taken by something that differs
	// from the request (another size, type or mode); it wraps os.ErrExist.
	ErrExists = fmt.Errorf("already exists: %w", os.ErrExist)
	// ErrModeMismatch is returned when a 0-db namespace is asked for in a
	// mode other than the one it was allocated with: an allocation's mode
	// never changes. It wraps ErrExists.
	ErrModeMismatch = fmt.Errorf("0-db mode mismatch: %w", ErrExists)
	// ErrPoolBroken is returned when the pool holding a volume is no
	// longer usable (its mount disappeared).
	ErrPoolBroken = errors.New("pool broken")
	// ErrClosed is returned by a module after Close.
	ErrClosed = errors.New("storage module closed")
)

// Snapshot is a read-only snapshot of a volume.
type Snapshot struct {
	// Volume is the name of the snapshotted volume.
	Volume string
	// Name of the snapshot, unique per volume.
	Name string
	// ID is the btrfs subvolume id of the snapshot.
	ID int
	// Path is where the snapshot's read-only content can be read.
	Path string
}

// Snapshotter is the snapshot API that the storage module offers beside the
// seed's: read-only snapshots of volumes, which can be restored. All methods
// are safe for concurrent use.
type Snapshotter interface {
	// SnapshotVolume takes a read-only snapshot named snapshot of volume.
	// It is idempotent: an existing snapshot of that name is returned.
	// Errors: ErrInvalidName, ErrNotFound (no such volume).
	SnapshotVolume(ctx context.Context, volume, snapshot string) (Snapshot, error)
	// Snapshots lists the snapshots of volume, oldest first. Errors:
	// ErrInvalidName, ErrNotFound.
	Snapshots(ctx context.Context, volume string) ([]Snapshot, error)
	// RestoreSnapshot replaces the content of volume by the content of the
	// snapshot (the snapshot stays). The volume keeps its name, path and
	// size limit but gets a new ID; processes that hold files of the old
	// content open keep seeing it. Errors: ErrInvalidName, ErrNotFound.
	RestoreSnapshot(ctx context.Context, volume, snapshot string) error
	// DeleteSnapshot removes a snapshot; nil if it does not exist.
	DeleteSnapshot(ctx context.Context, volume, snapshot string) error
}

// VDiskArea is what the vdisk module needs from storage: a place on an SSD
// pool for virtual disk files, whose sizes count against the pool.
type VDiskArea interface {
	// VDiskDirs returns the vdisks directories of all usable SSD pools.
	VDiskDirs(ctx context.Context) ([]string, error)
	// ReserveVDisk picks an SSD pool with room for size more bytes (one
	// that already has a vdisks volume first), creating its vdisks volume
	// if needed, and calls create with that directory while holding the
	// pool's accounting lock, so the file create makes counts before any
	// other reservation. It returns the directory. Errors:
	// ErrInvalidSize, pkg.ErrNotEnoughSpace, or create's error.
	ReserveVDisk(ctx context.Context, size uint64, create func(dir string) error) (string, error)
}

// Storage is everything the storage module offers: the seed's
// StorageModule, snapshots and the vdisk area. Both the real Module and
// storagetest.Fake implement it.
type Storage interface {
	pkg.StorageModule
	Snapshotter
	VDiskArea
}

// ValidateName checks a volume, snapshot, vdisk or namespace name: not
// empty, at most MaxNameLen bytes, no slash or NUL, not "." or "..", not
// hidden (leading dot). It returns an error wrapping ErrInvalidName.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty name: %w", ErrInvalidName)
	case len(name) > MaxNameLen:
		return fmt.Errorf("name of %d bytes, more than %d: %w", len(name), MaxNameLen, ErrInvalidName)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("name %q contains a slash or NUL: %w", name, ErrInvalidName)
	case strings.HasPrefix(name, "."):
		return fmt.Errorf("name %q starts with a dot: %w", name, ErrInvalidName)
	}
	return nil
}

// ValidateVolumeName is ValidateName plus the reserved names: the zdb
// prefix, zos-cache and vdisks cannot be created by CreateFilesystem.
func ValidateVolumeName(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if strings.HasPrefix(name, ZDBPrefix) || name == CacheVolume || name == VDisksVolume {
		return fmt.Errorf("name %q is reserved: %w", name, ErrInvalidName)
	}
	return nil
}

// ValidateSize checks a size in bytes: more than zero and at most
// MaxSizeBytes. It returns an error wrapping ErrInvalidSize.
func ValidateSize(size uint64) error {
	if size == 0 || size > MaxSizeBytes {
		return fmt.Errorf("size %d bytes: %w", size, ErrInvalidSize)
	}
	return nil
}

// ValidateType checks a device type: ssd or hdd, else
// pkg.ErrInvalidDeviceType.
func ValidateType(t pkg.DeviceType) error {
	if t != pkg.SSDDevice && t != pkg.HDDDevice {
		return pkg.ErrInvalidDeviceType{DeviceType: t}
	}
	return nil
}

// ValidateMode checks a 0-db mode: user or seq, else ErrInvalidMode.
func ValidateMode(m pkg.ZDBMode) error {
	if m != pkg.ZDBModeUser && m != pkg.ZDBModeSeq {
		return fmt.Errorf("mode %q: %w", m, ErrInvalidMode)
	}
	return nil
}
