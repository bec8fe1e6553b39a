package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/internal/atomicfile"
	"github.com/zos-go/zos/internal/btrfs"
	"github.com/zos-go/zos/pkg"
)

// pool is a mounted btrfs filesystem of ours.
type pool struct {
	label     string
	fsid      [16]byte
	mnt       string
	devices   []string // device paths
	typ       pkg.DeviceType
	profile   pkg.RaidProfile
	sizeBytes uint64 // usable: device sizes / copies
	simple    bool   // simple quotas
	mounted   bool   // mounted by this module (vs found mounted)
	vols      map[string]*volume
	// reserved is the sum of volume limits and 0-db namespace sizes; vdisk
	// files are added on demand (vdiskBytes).
	reserved uint64
	broken   error // set once the pool became unusable
	// lost: broken because its mount disappeared; each scan tries to
	// mount it again.
	lost bool
}

// volume is a top-level subvolume of a pool.
type volume struct {
	id    uint64
	limit uint64     // quota limit; for zdb volumes, 0
	zdb   *zdbVolume // for zdb volumes
}

// reservation is what a volume reserves on its pool.
func (v *volume) reservation() uint64 {
	if v.zdb != nil {
		return v.zdb.reserved()
	}
	return v.limit
}

// poolMeta is the small file <mnt>/.zos-pool, written when the pool is
// made, so that its type survives a move to another slot or machine.
type poolMeta struct {
	Version int             `json:"version"`
	Type    pkg.DeviceType  `json:"type"`
	Profile pkg.RaidProfile `json:"profile"`
}

const poolMetaFile = ".zos-pool"

// Hidden names at the top of a pool.
const (
	snapshotsDir  = ".snapshots"
	newPrefix     = ".new-"     // subvolume being created (simple quotas)
	restorePrefix = ".restore-" // subvolume being restored
)

const labelMarker = "zos-"

// newLabel returns a fresh pool label: <prefix>zos-<16 hex>.
func (m *Module) newLabel() string {
	return m.cfg.LabelPrefix + labelMarker + randHex(8)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ownLabel reports whether a label is one of this module's pools.
func (m *Module) ownLabel(label string) (string, bool) {
	rest, ok := strings.CutPrefix(label, m.cfg.LabelPrefix+labelMarker)
	if !ok || len(rest) != 16 {
		return "", false
	}
	if _, err := hex.DecodeString(rest); err != nil || strings.ToLower(rest) != rest {
		return "", false
	}
	return rest, true
}

// mountPoint is where a pool is mounted.
func (m *Module) mountPoint(label string) string { return filepath.Join(m.mntRoot, label) }

// mountPool mounts a pool's devices at its mount point, unless the same
// filesystem is already mounted there. It returns whether it mounted.
func (m *Module) mountPool(label string, fsid [16]byte, devices []string, mounts []mountEntry) (bool, error) {
	mnt := m.mountPoint(label)
	for _, me := range mounts {
		if me.target == mnt {
			info, err := btrfs.Info(mnt)
			if err == nil && info.FSID == fsid {
				return false, nil
			}
			return false, fmt.Errorf("pool %s: %s holds another filesystem", label, mnt)
		}
	}
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return false, fmt.Errorf("pool %s: %w", label, err)
	}
	opts := make([]string, 0, len(devices))
	for _, d := range devices {
		opts = append(opts, "device="+d)
	}
	if err := unix.Mount(devices[0], mnt, "btrfs", 0, strings.Join(opts, ",")); err != nil {
		return false, fmt.Errorf("pool %s: mount %s at %s: %w", label, devices[0], mnt, err)
	}
	return true, nil
}

// unmount detaches a mount point; not mounted is fine.
func unmount(target string) error {
	err := unix.Unmount(target, 0)
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(target, unix.MNT_DETACH)
	}
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	return nil
}

// openPool loads a mounted pool: quotas on, metadata, size, volumes,
// reservations; it removes leftovers of interrupted operations and stale
// qgroups. typ is used when the pool has no metadata yet.
func (m *Module) openPool(ctx context.Context, label string, devices []string, typ pkg.DeviceType, profile pkg.RaidProfile) (*pool, error) {
	mnt := m.mountPoint(label)
	p := &pool{label: label, mnt: mnt, devices: devices, typ: typ, profile: profile, vols: map[string]*volume{}}
	info, err := btrfs.Info(mnt)
	if err != nil {
		return nil, fmt.Errorf("pool %s: %w", label, err)
	}
	p.fsid = info.FSID
	if err := m.ensureQuota(mnt); err != nil {
		return nil, fmt.Errorf("pool %s: %w", label, err)
	}
	// commit, so that limits inherited by recent creates are in the tree
	if err := btrfs.Sync(mnt); err != nil {
		return nil, fmt.Errorf("pool %s: %w", label, err)
	}
	st, groups, err := btrfs.Quota(mnt)
	if err != nil {
		return nil, fmt.Errorf("pool %s: %w", label, err)
	}
	p.simple = st.Simple
	if err := m.loadMeta(p); err != nil {
		return nil, err
	}
	if p.sizeBytes, err = poolSize(mnt, p.profile); err != nil {
		return nil, fmt.Errorf("pool %s: %w", label, err)
	}
	subs, err := btrfs.ListSubvolumes(mnt)
	if err != nil {
		return nil, fmt.Errorf("pool %s: %w", label, err)
	}
	live := map[uint64]bool{btrfs.TopLevelID: true}
	for _, s := range subs {
		live[s.ID] = true
		if !s.TopLevel() {
			continue
		}
		if strings.HasPrefix(s.Name, newPrefix) || strings.HasPrefix(s.Name, restorePrefix) {
			// an interrupted create or restore: finish by removing it
			m.log.WarnContext(ctx, "removing leftover subvolume", "pool", label, "subvolume", s.Name)
			if err := btrfs.DeleteSubvolume(mnt, s.Name); err != nil {
				return nil, fmt.Errorf("pool %s: %w", label, err)
			}
			delete(live, s.ID)
			continue
		}
		if strings.HasPrefix(s.Name, ".") {
			continue
		}
		v := &volume{id: s.ID}
		if g := groups[s.ID]; g != nil {
			v.limit = g.MaxReferencedBytes
		}
		if strings.HasPrefix(s.Name, ZDBPrefix) {
			if v.zdb, err = loadZDBVolume(filepath.Join(mnt, s.Name)); err != nil {
				return nil, fmt.Errorf("pool %s: %w", label, err)
			}
			v.limit = 0
		}
		p.vols[s.Name] = v
		p.reserved += v.reservation()
	}
	for id := range groups {
		if id>>48 == 0 && !live[id] {
			// a qgroup whose subvolume is gone (the kernel refuses while
			// it is still being dropped; a later scan retries)
			if err := btrfs.QgroupDestroy(mnt, id); err == nil {
				m.log.InfoContext(ctx, "stale qgroup removed", "pool", label, "qgroup", btrfs.QgroupString(id))
			}
		}
	}
	return p, nil
}

// ensureQuota enables quotas on a pool that has none: simple quotas when
// the kernel has them (QuotaAuto), classic qgroups otherwise.
func (m *Module) ensureQuota(mnt string) error {
	st, _, err := btrfs.Quota(mnt)
	if err != nil {
		return err
	}
	if st.Enabled {
		return nil
	}
	switch m.cfg.Quota {
	case QuotaFull:
		return btrfs.QuotaEnable(mnt, false)
	case QuotaSimple:
		return btrfs.QuotaEnable(mnt, true)
	}
	if err := btrfs.QuotaEnable(mnt, true); err == nil {
		return nil
	}
	return btrfs.QuotaEnable(mnt, false)
}

// loadMeta reads the pool's metadata file, writing it when missing.
func (m *Module) loadMeta(p *pool) error {
	path := filepath.Join(p.mnt, poolMetaFile)
	b, err := os.ReadFile(path)
	if err == nil {
		var meta poolMeta
		if err := json.Unmarshal(b, &meta); err == nil && ValidateType(meta.Type) == nil {
			p.typ = meta.Type
			if meta.Profile != "" {
				p.profile = meta.Profile
			}
			return nil
		}
		m.log.Warn("rewriting bad pool metadata", "pool", p.label)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("pool %s: %w", p.label, err)
	}
	if p.profile == "" {
		p.profile = pkg.Single
	}
	b, _ = json.Marshal(poolMeta{Version: 1, Type: p.typ, Profile: p.profile})
	if err := atomicfile.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("pool %s: %w", p.label, err)
	}
	return nil
}

// poolSize is the usable size: the sum of device sizes divided by the
// number of copies of the data profile on disk (the profile from the pool
// metadata when the data block groups say nothing).
func poolSize(mnt string, profile pkg.RaidProfile) (uint64, error) {
	devs, err := btrfs.Devices(mnt)
	if err != nil {
		return 0, err
	}
	var sum uint64
	for _, d := range devs {
		sum += d.TotalBytes
	}
	spaces, err := btrfs.SpaceInfo(mnt)
	if err != nil {
		return 0, err
	}
	for _, s := range spaces {
		if s.Flags&btrfs.BlockGroupData != 0 {
			switch {
			case s.Flags&(btrfs.BlockGroupRaid1|btrfs.BlockGroupRaid10|btrfs.BlockGroupDup) != 0:
				profile = pkg.Raid1
			case s.Flags&btrfs.BlockGroupRaid0 != 0:
				profile = pkg.Raid0
			}
		}
	}
	return sum / profileDivisor(profile), nil
}

// vdiskBytes is the sum of the apparent sizes of the pool's vdisk files.
func (p *pool) vdiskBytes() uint64 {
	if _, ok := p.vols[VDisksVolume]; !ok {
		return 0
	}
	entries, err := os.ReadDir(filepath.Join(p.mnt, VDisksVolume))
	if err != nil {
		return 0
	}
	var sum uint64
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			sum += uint64(info.Size())
		}
	}
	return sum
}

// free is what is left of the pool for new reservations.
func (p *pool) free() uint64 {
	used := p.reserved + p.vdiskBytes()
	if used >= p.sizeBytes {
		return 0
	}
	return p.sizeBytes - used
}
