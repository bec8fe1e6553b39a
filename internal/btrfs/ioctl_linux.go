package btrfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

const ioctlMagic = 0x94

func ioc(dir, nr, size uintptr) uintptr {
	return dir<<30 | size<<16 | ioctlMagic<<8 | nr
}

const (
	iocWrite = 1
	iocRead  = 2
)

// Kernel ABI (include/uapi/linux/btrfs.h).
var (
	iocSync           = ioc(0, 8, 0)
	iocSubvolCreate   = ioc(iocWrite, 14, unsafe.Sizeof(volArgs{}))
	iocSnapDestroy    = ioc(iocWrite, 15, unsafe.Sizeof(volArgs{}))
	iocTreeSearch     = ioc(iocWrite|iocRead, 17, unsafe.Sizeof(searchArgs{}))
	iocInoLookup      = ioc(iocWrite|iocRead, 18, unsafe.Sizeof(inoLookupArgs{}))
	iocSpaceInfo      = ioc(iocWrite|iocRead, 20, 16)
	iocSnapCreateV2   = ioc(iocWrite, 23, unsafe.Sizeof(volArgsV2{}))
	iocSubvolCreateV2 = ioc(iocWrite, 24, unsafe.Sizeof(volArgsV2{}))
	iocSubvolGetFlags = ioc(iocRead, 25, 8)
	iocSubvolSetFlags = ioc(iocWrite, 26, 8)
	iocDevInfo        = ioc(iocWrite|iocRead, 30, unsafe.Sizeof(devInfoArgs{}))
	iocFSInfo         = ioc(iocRead, 31, unsafe.Sizeof(fsInfoArgs{}))
	iocQuotaCtl       = ioc(iocWrite|iocRead, 40, unsafe.Sizeof(quotaCtlArgs{}))
	iocQgroupCreate   = ioc(iocWrite, 42, unsafe.Sizeof(qgroupCreateArgs{}))
	iocQgroupLimit    = ioc(iocRead, 43, unsafe.Sizeof(qgroupLimitArgs{}))
)

const (
	subvolRdonly        = 1 << 1
	subvolQgroupInherit = 1 << 2

	qgroupInheritSetLimits = 1
	qgroupLimitMaxRfer     = 1

	quotaCtlEnable       = 1
	quotaCtlDisable      = 2
	quotaCtlEnableSimple = 4

	// firstFreeObjectID is the inode number of a subvolume's root dir.
	firstFreeObjectID = 256
)

type volArgs struct {
	fd   int64
	name [4088]byte
}

type volArgsV2 struct {
	fd      int64
	transid uint64
	flags   uint64
	size    uint64
	inherit uintptr
	unused  [2]uint64
	name    [4040]byte
}

type qgroupLimit struct {
	flags   uint64
	maxRfer uint64
	maxExcl uint64
	rsvRfer uint64
	rsvExcl uint64
}

type qgroupInherit struct {
	flags         uint64
	numQgroups    uint64
	numRefCopies  uint64
	numExclCopies uint64
	lim           qgroupLimit
}

type inoLookupArgs struct {
	treeid   uint64
	objectid uint64
	name     [4080]byte
}

type searchKey struct {
	treeID      uint64
	minObjectID uint64
	maxObjectID uint64
	minOffset   uint64
	maxOffset   uint64
	minTransid  uint64
	maxTransid  uint64
	minType     uint32
	maxType     uint32
	nrItems     uint32
	unused      uint32
	unused1     [4]uint64
}

type searchArgs struct {
	key searchKey
	buf [4096 - 104]byte
}

type fsInfoArgs struct {
	maxID          uint64
	numDevices     uint64
	fsid           [16]byte
	nodesize       uint32
	sectorsize     uint32
	cloneAlignment uint32
	csumType       uint16
	csumSize       uint16
	flags          uint64
	generation     uint64
	metadataUUID   [16]byte
	reserved       [944]byte
}

type devInfoArgs struct {
	devid      uint64
	uuid       [16]byte
	bytesUsed  uint64
	totalBytes uint64
	fsid       [16]byte
	unused     [377]uint64
	path       [1024]byte
}

type quotaCtlArgs struct {
	cmd    uint64
	status uint64
}

type qgroupCreateArgs struct {
	create   uint64
	qgroupid uint64
}

type qgroupLimitArgs struct {
	qgroupid uint64
	lim      qgroupLimit
}

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return errno
		}
		return nil
	}
}

// openDir opens a directory for ioctls.
func openDir(path string) (int, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

// withDir runs fn with an fd of the directory path.
func withDir(path string, fn func(fd int) error) error {
	fd, err := openDir(path)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return fn(fd)
}

func checkName(name string, max int) error {
	if name == "" || name == "." || name == ".." || len(name) >= max {
		return fmt.Errorf("subvolume name %q: %w", name, ErrInvalidName)
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '/' || name[i] == 0 {
			return fmt.Errorf("subvolume name %q: %w", name, ErrInvalidName)
		}
	}
	return nil
}

// ErrInvalidName is returned for a subvolume name that is empty, ".",
// "..", too long or has a slash or NUL.
var ErrInvalidName = errors.New("invalid subvolume name")

// OpError is the error of a btrfs ioctl: the operation, the path and the
// errno (match with errors.Is, e.g. unix.EEXIST or os.ErrExist).
type OpError struct {
	Op   string
	Path string
	Err  error
}

// Error returns "btrfs <op> <path>: <errno>".
func (e *OpError) Error() string { return "btrfs " + e.Op + " " + e.Path + ": " + e.Err.Error() }

// Unwrap returns the errno.
func (e *OpError) Unwrap() error { return e.Err }

func opErr(op, path string, err error) error {
	if err == nil {
		return nil
	}
	return &OpError{Op: op, Path: path, Err: err}
}

// CreateSubvolume creates the subvolume dir/name. When limitBytes is not
// zero and classic qgroups are enabled, the new subvolume's qgroup gets that
// referenced-bytes limit in the same transaction (qgroup inherit with
// limits), so the subvolume never exists without its limit. With simple
// quotas the kernel ignores inherited limits: use QgroupLimit afterwards.
// An inherited limit is enforced at once but reaches the quota tree (what
// Quota and the btrfs CLI read) only at the next commit (Sync).
func CreateSubvolume(dir, name string, limitBytes uint64) error {
	path := filepath.Join(dir, name)
	if limitBytes == 0 {
		if err := checkName(name, 4088); err != nil {
			return err
		}
		var args volArgs
		copy(args.name[:], name)
		return opErr("subvolume create", path, withDir(dir, func(fd int) error {
			return ioctl(fd, iocSubvolCreate, unsafe.Pointer(&args))
		}))
	}
	if err := checkName(name, 4040); err != nil {
		return err
	}
	inh := &qgroupInherit{flags: qgroupInheritSetLimits,
		lim: qgroupLimit{flags: qgroupLimitMaxRfer, maxRfer: limitBytes}}
	args := volArgsV2{flags: subvolQgroupInherit, size: uint64(unsafe.Sizeof(*inh)),
		inherit: uintptr(unsafe.Pointer(inh))}
	copy(args.name[:], name)
	err := withDir(dir, func(fd int) error {
		return ioctl(fd, iocSubvolCreateV2, unsafe.Pointer(&args))
	})
	runtime.KeepAlive(inh)
	return opErr("subvolume create", path, err)
}

// Snapshot creates dir/name as a snapshot of the subvolume src, read-only
// when readOnly is set.
func Snapshot(src, dir, name string, readOnly bool) error {
	path := filepath.Join(dir, name)
	if err := checkName(name, 4040); err != nil {
		return err
	}
	srcFd, err := openDir(src)
	if err != nil {
		return opErr("snapshot", path, err)
	}
	defer unix.Close(srcFd)
	args := volArgsV2{fd: int64(srcFd)}
	if readOnly {
		args.flags |= subvolRdonly
	}
	copy(args.name[:], name)
	return opErr("snapshot", path, withDir(dir, func(fd int) error {
		return ioctl(fd, iocSnapCreateV2, unsafe.Pointer(&args))
	}))
}

// DeleteSubvolume deletes the subvolume dir/name (and, being a subvolume,
// all its files). The space is freed in the background by the kernel.
func DeleteSubvolume(dir, name string) error {
	if err := checkName(name, 4088); err != nil {
		return err
	}
	var args volArgs
	copy(args.name[:], name)
	return opErr("subvolume delete", filepath.Join(dir, name), withDir(dir, func(fd int) error {
		return ioctl(fd, iocSnapDestroy, unsafe.Pointer(&args))
	}))
}

// SubvolumeID returns the id of the subvolume that holds path.
func SubvolumeID(path string) (uint64, error) {
	args := inoLookupArgs{objectid: firstFreeObjectID}
	err := withDir(path, func(fd int) error {
		return ioctl(fd, iocInoLookup, unsafe.Pointer(&args))
	})
	return args.treeid, opErr("subvolume id", path, err)
}

// ReadOnly reports whether the subvolume at path is read-only.
func ReadOnly(path string) (bool, error) {
	var flags uint64
	err := withDir(path, func(fd int) error {
		return ioctl(fd, iocSubvolGetFlags, unsafe.Pointer(&flags))
	})
	return flags&subvolRdonly != 0, opErr("subvolume flags", path, err)
}

// SetReadOnly sets or clears the read-only flag of the subvolume at path.
func SetReadOnly(path string, ro bool) error {
	return opErr("subvolume flags", path, withDir(path, func(fd int) error {
		var flags uint64
		if err := ioctl(fd, iocSubvolGetFlags, unsafe.Pointer(&flags)); err != nil {
			return err
		}
		if ro {
			flags |= subvolRdonly
		} else {
			flags &^= subvolRdonly
		}
		return ioctl(fd, iocSubvolSetFlags, unsafe.Pointer(&flags))
	}))
}

// Sync commits the current transaction of the filesystem at path.
func Sync(path string) error {
	return opErr("sync", path, withDir(path, func(fd int) error {
		return ioctl(fd, iocSync, nil)
	}))
}

// QuotaEnable enables quotas on the filesystem mounted at mnt: simple
// quotas (kernel 6.7+, owner-based accounting) when simple is set, classic
// qgroups otherwise. Enabling already enabled quotas is a no-op.
func QuotaEnable(mnt string, simple bool) error {
	args := quotaCtlArgs{cmd: quotaCtlEnable}
	if simple {
		args.cmd = quotaCtlEnableSimple
	}
	return opErr("quota enable", mnt, withDir(mnt, func(fd int) error {
		return ioctl(fd, iocQuotaCtl, unsafe.Pointer(&args))
	}))
}

// QuotaDisable disables quotas on the filesystem mounted at mnt.
func QuotaDisable(mnt string) error {
	args := quotaCtlArgs{cmd: quotaCtlDisable}
	return opErr("quota disable", mnt, withDir(mnt, func(fd int) error {
		return ioctl(fd, iocQuotaCtl, unsafe.Pointer(&args))
	}))
}

// QgroupCreate creates the qgroup id (level 0: a subvolume id).
func QgroupCreate(mnt string, id uint64) error {
	args := qgroupCreateArgs{create: 1, qgroupid: id}
	return opErr(fmt.Sprintf("qgroup create %s", QgroupString(id)), mnt, withDir(mnt, func(fd int) error {
		return ioctl(fd, iocQgroupCreate, unsafe.Pointer(&args))
	}))
}

// QgroupDestroy destroys the qgroup id. The kernel refuses (EBUSY) while
// the subvolume still exists or is not fully dropped yet.
func QgroupDestroy(mnt string, id uint64) error {
	args := qgroupCreateArgs{create: 0, qgroupid: id}
	return opErr(fmt.Sprintf("qgroup destroy %s", QgroupString(id)), mnt, withDir(mnt, func(fd int) error {
		return ioctl(fd, iocQgroupCreate, unsafe.Pointer(&args))
	}))
}

// QgroupLimit sets the referenced-bytes limit of qgroup id; 0 removes it.
func QgroupLimit(mnt string, id, maxRferBytes uint64) error {
	args := qgroupLimitArgs{qgroupid: id, lim: qgroupLimit{flags: qgroupLimitMaxRfer, maxRfer: maxRferBytes}}
	if maxRferBytes == 0 {
		args.lim.maxRfer = ^uint64(0) // the kernel's "clear this limit"
	}
	return opErr(fmt.Sprintf("qgroup limit %s", QgroupString(id)), mnt, withDir(mnt, func(fd int) error {
		return ioctl(fd, iocQgroupLimit, unsafe.Pointer(&args))
	}))
}

// FSInfo is the identity of a mounted btrfs filesystem.
type FSInfo struct {
	FSID       [16]byte
	NumDevices uint64
	MaxID      uint64
}

// Info returns the identity of the filesystem mounted at mnt.
func Info(mnt string) (FSInfo, error) {
	var args fsInfoArgs
	err := withDir(mnt, func(fd int) error {
		return ioctl(fd, iocFSInfo, unsafe.Pointer(&args))
	})
	return FSInfo{FSID: args.fsid, NumDevices: args.numDevices, MaxID: args.maxID}, opErr("fs info", mnt, err)
}

// Device is one device of a mounted btrfs filesystem.
type Device struct {
	ID         uint64
	Path       string
	TotalBytes uint64
	UsedBytes  uint64
}

// Devices lists the devices of the filesystem mounted at mnt.
func Devices(mnt string) ([]Device, error) {
	var out []Device
	err := withDir(mnt, func(fd int) error {
		var info fsInfoArgs
		if err := ioctl(fd, iocFSInfo, unsafe.Pointer(&info)); err != nil {
			return err
		}
		for id := uint64(1); id <= info.maxID; id++ {
			args := devInfoArgs{devid: id}
			if err := ioctl(fd, iocDevInfo, unsafe.Pointer(&args)); err != nil {
				if errors.Is(err, unix.ENODEV) {
					continue
				}
				return err
			}
			out = append(out, Device{ID: id, Path: cString(args.path[:]),
				TotalBytes: args.totalBytes, UsedBytes: args.bytesUsed})
		}
		return nil
	})
	return out, opErr("devices", mnt, err)
}

// Space is one block-group kind of a filesystem (BTRFS_IOC_SPACE_INFO).
type Space struct {
	// Flags are the block-group flags: data/system/metadata and profile.
	Flags      uint64
	TotalBytes uint64
	UsedBytes  uint64
}

// Block-group flags of Space.Flags.
const (
	BlockGroupData     = 1 << 0
	BlockGroupSystem   = 1 << 1
	BlockGroupMetadata = 1 << 2
	BlockGroupRaid0    = 1 << 3
	BlockGroupRaid1    = 1 << 4
	BlockGroupDup      = 1 << 5
	BlockGroupRaid10   = 1 << 6
)

// SpaceInfo returns the allocation of the filesystem mounted at mnt.
func SpaceInfo(mnt string) ([]Space, error) {
	var out []Space
	err := withDir(mnt, func(fd int) error {
		hdr := [2]uint64{}
		if err := ioctl(fd, iocSpaceInfo, unsafe.Pointer(&hdr)); err != nil {
			return err
		}
		n := hdr[1]
		buf := make([]uint64, 2+3*n)
		buf[0] = n
		if err := ioctl(fd, iocSpaceInfo, unsafe.Pointer(&buf[0])); err != nil {
			return err
		}
		for i := uint64(0); i < buf[1] && i < n; i++ {
			s := buf[2+3*i:]
			out = append(out, Space{Flags: s[0], TotalBytes: s[1], UsedBytes: s[2]})
		}
		return nil
	})
	return out, opErr("space info", mnt, err)
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
