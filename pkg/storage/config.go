package storage

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/zos-go/zos/pkg"
)

// TypeProbe selects how the module tells SSDs from HDDs when no override is
// configured for a device.
type TypeProbe string

const (
	// ProbeSeekTime times 128 random 512-byte reads as the original's
	// seektime tool did: an average of 500 µs or more means HDD.
	ProbeSeekTime TypeProbe = "seektime"
	// ProbeRotational reads the kernel's queue/rotational flag (1 = HDD).
	// Loop devices backed by cached files always look fast to a seek-time
	// probe, so the development grid and tests use this one.
	ProbeRotational TypeProbe = "rotational"
)

// QuotaMode selects the btrfs quota flavour enabled on new pools.
type QuotaMode string

const (
	// QuotaAuto enables simple quotas when the kernel supports them and
	// classic qgroups otherwise.
	QuotaAuto QuotaMode = "auto"
	// QuotaSimple requires simple quotas (kernel 6.7+).
	QuotaSimple QuotaMode = "simple"
	// QuotaFull uses classic (fully accounted) qgroups.
	QuotaFull QuotaMode = "full"
)

// Config configures the storage module.
type Config struct {
	// Root is the state root of the node; pools are mounted under
	// <Root>/mnt/<label>.
	Root string
	// Devices lists the block devices the module may use: paths
	// (/dev/sdb, /dev/loop3) or glob patterns over symlinks to devices
	// (/run/zos/disks/*), resolved again on every scan so that a device
	// added later is picked up. Loop devices are only ever used when listed
	// here.
	Devices []string
	// Discover also scans /sys/block for free disks (never loop, ram, zram,
	// optical or USB devices, never the system disk or anything mounted,
	// partitioned, labelled or read-only).
	Discover bool
	// DeviceTypes overrides the probed type of a device, keyed by the path
	// as listed in Devices or by its resolved /dev path.
	DeviceTypes map[string]pkg.DeviceType
	// TypeProbe is how types are detected when not overridden.
	TypeProbe TypeProbe
	// Policy decides how free disks are grouped into pools.
	Policy pkg.StoragePolicy
	// LabelPrefix is put in front of every pool label this module creates
	// (<prefix>zos-<16 hex>); only pools carrying it are adopted, so two
	// nodes or tests on one machine never take each other's pools.
	LabelPrefix string
	// ScanInterval is the period of the device scan done by Run.
	ScanInterval time.Duration
	// MonitorInterval is the period of the Monitor stream.
	MonitorInterval time.Duration
	// CacheSizeBytes is the quota of the zos-cache volume (100 GiB).
	CacheSizeBytes uint64
	// CacheMount, when set, is where the cache volume is bind-mounted
	// (/var/cache on a real node). In degraded mode a tmpfs is mounted
	// there instead; when empty the tmpfs goes to <Root>/cache.
	CacheMount string
	// CacheTmpfsBytes is the size of the degraded-mode tmpfs (500 MiB).
	CacheTmpfsBytes uint64
	// Quota selects the quota flavour of new pools.
	Quota QuotaMode
}

// DefaultConfig returns the configuration of a real node: root
// /var/lib/zos, discovery of free disks, seek-time probe, one pool per disk.
func DefaultConfig() Config {
	return Config{
		Root:            "/var/lib/zos",
		Discover:        true,
		TypeProbe:       ProbeSeekTime,
		Policy:          pkg.DefaultPolicy,
		ScanInterval:    time.Minute,
		MonitorInterval: 5 * time.Second,
		CacheSizeBytes:  100 << 30,
		CacheTmpfsBytes: 500 << 20,
		Quota:           QuotaAuto,
	}
}

// ErrInvalidConfig is wrapped by every error of Config.Validate.
var ErrInvalidConfig = errors.New("invalid storage config")

// Validate checks the configuration; every error wraps ErrInvalidConfig.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalidConfig)
	}
	if c.Root == "" || !filepath.IsAbs(c.Root) {
		return bad("root %q must be an absolute path", c.Root)
	}
	if c.CacheMount != "" && !filepath.IsAbs(c.CacheMount) {
		return bad("cache mount %q must be an absolute path", c.CacheMount)
	}
	for _, d := range c.Devices {
		if !filepath.IsAbs(d) {
			return bad("device %q must be an absolute path", d)
		}
		if _, err := filepath.Match(d, d); err != nil {
			return bad("device pattern %q: %v", d, err)
		}
	}
	for d, t := range c.DeviceTypes {
		if t != pkg.SSDDevice && t != pkg.HDDDevice {
			return bad("device %q: type %q: %v", d, t, pkg.ErrInvalidDeviceType{DeviceType: t})
		}
	}
	switch c.TypeProbe {
	case ProbeSeekTime, ProbeRotational:
	default:
		return bad("type probe %q unknown", c.TypeProbe)
	}
	if err := ValidatePolicy(c.Policy); err != nil {
		return bad("%v", err)
	}
	if strings.ContainsAny(c.LabelPrefix, "/\x00 ") || len(c.LabelPrefix) > 64 {
		return bad("label prefix %q: at most 64 characters, no slash, space or NUL", c.LabelPrefix)
	}
	if c.ScanInterval <= 0 || c.MonitorInterval <= 0 {
		return bad("scan and monitor intervals must be positive")
	}
	if c.CacheSizeBytes == 0 || c.CacheSizeBytes > MaxSizeBytes {
		return bad("cache size %d out of range", c.CacheSizeBytes)
	}
	if c.CacheTmpfsBytes == 0 {
		return bad("cache tmpfs size must be positive")
	}
	switch c.Quota {
	case QuotaAuto, QuotaSimple, QuotaFull:
	default:
		return bad("quota mode %q unknown", c.Quota)
	}
	return nil
}

// ValidatePolicy checks a pool policy: NullPolicy (no raid profile) creates
// no pools; otherwise the profile must be single, raid0, raid1 or raid10
// (the original refused raid0) and Disks, when set, a multiple of the
// profile's disk count (1, 2, 2, 4). Disks 0 means the profile's disk count.
func ValidatePolicy(p pkg.StoragePolicy) error {
	if p.Raid == "" {
		if p.Disks != 0 || p.MaxPools != 0 {
			return fmt.Errorf("policy without raid profile must not set disks or max pools")
		}
		return nil
	}
	if err := p.Raid.Validate(); err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	base := profileDisks(p.Raid)
	if p.Disks != 0 && int(p.Disks)%base != 0 {
		return fmt.Errorf("policy: %d disks is not a multiple of %d for %s", p.Disks, base, p.Raid)
	}
	return nil
}

// profileDisks is the number of disks a profile needs.
func profileDisks(p pkg.RaidProfile) int {
	switch p {
	case pkg.Raid0, pkg.Raid1:
		return 2
	case pkg.Raid10:
		return 4
	}
	return 1
}

// profileDivisor is how many copies of the data a profile keeps.
func profileDivisor(p pkg.RaidProfile) uint64 {
	switch p {
	case pkg.Raid1, pkg.Raid10:
		return 2
	}
	return 1
}

// policyDisks is the number of disks per pool the policy asks for.
func policyDisks(p pkg.StoragePolicy) int {
	if p.Disks == 0 {
		return profileDisks(p.Raid)
	}
	return int(p.Disks)
}
