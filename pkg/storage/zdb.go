package storage

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zos-go/zos/internal/atomicfile"
	"github.com/zos-go/zos/pkg"
)

// zdbModeFile records the mode of a 0-db volume, written when the volume
// is made, before any namespace.
const zdbModeFile = ".zos-zdb-mode"

// zdbVolume is the 0-db side of a zdb volume: its mode and namespaces.
type zdbVolume struct {
	mode pkg.ZDBMode       // "" when unknown (no mode file, no index yet)
	ns   map[string]uint64 // namespace → reserved bytes
}

func (z *zdbVolume) reserved() uint64 {
	var sum uint64
	for _, n := range z.ns {
		sum += n
	}
	return sum
}

// loadZDBVolume reads a zdb volume's mode (our mode file, else the mode
// byte of the default namespace's index as the original did) and its
// namespace descriptors. The default namespace is not a reservation. The
// leftovers of interrupted namespace releases are removed.
func loadZDBVolume(dir string) (*zdbVolume, error) {
	z := &zdbVolume{ns: map[string]uint64{}}
	if b, err := os.ReadFile(filepath.Join(dir, zdbModeFile)); err == nil {
		if mode := pkg.ZDBMode(strings.TrimSpace(string(b))); ValidateMode(mode) == nil {
			z.mode = mode
		}
	}
	if z.mode == "" {
		if f, err := os.Open(filepath.Join(dir, "default", "zdb-index-00000")); err == nil {
			var b [1]byte
			if _, err := f.ReadAt(b[:], ZDBIndexModeOffset); err == nil {
				z.mode, _ = modeFromIndex(b[0])
			}
			f.Close()
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("zdb volume %s: %w", dir, err)
	}
	for _, e := range entries {
		if !e.IsDir() || e.Name() == "default" {
			continue
		}
		b, err := readSmall(filepath.Join(dir, e.Name(), NamespaceFile))
		if err != nil {
			if _, err := os.Stat(filepath.Join(dir, e.Name(), NamespaceReleasedFile)); err == nil {
				// an interrupted ReleaseNamespace: finish it (a failure
				// is retried at the next adoption)
				_ = removeNamespaceDir(dir, e.Name())
			}
			continue // not a namespace
		}
		d, err := DecodeNamespace(b)
		if err != nil {
			continue
		}
		z.ns[e.Name()] = d.MaxSizeBytes
	}
	return z, nil
}

// readSmall reads at most 4 KiB of a file.
func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 4096))
}

// findNSLocked returns the pool and zdb volume holding namespace ns.
func (m *Module) findNSLocked(ns string) (*pool, string, *volume) {
	for _, label := range slices.Sorted(maps.Keys(m.pools)) {
		p := m.pools[label]
		if p.broken != nil {
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(p.vols)) {
			v := p.vols[name]
			if v.zdb == nil {
				continue
			}
			if _, ok := v.zdb.ns[ns]; ok {
				return p, name, v
			}
		}
	}
	return nil, "", nil
}

// Allocate implements pkg.ZDBAllocater. An allocated namespace is returned
// as is (whatever the type and size asked: ResizeNamespace changes its
// size), but never in another mode: that gives ErrModeMismatch. Otherwise
// the namespace goes to a zdb volume of that mode on a pool of that type
// with room (the one with the most), else to a new zdb volume on the pool
// of that type with the most room; its descriptor (0-db's zdb-namespace,
// maxsize = size) reserves the space on the pool itself.
func (m *Module) Allocate(ns string, t pkg.DeviceType, size uint64, mode pkg.ZDBMode) (pkg.Allocation, error) {
	if err := ValidateName(ns); err != nil {
		return pkg.Allocation{}, fmt.Errorf("namespace %q: %w", ns, err)
	}
	if err := ValidateType(t); err != nil {
		return pkg.Allocation{}, fmt.Errorf("namespace %q: %w", ns, err)
	}
	if err := ValidateSize(size); err != nil {
		return pkg.Allocation{}, fmt.Errorf("namespace %q: %w", ns, err)
	}
	if err := ValidateMode(mode); err != nil {
		return pkg.Allocation{}, fmt.Errorf("namespace %q: %w", ns, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkOpen(); err != nil {
		return pkg.Allocation{}, err
	}
	if p, name, v := m.findNSLocked(ns); p != nil {
		if v.zdb.mode != "" && v.zdb.mode != mode {
			return pkg.Allocation{}, fmt.Errorf("namespace %q is %s, not %s: %w", ns, v.zdb.mode, mode, ErrModeMismatch)
		}
		return pkg.Allocation{VolumeID: name, VolumePath: filepath.Join(p.mnt, name)}, nil
	}
	var best *pool
	var bestName string
	var bestFree uint64
	for _, label := range slices.Sorted(maps.Keys(m.pools)) {
		p := m.pools[label]
		if p.broken != nil || p.typ != t {
			continue
		}
		free := p.free()
		if free < size {
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(p.vols)) {
			if v := p.vols[name]; v.zdb != nil && v.zdb.mode == mode && (best == nil || free > bestFree) {
				best, bestName, bestFree = p, name, free
			}
		}
	}
	if best == nil {
		p, err := m.pickLocked(t, size, nil)
		if err != nil {
			return pkg.Allocation{}, fmt.Errorf("namespace %q of %d bytes: %w", ns, size, err)
		}
		name := ZDBPrefix + randHex(16)
		v, err := m.createSubvolLocked(p, name, 0)
		if err != nil {
			return pkg.Allocation{}, fmt.Errorf("namespace %q: %w", ns, err)
		}
		v.zdb = &zdbVolume{mode: mode, ns: map[string]uint64{}}
		if err := atomicfile.WriteFile(filepath.Join(p.mnt, name, zdbModeFile), []byte(mode), 0o644); err != nil {
			_ = m.removeSubvolLocked(p, name)
			return pkg.Allocation{}, fmt.Errorf("namespace %q: %w", ns, err)
		}
		best, bestName = p, name
		m.log.Info("zdb volume created", "volume", name, "pool", p.label, "mode", mode)
	}
	v := best.vols[bestName]
	desc, err := EncodeNamespace(NamespaceDescriptor{Name: ns, MaxSizeBytes: size, Public: true})
	if err != nil {
		return pkg.Allocation{}, fmt.Errorf("namespace %q: %w", ns, err)
	}
	dir := filepath.Join(best.mnt, bestName, ns)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return pkg.Allocation{}, fmt.Errorf("namespace %q: %w", ns, err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, NamespaceFile), desc, 0o644); err != nil {
		_ = os.RemoveAll(dir)
		return pkg.Allocation{}, fmt.Errorf("namespace %q: %w", ns, err)
	}
	if v.zdb.mode == "" {
		// a volume of unknown mode takes the mode of its first allocation
		if err := atomicfile.WriteFile(filepath.Join(best.mnt, bestName, zdbModeFile), []byte(mode), 0o644); err == nil {
			v.zdb.mode = mode
		}
	}
	v.zdb.ns[ns] = size
	best.reserved += size
	m.log.Info("zdb namespace allocated", "namespace", ns, "volume", bestName, "pool", best.label, "size_bytes", size)
	return pkg.Allocation{VolumeID: bestName, VolumePath: filepath.Join(best.mnt, bestName)}, nil
}

// Find implements pkg.ZDBAllocater: the allocation of namespace ns on any
// healthy pool, or ErrNotFound.
func (m *Module) Find(ns string) (pkg.Allocation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkOpen(); err != nil {
		return pkg.Allocation{}, err
	}
	if p, name, _ := m.findNSLocked(ns); p != nil {
		return pkg.Allocation{VolumeID: name, VolumePath: filepath.Join(p.mnt, name)}, nil
	}
	return pkg.Allocation{}, fmt.Errorf("namespace %q: %w", ns, ErrNotFound)
}
