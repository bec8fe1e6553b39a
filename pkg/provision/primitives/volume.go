package primitives

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/provision"
)

// Volume provisions volumes: a btrfs subvolume with a quota, named by the
// workload's working name.
type Volume struct {
	Storage pkg.VolumeAllocater
}

var _ provision.Provisioner = Volume{}

// Provision implements provision.Provisioner. Growing a volume through an
// update re-applies the quota with the new size.
func (v Volume) Provision(_ context.Context, d *provision.Deployment) (any, error) {
	w, ok := d.Workload.(*gridtypes.Volume)
	if !ok {
		return nil, fmt.Errorf("volume %s: workload is a %T", d.Name, d.Workload)
	}
	_, err := v.Storage.CreateFilesystem(d.Name, w.Size*gridtypes.GiB, deviceType(w.Type))
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
