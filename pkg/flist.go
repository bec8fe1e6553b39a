package pkg

// MountOptions configures an flist mount.
type MountOptions struct {
	// ReadOnly mounts without a read-write layer.
	ReadOnly bool
	// Limit size of read-write layer in MiB
	Limit uint64
	// Type of disk to use for the read-write layer
	Type DeviceType
}

var (
	// DefaultMountOptions has sane values for mount: read-write, a 256 MiB
	// layer on SSD.
	DefaultMountOptions = MountOptions{
		ReadOnly: false,
		Limit:    256,
		Type:     SSDDevice,
	}

	// ReadOnlyMountOptions shortcut for readonly mount options
	ReadOnlyMountOptions = MountOptions{
		ReadOnly: true,
	}
)

// Flister is the interface for the flist module.
type Flister interface {
	// Mount mounts the flist at url using the 0-db at storage, with opts,
	// and returns the mount path.
	Mount(url string, storage string, opts MountOptions) (path string, err error)

	// NamedMount is Mount under a name chosen by the caller, who ensures it
	// is unique; NamedUmount unmounts it by that name.
	NamedMount(name string, url string, storage string, ots MountOptions) (path string, err error)

	// Umount unmounts the flist mounted at path.
	Umount(path string) error

	// NamedUmount unmounts the flist mounted with NamedMount under that name.
	NamedUmount(path string) error

	// HashFromRootPath returns the flist hash of a mount made by NamedMount.
	HashFromRootPath(name string) (string, error)

	// FlistHash returns the md5 of the flist at url, as the hub reports it.
	FlistHash(url string) (string, error)
}
