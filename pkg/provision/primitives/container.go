package primitives

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/zos-go/zos/internal/atomicfile"
	"github.com/zos-go/zos/internal/revert"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/container/logger"
	"github.com/zos-go/zos/pkg/container/stats"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/provision"
)

// Container provisions containers: the flist mounted with a writable layer,
// the container's network namespace joined to the owner's network, its
// volumes mounted, then the container started.
type Container struct {
	Networker pkg.Networker
	Flister   pkg.Flister
	Storage   pkg.VolumeAllocater
	Runtime   pkg.ContainerModule
	// DefaultHub is the flist storage used when a container names none.
	DefaultHub string
	// StateDir, when set, keeps a digest of the configuration each
	// container runs with, so that an update (a reservation replacing an
	// earlier one) recreates the container with the new configuration while
	// a mere re-ensure (agent restart) leaves a running container alone.
	// Without it, an update of a running container changes nothing.
	StateDir string
}

var _ provision.Provisioner = Container{}

// ContainerNS is the containerd namespace of a user's containers, as the
// original ("ns<user id>").
func ContainerNS(userID uint64) string { return "ns" + strconv.FormatUint(userID, 10) }

// VolumeName resolves a container mount's volume id: "-1" is relative to
// the container's own reservation.
func VolumeName(r *gridtypes.Reservation, volumeID string) string {
	if strings.HasPrefix(volumeID, "-") {
		return strconv.FormatUint(r.ID, 10) + volumeID
	}
	return volumeID
}

// ErrForeignVolume: a container mounts a volume of another user.
var ErrForeignVolume = errors.New("volume belongs to another user")

// checkVolume makes sure the volume workload is deployed here and owned by
// the container's owner; one still being deployed, or not arrived yet, is a
// dependency to wait for. It returns the volume's working name.
func checkVolume(d *provision.Deployment, name string) (string, error) {
	id, err := gridtypes.ParseGWID(name)
	if err != nil {
		return "", fmt.Errorf("volume_id %q: not a workload id", name)
	}
	rec, err := d.Store.Get(id)
	if errors.Is(err, provision.ErrNotFound) {
		return "", fmt.Errorf("volume %s: not on this node yet: %w", name, provision.ErrDependency)
	}
	if err != nil {
		return "", fmt.Errorf("volume %s: %w: %w", name, provision.ErrTemporary, err)
	}
	switch {
	case rec.Reservation.Type != gridtypes.TypeVolume:
		return "", fmt.Errorf("volume_id %q is a %s workload", name, rec.Reservation.Type)
	case rec.Reservation.UserID != d.Reservation.UserID:
		return "", fmt.Errorf("volume %s: %w", name, ErrForeignVolume)
	case rec.ReplacedBy != 0:
		return checkVolume(d, strconv.FormatUint(rec.ReplacedBy, 10)+"-1")
	case rec.State == provision.StateDeploying:
		return "", fmt.Errorf("volume %s: still being created: %w", name, provision.ErrDependency)
	case rec.State != provision.StateDeployed:
		return "", fmt.Errorf("volume %s is %s", name, rec.State)
	}
	return rec.Name, nil
}

// Provision implements provision.Provisioner.
func (c Container) Provision(_ context.Context, d *provision.Deployment) (any, error) {
	w, ok := d.Workload.(*gridtypes.Container)
	if !ok {
		return nil, fmt.Errorf("container %s: workload is a %T", d.Name, d.Workload)
	}
	if len(w.NetworkConnection) == 0 {
		return nil, fmt.Errorf("network_connection: a container joins one network")
	}
	conn := w.NetworkConnection[0]
	netID := pkg.NetID(gridtypes.NetworkID(d.Reservation.UserID, conn.NetworkID))
	if _, err := c.Networker.GetSubnet(netID); err != nil {
		return nil, fmt.Errorf("network %q is not on this node yet: %w", conn.NetworkID, provision.ErrDependency)
	}

	var mounts []pkg.MountInfo
	for i, m := range w.Volumes {
		vol, err := checkVolume(d, VolumeName(d.Reservation, m.VolumeID))
		if err != nil {
			return nil, fmt.Errorf("volumes[%d]: %w", i, err)
		}
		fs, err := c.Storage.Path(vol)
		if err != nil {
			return nil, fmt.Errorf("volumes[%d] %s: %w: %w", i, vol, provision.ErrDependency, err)
		}
		mounts = append(mounts, pkg.MountInfo{Source: fs.Path, Target: mountTarget(m.Mountpoint)})
	}

	var undo revert.Stack
	defer undo.Unwind()

	member, err := c.Networker.Join(netID, d.Name, pkg.ContainerNetworkConfig{
		IPs: []string{conn.IPAddress}, PublicIP6: conn.PublicIP6, YggdrasilIP: conn.YggdrasilIP,
	})
	if err != nil {
		return nil, fmt.Errorf("join network %q: %w", conn.NetworkID, err)
	}
	undo.Push(func() { _ = c.Networker.Leave(netID, d.Name) })

	opts := pkg.MountOptions{Limit: w.Capacity.DiskSize, Type: deviceType(w.Capacity.DiskType)}
	if opts.Limit == 0 {
		opts.Limit = gridtypes.DefaultContainerDiskMiB
	}
	hub := w.HubURL
	if hub == "" {
		hub = c.DefaultHub
	}
	root, err := c.Flister.NamedMount(d.Name, w.Flist, hub, opts)
	if err != nil {
		return nil, fmt.Errorf("flist %s: %w", w.Flist, err)
	}
	undo.Push(func() { _ = c.Flister.NamedUmount(d.Name) })

	ns := ContainerNS(d.Reservation.UserID)
	digest := specDigest(w, hub)
	_, ierr := c.Runtime.Inspect(ns, pkg.ContainerID(d.Name))
	if ierr == nil && c.StateDir != "" {
		if prev, err := os.ReadFile(c.digestPath(d.Name)); err == nil && string(prev) != digest {
			// An update: recreate with the new configuration, on a fresh
			// mount of the (possibly new) flist.
			if err := c.Runtime.Delete(ns, pkg.ContainerID(d.Name)); err != nil && !notFound(err) {
				return nil, fmt.Errorf("container %s: replace: %w", d.Name, err)
			}
			if err := c.Flister.NamedUmount(d.Name); err != nil && !notFound(err) {
				return nil, fmt.Errorf("container %s: replace: %w", d.Name, err)
			}
			if root, err = c.Flister.NamedMount(d.Name, w.Flist, hub, opts); err != nil {
				return nil, fmt.Errorf("flist %s: %w", w.Flist, err)
			}
			ierr = os.ErrNotExist
		}
	}
	if ierr != nil {
		spec := pkg.Container{
			Name:        d.Name,
			RootFS:      root,
			Env:         containerEnv(w),
			Network:     pkg.NetworkInfo{Namespace: member.Namespace},
			Mounts:      mounts,
			Entrypoint:  w.Entrypoint,
			Interactive: w.Interactive,
			CPU:         uint(w.Capacity.CPU),
			Memory:      w.Capacity.Memory * gridtypes.MiB,
			Logs:        containerLogs(w),
			Stats:       containerStats(w),
		}
		if _, err := c.Runtime.Run(ns, spec); err != nil {
			return nil, fmt.Errorf("container %s: %w", d.Name, err)
		}
		undo.Push(func() { _ = c.Runtime.Delete(ns, pkg.ContainerID(d.Name)) })
	}
	if c.StateDir != "" {
		if err := os.MkdirAll(c.StateDir, 0o700); err != nil {
			return nil, err
		}
		if err := atomicfile.WriteFile(c.digestPath(d.Name), []byte(digest), 0o600); err != nil {
			return nil, err
		}
	}
	undo.Done()
	res := gridtypes.ContainerResult{ID: d.Name}
	if member.IPv4 != nil {
		res.IPv4 = member.IPv4.String()
	}
	if member.IPv6 != nil {
		res.IPv6 = member.IPv6.String()
	}
	if member.YggdrasilIP != nil {
		res.Yggdrasil = member.YggdrasilIP.String()
	}
	return res, nil
}

func (c Container) digestPath(name string) string {
	return filepath.Join(c.StateDir, name+".spec")
}

// specDigest identifies what a container runs with.
func specDigest(w *gridtypes.Container, hub string) string {
	b, _ := json.Marshal(struct {
		W   *gridtypes.Container
		Hub string
	}{w, hub})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Decommission implements provision.Provisioner.
func (c Container) Decommission(_ context.Context, d *provision.Deployment) error {
	w, err := d.Reservation.Workload()
	if err != nil {
		return err
	}
	cw, ok := w.(*gridtypes.Container)
	if !ok {
		return fmt.Errorf("container %s: workload is a %T", d.Name, w)
	}
	var errs []error
	if err := c.Runtime.Delete(ContainerNS(d.Reservation.UserID), pkg.ContainerID(d.Name)); err != nil && !notFound(err) {
		errs = append(errs, fmt.Errorf("container %s: %w", d.Name, err))
	}
	if c.StateDir != "" {
		if err := os.Remove(c.digestPath(d.Name)); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	if err := c.Flister.NamedUmount(d.Name); err != nil && !notFound(err) {
		errs = append(errs, fmt.Errorf("flist of %s: %w", d.Name, err))
	}
	if len(cw.NetworkConnection) > 0 {
		netID := pkg.NetID(gridtypes.NetworkID(d.Reservation.UserID, cw.NetworkConnection[0].NetworkID))
		if err := c.Networker.Leave(netID, d.Name); err != nil && !notFound(err) {
			errs = append(errs, fmt.Errorf("leave network of %s: %w", d.Name, err))
		}
	}
	return errors.Join(errs...)
}

func containerEnv(w *gridtypes.Container) []string {
	var env []string
	for k, v := range w.Environment {
		env = append(env, k+"="+v)
	}
	for k, v := range w.SecretEnvironment { // decrypted by the engine
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	return env
}

func containerLogs(w *gridtypes.Container) []logger.Logs {
	var out []logger.Logs
	for _, l := range w.Logs {
		stdout, stderr := l.Data.Stdout, l.Data.Stderr
		if l.Data.SecretStdout != "" { // decrypted by the engine
			stdout = l.Data.SecretStdout
		}
		if l.Data.SecretStderr != "" {
			stderr = l.Data.SecretStderr
		}
		out = append(out, logger.Logs{Type: l.Type, Data: logger.LogsRedis{Stdout: stdout, Stderr: stderr}})
	}
	return out
}

func containerStats(w *gridtypes.Container) []stats.Stats {
	var out []stats.Stats
	for _, s := range w.Stats {
		out = append(out, stats.Stats{Type: s.Type, Data: stats.Redis{Endpoint: s.Endpoint}})
	}
	return out
}

// mountTarget cleans a mountpoint inside the container.
func mountTarget(p string) string { return filepath.Clean("/" + p) }
