package storage

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/internal/btrfs"
	"github.com/zos-go/zos/pkg"
)

// device is a probed block device.
type device struct {
	path   string // resolved /dev path
	listed string // as listed in the config (or discovered)
	size   uint64
	typ    pkg.DeviceType
	sb     *btrfs.Superblock // nil when no btrfs
	seek   time.Duration     // seek-time probe result, for ordering
}

// ForeignDevice is a device the module leaves alone because it carries
// data it does not own (another filesystem, a partition table, a foreign
// btrfs) or cannot be written (read-only).
type ForeignDevice struct {
	Path string
	// Content says what was found ("ext4", "partition table dos",
	// "btrfs labelled x", "read-only", "in use").
	Content string
}

// ErrDeviceUnusable wraps the probe error of a device listed as broken.
var ErrDeviceUnusable = errors.New("device unusable")

// listDevices returns the configured devices (globs expanded, symlinks
// resolved) and, with Discover, the free-looking disks of /sys/block.
// Paths listed literally that do not exist are returned with an error.
func (m *Module) listDevices() (map[string]string, map[string]error) {
	out := map[string]string{} // resolved → listed
	missing := map[string]error{}
	add := func(listed string) {
		resolved, err := filepath.EvalSymlinks(listed)
		if err != nil {
			missing[listed] = fmt.Errorf("device %s: %w", listed, err)
			return
		}
		if _, dup := out[resolved]; !dup {
			out[resolved] = listed
		}
	}
	for _, d := range m.cfg.Devices {
		if strings.ContainsAny(d, "*?[") {
			matches, _ := filepath.Glob(d)
			for _, p := range matches {
				add(p)
			}
			continue
		}
		add(d)
	}
	if m.cfg.Discover {
		for _, name := range discoverDisks() {
			add("/dev/" + name)
		}
	}
	return out, missing
}

// discoverDisks lists whole disks of /sys/block that may be ours: never
// loop, ram, zram, optical, floppy, md/dm, nbd or USB devices.
func discoverDisks() []string {
	entries, _ := os.ReadDir("/sys/block")
	var out []string
	for _, e := range entries {
		name := e.Name()
		skip := false
		for _, p := range []string{"loop", "ram", "zram", "sr", "fd", "md", "dm-", "nbd", "zd"} {
			if strings.HasPrefix(name, p) {
				skip = true
			}
		}
		if skip {
			continue
		}
		if link, err := os.Readlink(filepath.Join("/sys/block", name)); err == nil && strings.Contains(link, "/usb") {
			continue
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// sysBlock returns /sys/class/block/<name> of a /dev path.
func sysBlock(path string) string { return filepath.Join("/sys/class/block", filepath.Base(path)) }

func readSysInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// probeResult is what probeDevice found: a usable device, a foreign one
// (content set) or a broken one (error).
type probeResult struct {
	dev     device
	foreign string
}

// probeDevice checks one device: block device, media present, readable at
// both ends, not read-only, and what it carries.
func (m *Module) probeDevice(ctx context.Context, path, listed string, mounted map[uint64]bool) (probeResult, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return probeResult{}, fmt.Errorf("device %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return probeResult{}, fmt.Errorf("device %s: not a block device: %w", path, ErrDeviceUnusable)
	}
	res := probeResult{dev: device{path: path, listed: listed}}
	if ro, err := readSysInt(filepath.Join(sysBlock(path), "ro")); err == nil && ro == 1 {
		res.foreign = "read-only"
		return res, nil
	}
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return probeResult{}, fmt.Errorf("device %s: %w", path, err)
	}
	defer f.Close()
	size, err := unix.IoctlGetUint64(int(f.Fd()), unix.BLKGETSIZE64)
	if err != nil {
		return probeResult{}, fmt.Errorf("device %s: size: %w", path, err)
	}
	if size < minDeviceBytes {
		return probeResult{}, fmt.Errorf("device %s: %d bytes (no medium or under %d): %w", path, size, minDeviceBytes, ErrDeviceUnusable)
	}
	res.dev.size = size
	buf := make([]byte, 4096)
	for _, off := range []int64{0, int64(size) - 4096} {
		if _, err := f.ReadAt(buf, off); err != nil {
			return probeResult{}, fmt.Errorf("device %s: read at %d: %w", path, off, err)
		}
	}
	if sb, err := btrfs.ReadSuperblock(f); err == nil {
		res.dev.sb = &sb
		if _, ok := m.ownLabel(sb.Label); !ok {
			res.foreign = fmt.Sprintf("btrfs labelled %q", sb.Label)
		}
	} else if !errors.Is(err, btrfs.ErrNotBtrfs) {
		return probeResult{}, fmt.Errorf("device %s: %w", path, err)
	}
	if res.dev.sb == nil {
		if what := inUse(path, st.Rdev, mounted); what != "" {
			res.foreign = what
			return res, nil
		}
		if what, err := blkidContent(ctx, path); err != nil {
			return probeResult{}, err
		} else if what != "" {
			res.foreign = what
			return res, nil
		}
	}
	if res.foreign != "" {
		return res, nil
	}
	res.dev.typ, res.dev.seek, err = m.deviceType(path, listed, f)
	if err != nil {
		return probeResult{}, err
	}
	return res, nil
}

// minDeviceBytes is the smallest device btrfs accepts (about 114 MiB).
const minDeviceBytes = 120 << 20

// inUse tells whether a device is mounted, partitioned or held by another
// block device (LVM, md, dm).
func inUse(path string, rdev uint64, mounted map[uint64]bool) string {
	if mounted[rdev] {
		return "mounted"
	}
	name := filepath.Base(path)
	entries, _ := os.ReadDir(sysBlock(path))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), name) {
			if _, err := os.Stat(filepath.Join(sysBlock(path), e.Name(), "partition")); err == nil {
				return "partitioned"
			}
		}
	}
	if holders, _ := os.ReadDir(filepath.Join(sysBlock(path), "holders")); len(holders) > 0 {
		return "held by " + holders[0].Name()
	}
	return ""
}

// blkidContent asks blkid's low-level probe what signature a device
// carries: "" for none.
func blkidContent(ctx context.Context, path string) (string, error) {
	cmd := exec.CommandContext(ctx, "blkid", "-p", "-o", "export", path)
	out, err := cmd.Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 2 {
		return "", nil // nothing found
	}
	if err != nil {
		return "", fmt.Errorf("device %s: blkid: %w", path, err)
	}
	vals := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			vals[k] = v
		}
	}
	switch {
	case vals["TYPE"] != "":
		return vals["TYPE"], nil
	case vals["PTTYPE"] != "":
		return "partition table " + vals["PTTYPE"], nil
	}
	return "unknown signature", nil
}

// deviceType decides SSD or HDD: the config override, else the probe.
func (m *Module) deviceType(path, listed string, f *os.File) (pkg.DeviceType, time.Duration, error) {
	for _, k := range []string{listed, path} {
		if t, ok := m.cfg.DeviceTypes[k]; ok {
			return t, 0, nil
		}
	}
	if m.cfg.TypeProbe == ProbeRotational {
		rot, err := readSysInt(filepath.Join("/sys/block", filepath.Base(path), "queue/rotational"))
		if err != nil {
			return "", 0, fmt.Errorf("device %s: rotational flag: %w", path, err)
		}
		if rot == 1 {
			return pkg.HDDDevice, 0, nil
		}
		return pkg.SSDDevice, 0, nil
	}
	avg, err := seekTime(path)
	if err != nil {
		return "", 0, err
	}
	if avg >= 500*time.Microsecond {
		return pkg.HDDDevice, avg, nil
	}
	return pkg.SSDDevice, avg, nil
}

// seekTime does what the original's seektime tool did: 128 pairs of random
// reads of one logical block, bypassing the page cache, and returns the
// average time of the second read of each pair.
func seekTime(path string) (time.Duration, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("device %s: seek probe: %w", path, err)
	}
	defer unix.Close(fd)
	bs, err := readSysInt(filepath.Join("/sys/block", filepath.Base(path), "queue/logical_block_size"))
	if err != nil || bs <= 0 || bs > 65536 {
		bs = 4096
	}
	size, err := unix.IoctlGetUint64(fd, unix.BLKGETSIZE64)
	if err != nil {
		return 0, fmt.Errorf("device %s: seek probe: %w", path, err)
	}
	blocks := int64(size) / bs
	if blocks < 2 {
		return 0, fmt.Errorf("device %s: seek probe: too small: %w", path, ErrDeviceUnusable)
	}
	raw := make([]byte, 2*bs)
	off := int(uintptr(unsafe.Pointer(&raw[0])) % uintptr(bs))
	if off != 0 {
		off = int(bs) - off
	}
	buf := raw[off : off+int(bs)]
	var total time.Duration
	const pairs = 128
	for range pairs {
		if _, err := unix.Pread(fd, buf, rand.Int64N(blocks)*bs); err != nil {
			return 0, fmt.Errorf("device %s: seek probe: %w", path, err)
		}
		start := time.Now()
		if _, err := unix.Pread(fd, buf, rand.Int64N(blocks)*bs); err != nil {
			return 0, fmt.Errorf("device %s: seek probe: %w", path, err)
		}
		total += time.Since(start)
	}
	return total / pairs, nil
}

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct {
	dev    uint64 // st_dev of the mounted filesystem
	target string
	fstype string
	source string
}

// parseMountinfo decodes /proc/self/mountinfo.
func parseMountinfo(b []byte) []mountEntry {
	var out []mountEntry
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 {
			continue
		}
		sep := slices.Index(f, "-")
		if sep < 6 || sep+2 >= len(f) {
			continue
		}
		maj, min, ok := strings.Cut(f[2], ":")
		if !ok {
			continue
		}
		ma, err1 := strconv.ParseUint(maj, 10, 32)
		mi, err2 := strconv.ParseUint(min, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, mountEntry{dev: unix.Mkdev(uint32(ma), uint32(mi)), target: unescapeOctal(f[4]),
			fstype: f[sep+1], source: unescapeOctal(f[sep+2])})
	}
	return out
}

// unescapeOctal undoes the \ooo escapes of mountinfo fields.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func readMounts() ([]mountEntry, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("mountinfo: %w", err)
	}
	return parseMountinfo(b), nil
}

// mountedDevices returns the device numbers that are mounted, by source
// path (block device mounts).
func mountedDevices(mounts []mountEntry) map[uint64]bool {
	out := map[uint64]bool{}
	for _, me := range mounts {
		var st unix.Stat_t
		if strings.HasPrefix(me.source, "/dev/") && unix.Stat(me.source, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK {
			out[st.Rdev] = true
		}
	}
	return out
}
