package vm

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/zos-go/zos/pkg"
)

// Limits bound what Validate accepts on one node.
type Limits struct {
	// MemoryMiB and CPUs are the node's size (0: no bound beyond MaxCPU).
	MemoryMiB int64
	CPUs      int
	// DiskDirs is the vdisk area; ImageDirs may hold read-only disks too.
	DiskDirs  []string
	ImageDirs []string
	// TapExists reports whether a tap exists where QEMU runs; nil skips
	// the check.
	TapExists func(name string) (bool, error)
}

// Validate checks v the way Run does before starting anything: name, size
// against the spec's bounds and the node, kernel and initrd files, disks
// (existing files inside the vdisk area, at most one root, no duplicates),
// interfaces (existing taps, valid MACs, no duplicates). Errors wrap
// ErrInvalidVM and name the field.
func Validate(v pkg.VM, lim Limits) error {
	bad := func(sentinel error, format string, a ...any) error {
		return fmt.Errorf("vm %q: %s: %w", v.Name, fmt.Sprintf(format, a...), sentinel)
	}
	if err := ValidateName(v.Name); err != nil {
		return err
	}
	switch {
	case v.CPU < 1 || v.CPU > MaxCPU:
		return bad(ErrInvalidVM, "cpu %d not in 1..%d", v.CPU, MaxCPU)
	case lim.CPUs > 0 && int(v.CPU) > lim.CPUs:
		return bad(ErrTooLarge, "cpu %d but the node has %d", v.CPU, lim.CPUs)
	case v.Memory < MinMemoryMiB:
		return bad(ErrInvalidVM, "memory %d MiB below %d MiB", v.Memory, MinMemoryMiB)
	case lim.MemoryMiB > 0 && v.Memory > lim.MemoryMiB:
		return bad(ErrTooLarge, "memory %d MiB but the node has %d MiB", v.Memory, lim.MemoryMiB)
	}
	roots := 0
	for _, d := range v.Disks {
		if d.Root {
			roots++
		}
	}
	switch {
	case roots > 1:
		return bad(ErrInvalidVM, "%d root disks", roots)
	case v.KernelImage == "" && roots == 0:
		return bad(ErrInvalidVM, "kernel image required (or a root disk that boots by itself)")
	case v.KernelImage == "" && v.InitrdImage != "":
		return bad(ErrInvalidVM, "initrd without kernel")
	}
	for field, p := range map[string]string{"kernel": v.KernelImage, "initrd": v.InitrdImage} {
		if p == "" {
			continue
		}
		if !filepath.IsAbs(p) {
			return bad(ErrInvalidVM, "%s %q is not an absolute path", field, p)
		}
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			return bad(ErrKernelNotFound, "%s %q", field, p)
		}
	}
	seen := map[string]bool{}
	for i, d := range v.Disks {
		real, err := checkDisk(d, lim)
		if err != nil {
			return fmt.Errorf("vm %q: disk %d: %w", v.Name, i, err)
		}
		if seen[real] {
			return bad(ErrInvalidVM, "disk %d: %q attached twice", i, d.Path)
		}
		seen[real] = true
	}
	taps := map[string]bool{}
	for i, nic := range v.Network.Ifaces {
		if err := checkIface(nic, lim); err != nil {
			return fmt.Errorf("vm %q: interface %d: %w", v.Name, i, err)
		}
		if taps[nic.Tap] {
			return bad(ErrInvalidVM, "interface %d: tap %s used twice", i, nic.Tap)
		}
		taps[nic.Tap] = true
	}
	return nil
}

// ValidateName checks that name can name a VM: 1 to 64 letters, digits,
// '.', '_' or '-', not starting with '.' or '-'.
func ValidateName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("vm name %q: must be 1 to %d characters: %w", name, maxNameLen, ErrInvalidVM)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '_' || (i > 0 && (r == '.' || r == '-'))
		if !ok {
			return fmt.Errorf("vm name %q: invalid character %q: %w", name, r, ErrInvalidVM)
		}
	}
	return nil
}

// checkDisk returns the resolved path of an acceptable disk.
func checkDisk(d pkg.VMDisk, lim Limits) (string, error) {
	if !filepath.IsAbs(d.Path) {
		return "", fmt.Errorf("%q is not an absolute path: %w", d.Path, ErrInvalidVM)
	}
	real, err := filepath.EvalSymlinks(d.Path)
	if err != nil {
		return "", fmt.Errorf("%q: %w: %w", d.Path, err, ErrInvalidVM)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("%q: %w: %w", d.Path, err, ErrInvalidVM)
	}
	if !fi.Mode().IsRegular() && fi.Mode()&os.ModeDevice == 0 {
		return "", fmt.Errorf("%q is not a file: %w", d.Path, ErrInvalidVM)
	}
	dirs := lim.DiskDirs
	if d.ReadOnly {
		dirs = append(dirs[:len(dirs):len(dirs)], lim.ImageDirs...)
	}
	for _, dir := range dirs {
		if within(dir, real) {
			return real, nil
		}
	}
	return "", fmt.Errorf("%q: %w", d.Path, ErrDiskOutsideArea)
}

// within reports whether p is strictly below dir (both resolved).
func within(dir, p string) bool {
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		dir = r
	}
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

func checkIface(nic pkg.VMIface, lim Limits) error {
	if nic.Tap == "" || len(nic.Tap) > 15 || strings.ContainsAny(nic.Tap, "/ ,=\t\n") {
		return fmt.Errorf("tap name %q: %w", nic.Tap, ErrInvalidVM)
	}
	if nic.MAC != "" {
		mac, err := net.ParseMAC(nic.MAC)
		if err != nil || len(mac) != 6 {
			return fmt.Errorf("mac %q: %w", nic.MAC, ErrInvalidVM)
		}
		if mac[0]&1 != 0 {
			return fmt.Errorf("mac %q is multicast: %w", nic.MAC, ErrInvalidVM)
		}
	}
	if lim.TapExists != nil {
		ok, err := lim.TapExists(nic.Tap)
		if err != nil {
			return fmt.Errorf("tap %s: %w", nic.Tap, err)
		}
		if !ok {
			return fmt.Errorf("tap %s: %w", nic.Tap, ErrTapNotFound)
		}
	}
	return nil
}
