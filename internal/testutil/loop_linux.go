package testutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// LoopDisk creates a sparse file of size bytes under this process's test root,
// attaches it to a free loop device and returns the device path (/dev/loopN).
// rotational sets the device's queue/rotational flag, so storage code sees an
// HDD (true) or an SSD (false). The device is detached and the file removed at
// the end of the test. The device is attached with auto-clear and the test
// process holds it open, so a test process that dies never leaves an unmounted
// loop device behind.
func LoopDisk(t testing.TB, size int64, rotational bool) string {
	t.Helper()
	RequireRoot(t)
	file := filepath.Join(TempDir(t), "disk.img")
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatalf("loop disk: %v", err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatalf("loop disk: %v", err)
	}
	dev, hold, err := attachLoop(f)
	if err != nil {
		t.Fatalf("loop disk: %v", err)
	}
	t.Cleanup(func() {
		hold.Close()
		if err := DetachLoop(dev); err != nil {
			t.Errorf("detach %s: %v", dev, err)
		}
	})
	rot := "0"
	if rotational {
		rot = "1"
	}
	attr := filepath.Join("/sys/block", filepath.Base(dev), "queue/rotational")
	if err := os.WriteFile(attr, []byte(rot), 0o644); err != nil {
		t.Fatalf("loop disk %s: set rotational: %v", dev, err)
	}
	return dev
}

// attachLoop binds backing to a free loop device with auto-clear; it returns
// the device path and an open handle that keeps the device bound until closed
// (and the device unused).
func attachLoop(backing *os.File) (string, *os.File, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return "", nil, err
	}
	defer ctl.Close()
	// Another process may take the free device between GET_FREE and
	// CONFIGURE; the kernel answers EBUSY then, and we ask again.
	for range 20 {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return "", nil, fmt.Errorf("get free loop device: %w", err)
		}
		dev := fmt.Sprintf("/dev/loop%d", n)
		lf, err := openLoopDevice(dev)
		if err != nil {
			return "", nil, err
		}
		cfg := unix.LoopConfig{Fd: uint32(backing.Fd())}
		cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
		copy(cfg.Info.File_name[:], backing.Name())
		err = unix.IoctlLoopConfigure(int(lf.Fd()), &cfg)
		if errors.Is(err, unix.EBUSY) {
			lf.Close()
			continue
		}
		if err != nil {
			lf.Close()
			return "", nil, fmt.Errorf("configure %s: %w", dev, err)
		}
		return dev, lf, nil
	}
	return "", nil, errors.New("no free loop device after 20 attempts")
}

// openLoopDevice opens a loop device node, waiting briefly for udev-less
// systems where the node appears a moment after LOOP_CTL_GET_FREE.
func openLoopDevice(dev string) (*os.File, error) {
	var err error
	for range 50 {
		var f *os.File
		f, err = os.OpenFile(dev, os.O_RDWR, 0)
		if err == nil {
			return f, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil, fmt.Errorf("open %s: %w", dev, err)
}

// DetachLoop detaches a loop device. A device that is still in use (mounted)
// keeps its auto-clear flag and goes away when released; the leak checker
// reports it meanwhile.
func DetachLoop(dev string) error {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	for range 50 {
		err = unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0)
		if err == nil || errors.Is(err, unix.ENXIO) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// loopBacking lists attached loop devices and their backing files.
func loopBacking() map[string]string {
	out := map[string]string{}
	entries, _ := os.ReadDir("/sys/block")
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "loop") {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/sys/block", e.Name(), "loop/backing_file"))
		if err != nil {
			continue
		}
		out["/dev/"+e.Name()] = strings.TrimSpace(string(b))
	}
	return out
}
