package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/containerd/errdefs"

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
	// CreateFilesystem of an existing volume with another size gives it:
	// changing a volume's size is ResizeFilesystem's job.
	ErrExists = fmt.Errorf("already exists: %w", os.ErrExist)
	// ErrInUse is returned when a volume or 0-db namespace is asked to
	// shrink below what it already holds. Nothing is changed. It wraps
	// errdefs.ErrFailedPrecondition.
	ErrInUse = fmt.Errorf("in use: %w", errdefs.ErrFailedPrecondition)
	// ErrModeMismatch is returned when a 0-db namespace is asked for in a
	// mode other than the one it was allocated with: an allocation's mode
	// never changes. It wraps ErrExists.
	ErrModeMismatch = fmt.Errorf("0-db mode mismatch: %w", ErrExists)
	// ErrPoolBroken is returned when the pool holding a volume is no
	// longer usable (its mount disappeared and could not be mounted again,
	// or its devices are missing).
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

// VolumeResizer changes the size of existing volumes. It is safe for
// concurrent use.
type VolumeResizer interface {
	// ResizeFilesystem sets the size (quota limit and reservation) of the
	// volume name to size bytes, on the pool the volume is on: the volume
	// keeps its ID, path and data. The same size is a no-op. The change is
	// atomic and durable when it returns: a crash leaves the old or the
	// new size, and the accounting read back on adoption follows the
	// limit. It returns the volume as Path does. Errors: ErrInvalidName
	// (also for the reserved names: zdb volumes, cache, vdisks),
	// ErrInvalidSize, ErrNotFound, pkg.ErrNotEnoughSpace when growing by
	// more than the pool's free space, ErrInUse when shrinking below what
	// the volume holds now; on error nothing is changed.
	ResizeFilesystem(ctx context.Context, name string, size uint64) (pkg.Filesystem, error)
}

// ZDBReservations changes what allocated 0-db namespaces reserve. The 0-db
// server owns a namespace's files once it serves it: call these after the
// server has applied the change (ReleaseNamespace after NSDEL) or before it
// applies it (ResizeNamespace before NSSET maxsize). Both are safe for
// concurrent use.
type ZDBReservations interface {
	// ResizeNamespace sets the reservation of namespace ns to size bytes
	// and writes it into the namespace's descriptor (maxsize, the rest of
	// the descriptor kept), atomically: a crash leaves the old or the new
	// descriptor, and adoption reads the reservation from it. The same
	// size is a no-op. Errors: ErrInvalidName, ErrInvalidSize, ErrNotFound
	// (unknown namespace, or its descriptor is gone), pkg.ErrNotEnoughSpace
	// when growing by more than the free space of the namespace's pool
	// (namespaces never move), ErrInUse when shrinking below the bytes of
	// the namespace's files; on error nothing is changed.
	ResizeNamespace(ctx context.Context, ns string, size uint64) error
	// ReleaseNamespace gives back the reservation of namespace ns and
	// removes what is left of its directory (after NSDEL, nothing; for a
	// namespace never served, the descriptor Allocate wrote). Afterwards
	// Find(ns) gives ErrNotFound. The zdb volume stays, even empty (release
	// it with ReleaseFilesystem). A crash midway leaves the namespace
	// either reserved or gone for good at the next adoption. nil when
	// there is no such namespace. Errors: ErrInvalidName.
	ReleaseNamespace(ctx context.Context, ns string) error
}

// Storage is everything the storage module offers: the seed's
// StorageModule, volume resize, 0-db reservations, snapshots and the vdisk
// area. Both the real Module and storagetest.Fake implement it.
type Storage interface {
	pkg.StorageModule
	VolumeResizer
	ZDBReservations
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
