package storagetest

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/shirou/gopsutil/v4/disk"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/storage"
)

// FakePool describes one pool of a Fake.
type FakePool struct {
	Label     string
	Type      pkg.DeviceType
	SizeBytes uint64
}

// Fake is an in-memory storage.Storage for unit tests of other packages.
// Volumes, the cache, 0-db volumes, vdisk areas and snapshots are real
// directories under the directory given to NewFake, so callers can write
// into them; quotas are accounted (reservations never exceed a pool) but
// not enforced on writes. It is safe for concurrent use.
type Fake struct {
	dir string
	// MonitorInterval is the period of Monitor (default 10 ms).
	MonitorInterval time.Duration

	mu          sync.Mutex
	pools       []*fakePool            // guarded by mu
	brokenDevs  []pkg.BrokenDevice     // guarded by mu
	brokenPools []pkg.BrokenPool       // guarded by mu
	snaps       map[string][]string    // guarded by mu; volume → snapshot names, oldest first
	modes       map[string]pkg.ZDBMode // guarded by mu; zdb volume → mode
	nextID      int                    // guarded by mu
}

type fakePool struct {
	FakePool
	vols map[string]*fakeVol // by name
}

type fakeVol struct {
	id   int
	size uint64 // reserved bytes (limit, or sum of namespaces for zdb)
	ns   map[string]uint64
}

var _ storage.Storage = (*Fake)(nil)

// NewFake returns a Fake under dir with one SSD and one HDD pool of
// capacityBytes each, and a cache volume of 1 MiB on the SSD pool.
func NewFake(dir string, capacityBytes uint64) *Fake {
	return NewFakePools(dir,
		FakePool{Label: "fake-ssd", Type: pkg.SSDDevice, SizeBytes: capacityBytes},
		FakePool{Label: "fake-hdd", Type: pkg.HDDDevice, SizeBytes: capacityBytes},
	)
}

// NewFakePools returns a Fake under dir with the given pools; the cache
// volume (1 MiB) goes to the first pool, when there is one.
func NewFakePools(dir string, pools ...FakePool) *Fake {
	f := &Fake{dir: dir, MonitorInterval: 10 * time.Millisecond,
		snaps: map[string][]string{}, modes: map[string]pkg.ZDBMode{}, nextID: 256}
	for _, p := range pools {
		f.pools = append(f.pools, &fakePool{FakePool: p, vols: map[string]*fakeVol{}})
	}
	if len(f.pools) > 0 {
		p := f.pools[0]
		if err := os.MkdirAll(f.volPath(p, storage.CacheVolume), 0o755); err == nil {
			p.vols[storage.CacheVolume] = &fakeVol{id: f.newID(), size: 1 << 20}
		}
	}
	return f
}

// AddBrokenDevice makes BrokenDevices report a device.
func (f *Fake) AddBrokenDevice(path string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.brokenDevs = append(f.brokenDevs, pkg.BrokenDevice{Path: path, Err: err})
}

// BreakPool marks a pool broken: it is reported by BrokenPools and no
// longer used for new volumes or listed.
func (f *Fake) BreakPool(label string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, p := range f.pools {
		if p.Label == label {
			f.pools = slices.Delete(f.pools, i, i+1)
			f.brokenPools = append(f.brokenPools, pkg.BrokenPool{Label: label, Err: err})
			return
		}
	}
}

func (f *Fake) newID() int { f.nextID++; return f.nextID }

func (f *Fake) volPath(p *fakePool, name string) string {
	return filepath.Join(f.dir, p.Label, name)
}

// reservedLocked sums the reservations of p, vdisk files included.
func (f *Fake) reservedLocked(p *fakePool) uint64 {
	var sum uint64
	for _, v := range p.vols {
		sum += v.size
	}
	entries, _ := os.ReadDir(f.volPath(p, storage.VDisksVolume))
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			sum += uint64(info.Size())
		}
	}
	return sum
}

// pickLocked returns the pool of type t with the most room for size.
func (f *Fake) pickLocked(t pkg.DeviceType, size uint64, accept func(*fakePool) bool) (*fakePool, error) {
	var best *fakePool
	var bestFree uint64
	for _, p := range f.pools {
		if p.Type != t || (accept != nil && !accept(p)) {
			continue
		}
		r := f.reservedLocked(p)
		if r+size > p.SizeBytes || r+size < r {
			continue
		}
		if free := p.SizeBytes - r - size; best == nil || free > bestFree {
			best, bestFree = p, free
		}
	}
	if best == nil {
		return nil, fmt.Errorf("%d bytes: %w", size, pkg.ErrNotEnoughSpace{DeviceType: t})
	}
	return best, nil
}

func (f *Fake) findLocked(name string) (*fakePool, *fakeVol) {
	for _, p := range f.pools {
		if v, ok := p.vols[name]; ok {
			return p, v
		}
	}
	return nil, nil
}

func (f *Fake) fsLocked(p *fakePool, name string, v *fakeVol) pkg.Filesystem {
	path := f.volPath(p, name)
	return pkg.Filesystem{ID: v.id, Path: path, Name: name, FsType: "btrfs", DiskType: p.Type,
		Usage: pkg.Usage{Size: v.size, Used: duBytes(path)}}
}

func duBytes(path string) uint64 {
	var n uint64
	_ = filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += uint64(info.Size())
			}
		}
		return nil
	})
	return n
}

// CreateFilesystem implements pkg.VolumeAllocater.
func (f *Fake) CreateFilesystem(name string, size uint64, t pkg.DeviceType) (pkg.Filesystem, error) {
	if err := storage.ValidateVolumeName(name); err != nil {
		return pkg.Filesystem{}, fmt.Errorf("volume %q: %w", name, err)
	}
	if err := storage.ValidateType(t); err != nil {
		return pkg.Filesystem{}, fmt.Errorf("volume %q: %w", name, err)
	}
	if err := storage.ValidateSize(size); err != nil {
		return pkg.Filesystem{}, fmt.Errorf("volume %q: %w", name, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, v := f.findLocked(name); p != nil {
		if p.Type != t || v.size != size {
			return pkg.Filesystem{}, fmt.Errorf("volume %q (%s, %d bytes): %w", name, p.Type, v.size, storage.ErrExists)
		}
		return f.fsLocked(p, name, v), nil
	}
	p, err := f.pickLocked(t, size, nil)
	if err != nil {
		return pkg.Filesystem{}, fmt.Errorf("volume %q: %w", name, err)
	}
	if err := os.MkdirAll(f.volPath(p, name), 0o755); err != nil {
		return pkg.Filesystem{}, fmt.Errorf("volume %q: %w", name, err)
	}
	v := &fakeVol{id: f.newID(), size: size}
	p.vols[name] = v
	return f.fsLocked(p, name, v), nil
}

// ReleaseFilesystem implements pkg.VolumeAllocater; nil if absent.
func (f *Fake) ReleaseFilesystem(name string) error {
	if err := storage.ValidateName(name); err != nil {
		return fmt.Errorf("volume %q: %w", name, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, _ := f.findLocked(name)
	if p == nil {
		return nil
	}
	if err := os.RemoveAll(f.volPath(p, name)); err != nil {
		return fmt.Errorf("volume %q: %w", name, err)
	}
	if err := os.RemoveAll(filepath.Join(f.dir, p.Label, ".snapshots", name)); err != nil {
		return fmt.Errorf("volume %q: %w", name, err)
	}
	delete(p.vols, name)
	delete(f.snaps, name)
	delete(f.modes, name)
	return nil
}

// ListFilesystems implements pkg.VolumeAllocater (cache and vdisks hidden).
func (f *Fake) ListFilesystems() ([]pkg.Filesystem, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []pkg.Filesystem
	for _, p := range f.pools {
		for _, name := range slices.Sorted(maps.Keys(p.vols)) {
			if name == storage.CacheVolume || name == storage.VDisksVolume {
				continue
			}
			out = append(out, f.fsLocked(p, name, p.vols[name]))
		}
	}
	return out, nil
}

// Path implements pkg.VolumeAllocater; an unknown name gives ErrNotFound.
func (f *Fake) Path(name string) (pkg.Filesystem, error) {
	if err := storage.ValidateName(name); err != nil {
		return pkg.Filesystem{}, fmt.Errorf("volume %q: %w", name, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, v := f.findLocked(name)
	if p == nil {
		return pkg.Filesystem{}, fmt.Errorf("volume %q: %w", name, storage.ErrNotFound)
	}
	return f.fsLocked(p, name, v), nil
}

// GetCacheFS implements pkg.VolumeAllocater.
func (f *Fake) GetCacheFS() (pkg.Filesystem, error) { return f.Path(storage.CacheVolume) }

// Total implements pkg.StorageModule.
func (f *Fake) Total(kind pkg.DeviceType) (uint64, error) {
	if err := storage.ValidateType(kind); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var sum uint64
	for _, p := range f.pools {
		if p.Type == kind {
			sum += p.SizeBytes
		}
	}
	return sum, nil
}

// BrokenPools implements pkg.StorageModule.
func (f *Fake) BrokenPools() []pkg.BrokenPool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.brokenPools)
}

// BrokenDevices implements pkg.StorageModule.
func (f *Fake) BrokenDevices() []pkg.BrokenDevice {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.brokenDevs)
}

// Monitor implements pkg.StorageModule: one PoolsStats per interval.
func (f *Fake) Monitor(ctx context.Context) <-chan pkg.PoolsStats {
	ch := make(chan pkg.PoolsStats)
	go func() {
		defer close(ch)
		t := time.NewTicker(f.MonitorInterval)
		defer t.Stop()
		for {
			f.mu.Lock()
			stats := pkg.PoolsStats{}
			for _, p := range f.pools {
				used := f.reservedLocked(p)
				stats[p.Label] = pkg.PoolStats{
					UsageStat: disk.UsageStat{Path: filepath.Join(f.dir, p.Label), Fstype: "btrfs",
						Total: p.SizeBytes, Used: used, Free: p.SizeBytes - used,
						UsedPercent: 100 * float64(used) / float64(max(p.SizeBytes, 1))},
					Counters: map[string]disk.IOCountersStat{},
				}
			}
			f.mu.Unlock()
			select {
			case ch <- stats:
			case <-ctx.Done():
				return
			}
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// Allocate implements pkg.ZDBAllocater; the mode of a namespace never
// changes (ErrModeMismatch).
func (f *Fake) Allocate(ns string, t pkg.DeviceType, size uint64, mode pkg.ZDBMode) (pkg.Allocation, error) {
	if err := storage.ValidateName(ns); err != nil {
		return pkg.Allocation{}, fmt.Errorf("namespace %q: %w", ns, err)
	}
	if err := storage.ValidateType(t); err != nil {
		return pkg.Allocation{}, fmt.Errorf("namespace %q: %w", ns, err)
	}
	if err := storage.ValidateSize(size); err != nil {
		return pkg.Allocation{}, fmt.Errorf("namespace %q: %w", ns, err)
	}
	if err := storage.ValidateMode(mode); err != nil {
		return pkg.Allocation{}, fmt.Errorf("namespace %q: %w", ns, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, name, ok := f.findNSLocked(ns); ok {
		if f.modes[name] != mode {
			return pkg.Allocation{}, fmt.Errorf("namespace %q is %s, not %s: %w", ns, f.modes[name], mode, storage.ErrModeMismatch)
		}
		return pkg.Allocation{VolumeID: name, VolumePath: f.volPath(p, name)}, nil
	}
	// an existing zdb volume of that mode on a pool of that type with room
	var best *fakePool
	var bestName string
	for _, p := range f.pools {
		if p.Type != t {
			continue
		}
		if r := f.reservedLocked(p); r+size > p.SizeBytes {
			continue
		}
		for name := range p.vols {
			if strings.HasPrefix(name, storage.ZDBPrefix) && f.modes[name] == mode && best == nil {
				best, bestName = p, name
			}
		}
	}
	if best == nil {
		p, err := f.pickLocked(t, size, nil)
		if err != nil {
			return pkg.Allocation{}, fmt.Errorf("namespace %q: %w", ns, err)
		}
		bestName = storage.ZDBPrefix + strings.ReplaceAll(uuid.NewString(), "-", "")
		if err := os.MkdirAll(f.volPath(p, bestName), 0o755); err != nil {
			return pkg.Allocation{}, fmt.Errorf("namespace %q: %w", ns, err)
		}
		best = p
		best.vols[bestName] = &fakeVol{id: f.newID(), ns: map[string]uint64{}}
		f.modes[bestName] = mode
	}
	v := best.vols[bestName]
	desc, err := storage.EncodeNamespace(storage.NamespaceDescriptor{Name: ns, MaxSizeBytes: size, Public: true})
	if err != nil {
		return pkg.Allocation{}, fmt.Errorf("namespace %q: %w", ns, err)
	}
	dir := filepath.Join(f.volPath(best, bestName), ns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return pkg.Allocation{}, fmt.Errorf("namespace %q: %w", ns, err)
	}
	if err := os.WriteFile(filepath.Join(dir, storage.NamespaceFile), desc, 0o644); err != nil {
		return pkg.Allocation{}, fmt.Errorf("namespace %q: %w", ns, err)
	}
	v.ns[ns] = size
	v.size += size
	return pkg.Allocation{VolumeID: bestName, VolumePath: f.volPath(best, bestName)}, nil
}

func (f *Fake) findNSLocked(ns string) (*fakePool, string, bool) {
	for _, p := range f.pools {
		for name, v := range p.vols {
			if _, ok := v.ns[ns]; ok {
				return p, name, true
			}
		}
	}
	return nil, "", false
}

// Find implements pkg.ZDBAllocater; ErrNotFound when absent.
func (f *Fake) Find(ns string) (pkg.Allocation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, name, ok := f.findNSLocked(ns); ok {
		return pkg.Allocation{VolumeID: name, VolumePath: f.volPath(p, name)}, nil
	}
	return pkg.Allocation{}, fmt.Errorf("namespace %q: %w", ns, storage.ErrNotFound)
}

// VDiskDirs implements storage.VDiskArea.
func (f *Fake) VDiskDirs(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, p := range f.pools {
		if _, ok := p.vols[storage.VDisksVolume]; ok && p.Type == pkg.SSDDevice {
			out = append(out, f.volPath(p, storage.VDisksVolume))
		}
	}
	return out, nil
}

// ReserveVDisk implements storage.VDiskArea.
func (f *Fake) ReserveVDisk(_ context.Context, size uint64, create func(dir string) error) (string, error) {
	if err := storage.ValidateSize(size); err != nil {
		return "", fmt.Errorf("vdisk: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p, err := f.pickLocked(pkg.SSDDevice, size, func(p *fakePool) bool { _, ok := p.vols[storage.VDisksVolume]; return ok })
	if err != nil {
		p, err = f.pickLocked(pkg.SSDDevice, size, nil)
	}
	if err != nil {
		return "", fmt.Errorf("vdisk: %w", err)
	}
	dir := f.volPath(p, storage.VDisksVolume)
	if _, ok := p.vols[storage.VDisksVolume]; !ok {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("vdisk: %w", err)
		}
		p.vols[storage.VDisksVolume] = &fakeVol{id: f.newID()}
	}
	return dir, create(dir)
}
