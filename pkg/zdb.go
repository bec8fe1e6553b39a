package pkg

// ZDBMode is the mode a 0-db namespace runs in (ZDBModeUser or ZDBModeSeq).
type ZDBMode string

// Enumeration of the modes 0-db can operate in. As in the seed they are
// untyped string constants, assignable to ZDBMode.
const (
	ZDBModeUser = "user"
	ZDBModeSeq  = "seq"
)

// ZDBNamespace is a 0-db namespace.
type ZDBNamespace struct {
	ID       string
	DiskType DeviceType
	Size     uint64
	Mode     ZDBMode
	Password string
	Port     int // Listen port of the 0-db owning the namespace
}

// Allocation is returned by ZDBAllocater: the volume (subvolume name) and its
// path that hold the namespace.
type Allocation struct {
	VolumeID   string
	VolumePath string
}

// ZDBAllocater is the zbus interface of the storage module responsible for
// 0-db allocation.
type ZDBAllocater interface {
	// Allocate makes sure a 0-db volume of the given disk type and mode has
	// room for size bytes for namespace, and returns it. If the namespace
	// is already allocated, that allocation is returned, so there is no
	// need to call Find first.
	Allocate(namespace string, diskType DeviceType, size uint64, mode ZDBMode) (Allocation, error)

	// Find returns the current allocation of namespace, or an error if
	// there is none.
	Find(namespace string) (allocation Allocation, err error)
}
