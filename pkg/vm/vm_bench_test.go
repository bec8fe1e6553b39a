package vm_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zos-go/zos/pkg/vm"
	"github.com/zos-go/zos/pkg/vm/vmtest"
)

// BenchmarkRowVMBoot: Run → guest init marker on the console, through the
// module (validation, record, zinit service, QMP handshake, console file),
// against the same QEMU command line started directly (baseline). Four
// boots each, alternating which goes first; the medians are reported.
func BenchmarkRowVMBoot(b *testing.B) {
	e := newRootEnv(b)
	const boots = 4
	var ours, plain []float64
	for b.Loop() {
		for i := range boots {
			// Alternate which goes first, against order effects.
			if i%2 == 0 {
				ours = append(ours, bootOurs(b, e))
				plain = append(plain, bootPlain(b, e))
			} else {
				plain = append(plain, bootPlain(b, e))
				ours = append(ours, bootOurs(b, e))
			}
		}
	}
	b.ReportMetric(median(ours), "boot-s")
	b.ReportMetric(median(plain), "baseline-boot-s")
}

func waitFile(b *testing.B, read func() string, start time.Time) {
	b.Helper()
	for !strings.Contains(read(), vmtest.Marker) {
		if time.Since(start) > bootTimeout {
			b.Fatalf("no marker after %v:\n%s", bootTimeout, read())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// bootOurs runs the guest through the module and returns the seconds from
// Run to the marker.
func bootOurs(b *testing.B, e *rootEnv) float64 {
	v := e.guestVM("bench")
	start := time.Now()
	if err := e.m.Run(v); err != nil {
		b.Fatal(err)
	}
	waitFile(b, func() string { s, _ := e.m.Logs("bench"); return s }, start)
	d := time.Since(start)
	if err := e.m.Delete("bench"); err != nil {
		b.Fatal(err)
	}
	return d.Seconds()
}

// bootPlain runs the same QEMU command line directly.
func bootPlain(b *testing.B, e *rootEnv) float64 {
	v := e.guestVM("bench")
	dir := b.TempDir()
	console := filepath.Join(dir, "console.log")
	argv, err := vm.NewQEMU(e.cfg, nil).Command(vm.Machine{
		Name: "plain", Type: vm.MachineMicroVM, Accel: e.m.Accel(), CPU: int(v.CPU), Memory: v.Memory,
		Kernel: v.KernelImage, Initrd: v.InitrdImage, Cmdline: vm.KernelArgs(v),
		QMPSocket: filepath.Join(dir, "q.sock"), ConsoleLog: console,
	})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	cmd := exec.Command(argv[0], argv[1:]...)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	waitFile(b, func() string { s, _ := os.ReadFile(console); return string(s) }, start)
	d := time.Since(start)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return d.Seconds()
}
