package primitives

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/provision"
	"github.com/zos-go/zos/pkg/storage"
)

// Volume provisions volumes: a btrfs subvolume with a quota, named by the
// workload's working name. An update changes the size of the volume in
// place (data kept): growing needs free space on its pool, shrinking below
// what it holds is refused; its disk type cannot change.
type Volume struct {
	Storage VolumeStorage
}

// VolumeStorage is what volumes need of the storage module.
type VolumeStorage interface {
	pkg.VolumeAllocater
	storage.VolumeResizer
}

var _ provision.Provisioner = Volume{}

// Provision implements provision.Provisioner. Growing a volume through an
// update re-applies the quota with the new size.
func (v Volume) Provision(ctx context.Context, d *provision.Deployment) (any, error) {
	w, ok := d.Workload.(*gridtypes.Volume)
	if !ok {
		return nil, fmt.Errorf("volume %s: workload is a %T", d.Name, d.Workload)
	}
	size := w.Size * gridtypes.GiB
	_, err := v.Storage.CreateFilesystem(d.Name, size, deviceType(w.Type))
	if errors.Is(err, storage.ErrExists) {
		fs, perr := v.Storage.Path(d.Name)
		if perr != nil {
			return nil, fmt.Errorf("volume %s: %w: %w", d.Name, provision.ErrTemporary, perr)
		}
		if fs.DiskType != deviceType(w.Type) {
			return nil, fmt.Errorf("type: volume %s is on %s, it cannot move to %s", d.Name, fs.DiskType, deviceType(w.Type))
		}
		_, err = v.Storage.ResizeFilesystem(ctx, d.Name, size)
		if errors.Is(err, storage.ErrInUse) {
			return nil, fmt.Errorf("size: volume %s holds more than %d GiB: %w", d.Name, w.Size, err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", d.Name, err)
	}
	return gridtypes.VolumeResult{VolumeID: d.Name}, nil
}

// Decommission implements provision.Provisioner.
func (v Volume) Decommission(_ context.Context, d *provision.Deployment) error {
	if err := v.Storage.ReleaseFilesystem(d.Name); err != nil && !notFound(err) {
		return fmt.Errorf("volume %s: %w", d.Name, err)
	}
	return nil
}

func deviceType(t gridtypes.DiskType) pkg.DeviceType {
	if t == gridtypes.DiskHDD {
		return pkg.HDDDevice
	}
	return pkg.SSDDevice
}

// notFound matches the modules' "absent" errors: modules in this
// repository wrap os.ErrNotExist for a missing object.
func notFound(err error) bool {
	return errors.Is(err, os.ErrNotExist)
}
