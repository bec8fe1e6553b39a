package vmtest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/vm"
)

// Harness is one vm.Manager under test with what the suite needs.
type Harness struct {
	VMs vm.Manager
	// Kernel and Initrd boot a guest; the guest prints Marker on its
	// serial console once booted ("" skips that check).
	Kernel, Initrd string
	Marker         string
	// KernelArgs are given to the test VM (the guest's needs).
	KernelArgs string
	// DiskDir is inside the manager's vdisk area, Outside is not.
	DiskDir, Outside string
	// NodeMemoryMiB is the node's memory as the manager sees it.
	NodeMemoryMiB int64
	// BootTimeout bounds the wait for Marker.
	BootTimeout time.Duration
}

// Suite runs the behaviour every vm.Manager must have. newHarness is
// called once per subtest.
func Suite(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Run("BadInput", func(t *testing.T) { testBadInput(t, newHarness(t)) })
	t.Run("Lifecycle", func(t *testing.T) { testLifecycle(t, newHarness(t)) })
}

func testBadInput(t *testing.T, h Harness) {
	inside := filepath.Join(h.DiskDir, "disk.img")
	outside := filepath.Join(h.Outside, "disk.img")
	for _, p := range []string{inside, outside} {
		if err := os.WriteFile(p, make([]byte, 1<<20), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The outside disk named through the vdisk area and "..".
	rel, err := filepath.Rel(filepath.Dir(h.DiskDir), outside)
	if err != nil {
		t.Fatal(err)
	}
	dotdot := h.DiskDir + "/../" + rel
	good := pkg.VM{Name: "bad-input", CPU: 1, Memory: 512, KernelImage: h.Kernel, InitrdImage: h.Initrd,
		Disks: []pkg.VMDisk{{Path: inside}}}
	cases := map[string]struct {
		edit func(*pkg.VM)
		want error
	}{
		"cpu 0":           {func(v *pkg.VM) { v.CPU = 0 }, vm.ErrInvalidVM},
		"cpu 33":          {func(v *pkg.VM) { v.CPU = 33 }, vm.ErrInvalidVM},
		"memory small":    {func(v *pkg.VM) { v.Memory = 128 }, vm.ErrInvalidVM},
		"memory too big":  {func(v *pkg.VM) { v.Memory = h.NodeMemoryMiB + 1024 }, vm.ErrTooLarge},
		"no name":         {func(v *pkg.VM) { v.Name = "" }, vm.ErrInvalidVM},
		"slash in name":   {func(v *pkg.VM) { v.Name = "a/b" }, vm.ErrInvalidVM},
		"no kernel":       {func(v *pkg.VM) { v.KernelImage, v.InitrdImage = "", "" }, vm.ErrInvalidVM},
		"missing kernel":  {func(v *pkg.VM) { v.KernelImage = filepath.Join(h.Outside, "nope") }, vm.ErrKernelNotFound},
		"missing initrd":  {func(v *pkg.VM) { v.InitrdImage = filepath.Join(h.Outside, "nope") }, vm.ErrKernelNotFound},
		"disk outside":    {func(v *pkg.VM) { v.Disks = []pkg.VMDisk{{Path: outside}} }, vm.ErrDiskOutsideArea},
		"disk dotdot":     {func(v *pkg.VM) { v.Disks = []pkg.VMDisk{{Path: dotdot}} }, vm.ErrDiskOutsideArea},
		"disk missing":    {func(v *pkg.VM) { v.Disks = []pkg.VMDisk{{Path: filepath.Join(h.DiskDir, "nope")}} }, vm.ErrInvalidVM},
		"disk twice":      {func(v *pkg.VM) { v.Disks = append(v.Disks, v.Disks[0]) }, vm.ErrInvalidVM},
		"two roots":       {func(v *pkg.VM) { v.Disks = []pkg.VMDisk{{Path: inside, Root: true}, {Path: inside, Root: true}} }, vm.ErrInvalidVM},
		"bad mac":         {func(v *pkg.VM) { v.Network.Ifaces = []pkg.VMIface{{Tap: "t-x", MAC: "zz"}} }, vm.ErrInvalidVM},
		"tap name length": {func(v *pkg.VM) { v.Network.Ifaces = []pkg.VMIface{{Tap: "t-0123456789abcdef"}} }, vm.ErrInvalidVM},
	}
	for name, c := range cases {
		v := good
		v.Disks = append([]pkg.VMDisk(nil), good.Disks...)
		c.edit(&v)
		err := h.VMs.Run(v)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: Run error %v, want %v", name, err, c.want)
		}
		if !errors.Is(err, vm.ErrInvalidVM) {
			t.Errorf("%s: error %v does not wrap ErrInvalidVM", name, err)
		}
	}
	if l, err := h.VMs.List(t.Context()); err != nil || len(l) != 0 {
		t.Errorf("after bad input List = %v, %v; want nothing", l, err)
	}
}

func testLifecycle(t *testing.T, h Harness) {
	const name = "life"
	v := pkg.VM{Name: name, CPU: 1, Memory: 512, KernelImage: h.Kernel, InitrdImage: h.Initrd, KernelArgs: h.KernelArgs}
	if h.VMs.Exists(name) {
		t.Fatal("Exists before Run")
	}
	if _, err := h.VMs.Inspect(name); !errors.Is(err, vm.ErrNotFound) {
		t.Fatalf("Inspect before Run: %v, want ErrNotFound", err)
	}
	if err := h.VMs.Run(v); err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() { _ = h.VMs.Delete(name) })
	if !h.VMs.Exists(name) {
		t.Fatal("Exists false after Run")
	}
	info, err := h.VMs.Inspect(name)
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	if info.CPU != 1 || info.Memory != 512 {
		t.Errorf("Inspect = %+v, want 1 vCPU and 512 MiB", info)
	}
	st, err := h.VMs.Status(t.Context(), name)
	if err != nil || st.State != vm.StateRunning || st.Name != name {
		t.Errorf("Status = %+v, %v; want running", st, err)
	}
	if err := h.VMs.Run(v); !errors.Is(err, vm.ErrExists) {
		t.Errorf("second Run: %v, want ErrExists", err)
	}
	if h.Marker != "" {
		deadline := time.Now().Add(h.BootTimeout)
		for {
			logs, err := h.VMs.Logs(name)
			if err == nil && strings.Contains(logs, h.Marker) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q on the console after %v (err %v):\n%s", h.Marker, h.BootTimeout, err, logs)
			}
			time.Sleep(100 * time.Millisecond)
		}
	} else if _, err := h.VMs.Logs(name); err != nil {
		t.Errorf("Logs: %v", err)
	}
	if err := h.VMs.Delete(name); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if h.VMs.Exists(name) {
		t.Error("Exists after Delete")
	}
	if _, err := h.VMs.Inspect(name); !errors.Is(err, vm.ErrNotFound) {
		t.Errorf("Inspect after Delete: %v, want ErrNotFound", err)
	}
	if _, err := h.VMs.Logs(name); !errors.Is(err, vm.ErrNotFound) {
		t.Errorf("Logs after Delete: %v, want ErrNotFound", err)
	}
	if err := h.VMs.Delete(name); err != nil {
		t.Errorf("second Delete: %v", err)
	}
}
