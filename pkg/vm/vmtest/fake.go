// Package vmtest has test helpers for code that uses VMs: Fake, an
// in-memory vm.Manager for unit tests of other packages; Suite, the
// behaviour every vm.Manager must have (run on the Fake and on the QEMU
// module); and guest helpers that fetch a Debian kernel and build a tiny
// busybox initramfs for tests that boot real VMs.
package vmtest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/vm"
)

// Fake is an in-memory vm.Manager. Run validates like the module (the same
// vm.Validate with the Fake's Limits, files included) and records the VM as
// running; Crash, Restart and Console drive what the real module would see
// from QEMU. It is safe for concurrent use.
type Fake struct {
	mu     sync.Mutex
	limits vm.Limits
	vms    map[string]*fakeVM // guarded by mu
}

type fakeVM struct {
	spec    pkg.VM
	status  vm.Status
	console []byte
}

var _ vm.Manager = (*Fake)(nil)

// NewFake returns a Fake that accepts VMs within lim (lim.DiskDirs is the
// vdisk area; set TapExists to check taps).
func NewFake(lim vm.Limits) *Fake {
	return &Fake{limits: lim, vms: map[string]*fakeVM{}}
}

// Run implements pkg.VMModule: ErrExists when a VM of that name runs or
// waits for a restart; a stopped one is replaced.
func (f *Fake) Run(v pkg.VM) error {
	if err := vm.Validate(v, f.limits); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if old, ok := f.vms[v.Name]; ok && old.status.State != vm.StateStopped {
		return fmt.Errorf("vm %s: %w", v.Name, vm.ErrExists)
	}
	machine := vm.MachineMicroVM
	if v.KernelImage == "" {
		machine = vm.MachineQ35
	}
	f.vms[v.Name] = &fakeVM{
		spec: v,
		status: vm.Status{Name: v.Name, State: vm.StateRunning, Since: time.Now(), PID: 1,
			Accel: vm.AccelTCG, Machine: machine, CPU: int(v.CPU), MemoryMiB: v.Memory},
		console: fmt.Appendf(nil, "fake console of %s\ncmdline: %s\n", v.Name, vm.KernelArgs(v)),
	}
	return nil
}

// Inspect implements pkg.VMModule: the configured size of a running VM, a
// *vm.StateError for one that does not run, vm.ErrNotFound otherwise.
func (f *Fake) Inspect(name string) (pkg.VMInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fv, ok := f.vms[name]
	if !ok {
		return pkg.VMInfo{}, fmt.Errorf("vm %s: %w", name, vm.ErrNotFound)
	}
	if st := fv.status; st.State != vm.StateRunning {
		return pkg.VMInfo{}, &vm.StateError{Name: name, State: st.State, Reason: st.Reason, NextRestart: st.NextRestart}
	}
	return pkg.VMInfo{CPU: int64(fv.spec.CPU), Memory: fv.spec.Memory}, nil
}

// Delete implements pkg.VMModule; deleting an unknown VM is not an error.
func (f *Fake) Delete(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.vms, name)
	return nil
}

// Exists implements pkg.VMModule: the VM runs or will be restarted.
func (f *Fake) Exists(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	fv, ok := f.vms[name]
	return ok && fv.status.State != vm.StateStopped
}

// Logs implements pkg.VMModule: the console text (see Console).
func (f *Fake) Logs(name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fv, ok := f.vms[name]
	if !ok {
		return "", fmt.Errorf("vm %s: %w", name, vm.ErrNotFound)
	}
	return string(fv.console), nil
}

// Status implements vm.Manager.
func (f *Fake) Status(_ context.Context, name string) (vm.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fv, ok := f.vms[name]
	if !ok {
		return vm.Status{}, fmt.Errorf("vm %s: %w", name, vm.ErrNotFound)
	}
	return fv.status, nil
}

// List implements vm.Manager.
func (f *Fake) List(context.Context) ([]vm.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []vm.Status
	for _, n := range slices.Sorted(maps.Keys(f.vms)) {
		out = append(out, f.vms[n].status)
	}
	return out, nil
}

// Spec returns the VM as given to Run.
func (f *Fake) Spec(name string) (pkg.VM, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fv, ok := f.vms[name]
	if !ok {
		return pkg.VM{}, false
	}
	return fv.spec, true
}

// Console appends text to the VM's console log, as its guest would.
func (f *Fake) Console(name, text string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fv, ok := f.vms[name]
	if !ok {
		return fmt.Errorf("vm %s: %w", name, vm.ErrNotFound)
	}
	fv.console = append(fv.console, text...)
	return nil
}

// Crash makes the VM's QEMU end with reason, as keep-alive would see it: a
// NoKeepAlive VM is stopped (Exists false), any other waits for a restart
// (call Restart) with NextRestart set to after.
func (f *Fake) Crash(name, reason string, after time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fv, ok := f.vms[name]
	if !ok {
		return fmt.Errorf("vm %s: %w", name, vm.ErrNotFound)
	}
	st := &fv.status
	st.Reason, st.Since, st.PID = reason, time.Now(), 0
	if fv.spec.NoKeepAlive {
		st.State, st.NextRestart = vm.StateStopped, time.Time{}
	} else {
		st.State, st.NextRestart = vm.StateBackoff, time.Now().Add(after)
	}
	return nil
}

// Restart brings a crashed VM back (what keep-alive does after its delay).
func (f *Fake) Restart(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fv, ok := f.vms[name]
	if !ok {
		return fmt.Errorf("vm %s: %w", name, vm.ErrNotFound)
	}
	if fv.status.State != vm.StateBackoff {
		return fmt.Errorf("vm %s is %s: %w", name, fv.status.State, vm.ErrExists)
	}
	st := &fv.status
	st.State, st.NextRestart, st.Since, st.PID = vm.StateRunning, time.Time{}, time.Now(), 1
	st.Restarts++
	return nil
}
