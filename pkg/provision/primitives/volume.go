package primitives

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/zos-go/zos/internal/atomicfile"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/provision"
	"github.com/zos-go/zos/pkg/storage"
)

// Volume provisions volumes: a btrfs subvolume with a quota, named by the
// workload's working name. An update changes the size of the volume in
// place (data kept): growing needs free space on its pool, shrinking below
// what it holds is refused; its disk type cannot change.
//
// Snapshots: the volume keeps the read-only snapshots its workload lists
// (missing ones are taken, unlisted ones dropped), and an update with
// Restore replaces the content with a snapshot's, once per reservation and
// only while no container mounts the volume (the update fails otherwise,
// changing nothing).
type Volume struct {
	Storage VolumeStorage
	// StateDir, when set, remembers which reservation last restored each
	// volume, so that a restore is not done again when the workload is
	// ensured after a restart. Without it a restore is refused.
	StateDir string
}

// VolumeStorage is what volumes need of the storage module.
type VolumeStorage interface {
	pkg.VolumeAllocater
	storage.VolumeResizer
	storage.Snapshotter
}

var _ provision.Provisioner = Volume{}

// Provision implements provision.Provisioner. Growing a volume through an
// update re-applies the quota with the new size.
func (v Volume) Provision(ctx context.Context, d *provision.Deployment) (any, error) {
	w, ok := d.Workload.(*gridtypes.Volume)
	if !ok {
		return nil, fmt.Errorf("volume %s: workload is a %T", d.Name, d.Workload)
	}
	restore := w.Restore != "" && !v.restored(d)
	if restore {
		// Check before changing anything: a refused restore leaves the
		// volume as it was.
		if err := v.canRestore(ctx, d, w.Restore); err != nil {
			return nil, err
		}
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
	if restore {
		if err := v.restore(ctx, d, w.Restore); err != nil {
			return nil, err
		}
	}
	snaps, err := v.syncSnapshots(ctx, d.Name, w.Snapshots)
	if err != nil {
		return nil, err
	}
	return gridtypes.VolumeResult{VolumeID: d.Name, Snapshots: snaps}, nil
}

// syncSnapshots takes the listed snapshots the volume lacks and drops the
// ones not listed; it returns the snapshots the volume has then.
func (v Volume) syncSnapshots(ctx context.Context, name string, want []string) ([]string, error) {
	have, err := v.Storage.Snapshots(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("volume %s: snapshots: %w: %w", name, provision.ErrTemporary, err)
	}
	had := map[string]bool{}
	for _, s := range have {
		had[s.Name] = true
		if !slices.Contains(want, s.Name) {
			if err := v.Storage.DeleteSnapshot(ctx, name, s.Name); err != nil {
				return nil, fmt.Errorf("snapshots: drop %q of %s: %w", s.Name, name, err)
			}
		}
	}
	for _, s := range want {
		if !had[s] {
			if _, err := v.Storage.SnapshotVolume(ctx, name, s); err != nil {
				return nil, fmt.Errorf("snapshots: take %q of %s: %w", s, name, err)
			}
		}
	}
	return slices.Sorted(slices.Values(want)), nil
}

func (v Volume) marker(name string) string {
	return filepath.Join(v.StateDir, name+".restored")
}

// restored reports whether this reservation restored its volume already.
func (v Volume) restored(d *provision.Deployment) bool {
	if v.StateDir == "" {
		return false
	}
	b, err := os.ReadFile(v.marker(d.Name))
	return err == nil && string(b) == strconv.FormatUint(d.Reservation.ID, 10)
}

// canRestore checks that volume d.Name can take snapshot's content now: the
// node keeps restore state, the snapshot exists, no container mounts it.
func (v Volume) canRestore(ctx context.Context, d *provision.Deployment, snapshot string) error {
	if v.StateDir == "" {
		return fmt.Errorf("restore: this node cannot restore volumes")
	}
	have, err := v.Storage.Snapshots(ctx, d.Name)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("restore %s: %w: %w", d.Name, provision.ErrTemporary, err)
	}
	if !slices.ContainsFunc(have, func(s storage.Snapshot) bool { return s.Name == snapshot }) {
		return fmt.Errorf("restore: volume %s has no snapshot %q", d.Name, snapshot)
	}
	users, err := volumeUsers(d.Store, d.Name)
	if err != nil {
		return fmt.Errorf("restore %s: %w: %w", d.Name, provision.ErrTemporary, err)
	}
	if len(users) > 0 {
		return fmt.Errorf("restore: volume %s is mounted by container %s; delete it first, or restore while no container uses the volume", d.Name, strings.Join(users, ", "))
	}
	return nil
}

// restore replaces the content of volume d.Name with snapshot's and
// remembers that this reservation did it.
func (v Volume) restore(ctx context.Context, d *provision.Deployment, snapshot string) error {
	if err := v.Storage.RestoreSnapshot(ctx, d.Name, snapshot); err != nil {
		return fmt.Errorf("restore %s: %w", d.Name, err)
	}
	if err := os.MkdirAll(v.StateDir, 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(v.marker(d.Name), []byte(strconv.FormatUint(d.Reservation.ID, 10)), 0o600)
}

// volumeUsers lists the live containers that mount the volume whose working
// name is name.
func volumeUsers(st provision.Store, name string) ([]string, error) {
	recs, err := st.List()
	if err != nil {
		return nil, err
	}
	var users []string
	for _, rec := range recs {
		if rec.Reservation.Type != gridtypes.TypeContainer || !rec.State.Live() || rec.ReplacedBy != 0 {
			continue
		}
		w, err := rec.Reservation.Workload()
		if err != nil {
			continue
		}
		for _, m := range w.(*gridtypes.Container).Volumes {
			if volumeName(st, m.VolumeID) == name {
				users = append(users, rec.Name)
				break
			}
		}
	}
	return users, nil
}

// volumeName resolves a volume's workload id (following updates) to its
// working name; "" when unknown.
func volumeName(st provision.Store, gwid string) string {
	for range 64 { // an update chain is short; never loop forever
		id, err := gridtypes.ParseGWID(gwid)
		if err != nil {
			return ""
		}
		rec, err := st.Get(id)
		if err != nil {
			return ""
		}
		if rec.ReplacedBy == 0 {
			return rec.Name
		}
		gwid = strconv.FormatUint(rec.ReplacedBy, 10)
	}
	return ""
}

// Decommission implements provision.Provisioner.
func (v Volume) Decommission(_ context.Context, d *provision.Deployment) error {
	if err := v.Storage.ReleaseFilesystem(d.Name); err != nil && !notFound(err) {
		return fmt.Errorf("volume %s: %w", d.Name, err)
	}
	if v.StateDir != "" {
		if err := os.Remove(v.marker(d.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
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
