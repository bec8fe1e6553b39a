package pkg

import (
	"context"
	"errors"
	"fmt"
)

// RaidProfile is the btrfs raid profile of a storage pool.
type RaidProfile string

const (
	// Single profile: one disk per pool, no redundancy.
	Single RaidProfile = "single"
	// Raid0 profile: striping without redundancy. The original declared it but
	// refused it in Validate; zos builds it (the storage issue asks for it).
	Raid0 RaidProfile = "raid0"
	// Raid1 profile: two disks mirrored.
	Raid1 RaidProfile = "raid1"
	// Raid10 profile: four disks, striped mirrors.
	Raid10 RaidProfile = "raid10"
)

// Validate returns nil for the profiles storage can build (Single, Raid0,
// Raid1, Raid10) and an error wrapping errors.ErrUnsupported for any other
// value. Deviation: the original refused Raid0.
func (p RaidProfile) Validate() error {
	switch p {
	case Single, Raid0, Raid1, Raid10:
		return nil
	}
	return fmt.Errorf("raid profile %q: %w", string(p), errors.ErrUnsupported)
}

// DeviceType is the actual type of hardware that the storage device runs on,
// i.e. SSD or HDD.
type DeviceType string

// Known device types.
const (
	SSDDevice DeviceType = "ssd"
	HDDDevice DeviceType = "hdd"
)

// ErrNotEnoughSpace indicates that there is not enough space in a pool of
// the requested type to create the filesystem. Match it with errors.As.
type ErrNotEnoughSpace struct {
	DeviceType DeviceType
}

// Error returns the original's message, "Not enough space left in pools of
// this type <type>".
func (e ErrNotEnoughSpace) Error() string {
	return fmt.Sprintf("Not enough space left in pools of this type %s", e.DeviceType)
}

// ErrInvalidDeviceType is returned when space is asked for on a device type
// storage does not know. Match it with errors.As.
type ErrInvalidDeviceType struct {
	DeviceType DeviceType
}

// Error returns the original's message, "invalid device type '<type>'.
// type unknown".
func (e ErrInvalidDeviceType) Error() string {
	return fmt.Sprintf("invalid device type '%s'. type unknown", e.DeviceType)
}

// BrokenDevice is a disk which is somehow not fully functional. Storage keeps
// track of disks which have failed at some point, so they are not used, and
// to be able to later report this to other daemons.
type BrokenDevice struct {
	// Path to allow identification of the disk
	Path string
	// Err returned which lead to the disk being marked as faulty
	Err error
}

// BrokenPool contains info about a malfunctioning storage pool.
type BrokenPool struct {
	// Label of the broken pool
	Label string
	// Err returned by the action which let to the pool being marked as broken
	Err error
}

// StoragePolicy describes the pool creation policy.
type StoragePolicy struct {
	// Raid profile for this policy
	Raid RaidProfile
	// Disks is the number of disks in a single pool; it must be valid for
	// the chosen raid profile.
	Disks uint8
	// MaxPools limits how many pools are created; 0 means unlimited. Spare
	// disks can later replace a failing one. Even when unlimited, disks
	// may be left over when their count does not divide into pools (2-disk
	// pools on a machine with 5 disks).
	MaxPools uint8
}

var (
	// DefaultPolicy value: single-disk pools, no limit on their number.
	DefaultPolicy = StoragePolicy{
		Raid: Single,
	}

	// NullPolicy does not create pools.
	NullPolicy = StoragePolicy{}
)

// Usage is the size and usage of a filesystem, in bytes.
type Usage struct {
	Size uint64
	Used uint64
}

// Filesystem represents a storage space that can be used as a filesystem.
type Filesystem struct {
	// ID of the Filesystem (the btrfs subvolume id)
	ID int
	// Path of the Filesystem (its mount point)
	Path string
	// Usage reports the current usage of the Filesystem
	Usage Usage
	// Name of the Filesystem
	Name string
	// FsType of the Filesystem
	FsType string
	// DiskType of the Filesystem
	DiskType DeviceType
}

// VolumeAllocater is the zbus interface of the storage module responsible
// for volume allocation.
type VolumeAllocater interface {
	// CreateFilesystem creates and mounts a filesystem of the given size
	// (bytes) in a pool of poolType. When no pool of that type has room it
	// returns ErrNotEnoughSpace; the caller may retry with another type.
	CreateFilesystem(name string, size uint64, poolType DeviceType) (Filesystem, error)

	// ReleaseFilesystem unmounts and removes the named filesystem, with all
	// its data, and reclaims its reserved space.
	ReleaseFilesystem(name string) error

	// ListFilesystems returns every filesystem managed by storage, except
	// the special ones (cache, vdisks). It may be slow on nodes with many
	// disks; do not call it in a tight loop.
	ListFilesystems() ([]Filesystem, error)

	// Path returns the filesystem named name, or an error if there is none.
	Path(name string) (Filesystem, error)

	// GetCacheFS returns the special filesystem where the node keeps its
	// internal state and flist cache.
	GetCacheFS() (Filesystem, error)
}

// VDisk describes a virtual disk, as returned by VDiskModule.Inspect.
type VDisk struct {
	// Path to disk
	Path string
	// Size in bytes
	Size int64
}

// VDiskModule manages virtual disks (files used as VM disks).
type VDiskModule interface {
	// Allocate creates the disk id with size MiB and returns its path.
	Allocate(id string, size int64) (string, error)
	// Deallocate removes a virtual disk.
	Deallocate(id string) error
	// Exists checks if a disk with that id is already allocated.
	Exists(id string) bool
	// Inspect returns info about the disk.
	Inspect(id string) (VDisk, error)
	// List lists all the available vdisks.
	List() ([]VDisk, error)
}

// StorageModule defines the api for storage.
type StorageModule interface {
	VolumeAllocater
	ZDBAllocater

	// Total gives the total amount of storage available for a device type
	Total(kind DeviceType) (uint64, error)
	// BrokenPools lists the broken storage pools that have been detected
	BrokenPools() []BrokenPool
	// BrokenDevices lists the broken devices that have been detected
	BrokenDevices() []BrokenDevice
	// Monitor returns a stream of statistics about the pools; it is closed
	// when ctx ends.
	Monitor(ctx context.Context) <-chan PoolsStats
}
