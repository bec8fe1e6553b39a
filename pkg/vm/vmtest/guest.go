package vmtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// KernelPackage is the Debian package the guest kernel comes from (its
// dependency names the versioned image package).
const KernelPackage = "linux-image-cloud-amd64"

// KernelCacheEnv names the directory where the extracted kernel package is
// kept between test runs (default /var/cache/zos-test/vm-kernel).
const KernelCacheEnv = "ZOS_VM_KERNEL_CACHE"

// Marker is the line the test guest prints on its serial console once it
// has configured itself and its HTTP server runs.
const Marker = "ZOSVM-READY"

// GuestKernel is a Debian kernel image and its module tree.
type GuestKernel struct {
	// Vmlinuz is the bzImage.
	Vmlinuz string
	// Modules is /lib/modules/<version> of the same kernel.
	Modules string
}

// guestModules are loaded by the test init, in this order (the Debian
// cloud kernel builds virtio as modules).
var guestModules = []string{"virtio_ring", "virtio", "virtio_mmio", "virtio_pci_legacy_dev",
	"virtio_pci_modern_dev", "virtio_pci", "failover", "net_failover", "virtio_net", "virtio_blk"}

// Kernel returns the Debian cloud kernel for test guests: extracted once
// (apt-get download, dpkg-deb -x) into the cache directory, shared by test
// processes under a file lock. It fails the test when the package cannot
// be had.
func Kernel(t testing.TB) GuestKernel {
	t.Helper()
	cache := os.Getenv(KernelCacheEnv)
	if cache == "" {
		cache = "/var/cache/zos-test/vm-kernel"
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatalf("kernel cache: %v", err)
	}
	lock, err := os.OpenFile(filepath.Join(cache, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatalf("kernel cache: %v", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("kernel cache lock: %v", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	root := filepath.Join(cache, "root")
	if k, err := findKernel(root); err == nil {
		return k
	}
	if err := fetchKernel(cache, root); err != nil {
		t.Fatalf("guest kernel: %v", err)
	}
	k, err := findKernel(root)
	if err != nil {
		t.Fatalf("guest kernel: %v", err)
	}
	return k
}

func findKernel(root string) (GuestKernel, error) {
	vmlinuz, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(vmlinuz) == 0 {
		return GuestKernel{}, errors.New("no vmlinuz")
	}
	slices.Sort(vmlinuz)
	v := vmlinuz[len(vmlinuz)-1]
	version := strings.TrimPrefix(filepath.Base(v), "vmlinuz-")
	mods := filepath.Join(root, "lib", "modules", version)
	if _, err := os.Stat(filepath.Join(mods, "kernel")); err != nil {
		return GuestKernel{}, fmt.Errorf("modules of %s: %w", version, err)
	}
	return GuestKernel{Vmlinuz: v, Modules: mods}, nil
}

var dependsRE = regexp.MustCompile(`(?m)^\s*Depends:\s*(linux-image-[^\s]+)`)

// fetchKernel downloads the versioned image package and extracts it.
func fetchKernel(cache, root string) error {
	run := func(dir string, name string, args ...string) ([]byte, error) {
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
		}
		return out, nil
	}
	out, err := run(cache, "apt-cache", "depends", "--no-recommends", KernelPackage)
	m := dependsRE.FindSubmatch(out)
	if err != nil || m == nil {
		if _, uerr := run(cache, "apt-get", "update", "-qq"); uerr != nil {
			return uerr
		}
		if out, err = run(cache, "apt-cache", "depends", "--no-recommends", KernelPackage); err != nil {
			return err
		}
		if m = dependsRE.FindSubmatch(out); m == nil {
			return fmt.Errorf("apt-cache depends %s: no image package in %q", KernelPackage, out)
		}
	}
	pkgName := string(m[1])
	dl, err := os.MkdirTemp(cache, "download-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dl)
	if err := os.Chmod(dl, 0o755); err != nil {
		return err
	}
	if _, err := run(dl, "apt-get", "download", "-qq", pkgName); err != nil {
		return err
	}
	debs, _ := filepath.Glob(filepath.Join(dl, "*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("apt-get download %s: %d files", pkgName, len(debs))
	}
	tmp := filepath.Join(dl, "root")
	if _, err := run(dl, "dpkg-deb", "-x", debs[0], tmp); err != nil {
		return err
	}
	if err := os.RemoveAll(root); err != nil {
		return err
	}
	return os.Rename(tmp, root)
}
