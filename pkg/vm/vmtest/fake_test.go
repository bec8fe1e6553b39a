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

func fakeHarness(t *testing.T) Harness {
	dir := t.TempDir()
	area, outside := filepath.Join(dir, "vdisks"), filepath.Join(dir, "elsewhere")
	for _, d := range []string{area, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	kernel := filepath.Join(outside, "vmlinuz")
	if err := os.WriteFile(kernel, []byte("kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := NewFake(vm.Limits{MemoryMiB: 4096, CPUs: 4, DiskDirs: []string{area}})
	return Harness{VMs: f, Kernel: kernel, DiskDir: area, Outside: outside, NodeMemoryMiB: 4096}
}

func TestFakeSuite(t *testing.T) {
	Suite(t, fakeHarness)
}

func TestFakeCrashAndRestart(t *testing.T) {
	h := fakeHarness(t)
	f := h.VMs.(*Fake)
	keep := pkg.VM{Name: "keep", CPU: 1, Memory: 512, KernelImage: h.Kernel}
	once := pkg.VM{Name: "once", CPU: 1, Memory: 512, KernelImage: h.Kernel, NoKeepAlive: true}
	for _, v := range []pkg.VM{keep, once} {
		if err := f.Run(v); err != nil {
			t.Fatal(err)
		}
		if err := f.Crash(v.Name, "signal: killed", 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if !f.Exists("keep") || f.Exists("once") {
		t.Errorf("Exists keep=%v once=%v, want true false", f.Exists("keep"), f.Exists("once"))
	}
	_, err := f.Inspect("keep")
	var se *vm.StateError
	if !errors.As(err, &se) || se.State != vm.StateBackoff || se.Reason != "signal: killed" || !errors.Is(err, vm.ErrNotRunning) {
		t.Errorf("Inspect of crashed VM: %v", err)
	}
	if err := f.Run(keep); !errors.Is(err, vm.ErrExists) {
		t.Errorf("Run over a VM in backoff: %v, want ErrExists", err)
	}
	if err := f.Run(once); err != nil {
		t.Errorf("Run over a stopped VM: %v", err)
	}
	if err := f.Restart("keep"); err != nil {
		t.Fatal(err)
	}
	st, _ := f.Status(t.Context(), "keep")
	if st.State != vm.StateRunning || st.Restarts != 1 {
		t.Errorf("after Restart: %+v", st)
	}
	logs, _ := f.Logs("keep")
	if !strings.Contains(logs, vm.DefaultKernelArgs) {
		t.Errorf("fake console lacks the kernel args: %q", logs)
	}
}
