package gridtypes

import (
	"fmt"
	"strconv"
)

// Byte sizes.
const (
	MiB uint64 = 1 << 20
	GiB uint64 = 1 << 30
)

// Capacity is an amount of each resource unit: CRU (logical cores), MRU
// (memory bytes), SRU (SSD bytes), HRU (HDD bytes) and IPV4U (public IPv4
// addresses). The original reported GiB as floats; zos counts bytes.
type Capacity struct {
	CRU   uint64 `json:"cru"`
	MRU   uint64 `json:"mru"`
	SRU   uint64 `json:"sru"`
	HRU   uint64 `json:"hru"`
	IPV4U uint64 `json:"ipv4u"`
}

// Add returns c + o (saturating at the maximum uint64).
func (c Capacity) Add(o Capacity) Capacity {
	add := func(a, b uint64) uint64 {
		if a+b < a {
			return ^uint64(0)
		}
		return a + b
	}
	return Capacity{add(c.CRU, o.CRU), add(c.MRU, o.MRU), add(c.SRU, o.SRU), add(c.HRU, o.HRU), add(c.IPV4U, o.IPV4U)}
}

// Sub returns c - o, each unit floored at 0.
func (c Capacity) Sub(o Capacity) Capacity {
	sub := func(a, b uint64) uint64 {
		if b > a {
			return 0
		}
		return a - b
	}
	return Capacity{sub(c.CRU, o.CRU), sub(c.MRU, o.MRU), sub(c.SRU, o.SRU), sub(c.HRU, o.HRU), sub(c.IPV4U, o.IPV4U)}
}

// Max returns the per-unit maximum of c and o.
func (c Capacity) Max(o Capacity) Capacity {
	return Capacity{max(c.CRU, o.CRU), max(c.MRU, o.MRU), max(c.SRU, o.SRU), max(c.HRU, o.HRU), max(c.IPV4U, o.IPV4U)}
}

// Fits reports whether every unit of need is at most the matching unit of c.
func (c Capacity) Fits(need Capacity) bool {
	return need.CRU <= c.CRU && need.MRU <= c.MRU && need.SRU <= c.SRU && need.HRU <= c.HRU && need.IPV4U <= c.IPV4U
}

// IsZero reports whether every unit is 0.
func (c Capacity) IsZero() bool { return c == Capacity{} }

// String formats c for humans, e.g. "cru=2 mru=4.0GiB sru=50.0GiB hru=0B ipv4u=0".
func (c Capacity) String() string {
	ip := strconv.FormatUint(c.IPV4U, 10)
	if c.IPV4U == ^uint64(0) {
		ip = "unlimited" // a node's own count: its farm's pool is the limit
	}
	return fmt.Sprintf("cru=%d mru=%s sru=%s hru=%s ipv4u=%s", c.CRU, humanBytes(c.MRU), humanBytes(c.SRU), humanBytes(c.HRU), ip)
}

func humanBytes(b uint64) string {
	switch {
	case b >= GiB:
		return fmt.Sprintf("%.1fGiB", float64(b)/float64(GiB))
	case b >= MiB:
		return fmt.Sprintf("%.1fMiB", float64(b)/float64(MiB))
	default:
		return fmt.Sprintf("%dB", b)
	}
}

// onDisk adds size bytes to SRU or HRU by disk type (SSD when empty).
func onDisk(c Capacity, t DiskType, size uint64) Capacity {
	if t == DiskHDD {
		c.HRU += size
	} else {
		c.SRU += size
	}
	return c
}

// KubernetesSize is one entry of the kubernetes VM size table.
type KubernetesSize struct {
	CPU       uint64
	MemoryGiB uint64
	DiskGiB   uint64
}

// kubernetesSizes is the node's table (zos v0.4.9 vmSize), indexed by size.
var kubernetesSizes = [...]KubernetesSize{
	1: {1, 2, 50}, 2: {2, 4, 100}, 3: {2, 8, 25}, 4: {2, 8, 50}, 5: {2, 8, 200}, 6: {4, 16, 50},
	7: {4, 16, 100}, 8: {4, 16, 400}, 9: {8, 32, 100}, 10: {8, 32, 200}, 11: {8, 32, 800}, 12: {1, 64, 200},
	13: {1, 64, 400}, 14: {1, 64, 800}, 15: {1, 2, 25}, 16: {2, 4, 50}, 17: {4, 8, 50}, 18: {1, 1, 25},
}

// MaxKubernetesSize is the largest valid kubernetes size.
const MaxKubernetesSize = len(kubernetesSizes) - 1

// KubernetesSizeOf returns the resources of a kubernetes size (1 to
// MaxKubernetesSize) and whether the size exists.
func KubernetesSizeOf(size uint8) (KubernetesSize, bool) {
	if size < 1 || int(size) > MaxKubernetesSize {
		return KubernetesSize{}, false
	}
	return kubernetesSizes[size], true
}
