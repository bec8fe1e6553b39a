package vm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/zos-go/zos/internal/revert"
	"github.com/zos-go/zos/pkg"
)

var _ Manager = (*Module)(nil)

// Module is the VM module of a node. Create it with New and run it with
// Serve (the seed's VMModule already has a Run method, for VMs); the seed
// methods fail with ErrNotReady until Serve has probed the acceleration
// and adopted the VMs that run. All methods are safe for concurrent use;
// operations on one VM are serialised, different VMs proceed in parallel.
type Module struct {
	cfg   Config
	hv    Hypervisor
	l     Launcher
	disks DiskArea
	log   *slog.Logger
	store store
	locks keyedLocks

	// tapExists and memoryMiB read the host; unit tests replace them.
	tapExists func(ns, name string) (bool, error)
	memoryMiB func() (int64, error)

	mu     sync.Mutex
	runCtx context.Context     // guarded by mu; set while Serve runs
	accel  string              // guarded by mu
	vms    map[string]*vmState // guarded by mu
}

// New returns a module for cfg. hv builds and queries the VMs (NewQEMU),
// l runs their processes (ZinitLauncher on a node), disks tells where
// vdisks live (the storage module). It starts nothing.
func New(cfg Config, hv Hypervisor, l Launcher, disks DiskArea, log *slog.Logger) (*Module, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if hv == nil || l == nil || disks == nil || log == nil {
		return nil, fmt.Errorf("vm: hypervisor, launcher, disk area and logger are required: %w", ErrInvalidConfig)
	}
	return &Module{
		cfg: cfg, hv: hv, l: l, disks: disks, log: log,
		store:     store{dir: filepath.Join(cfg.Root, "vms")},
		tapExists: hostTapExists,
		memoryMiB: hostMemoryMiB,
		vms:       map[string]*vmState{},
	}, nil
}

// Accel returns the acceleration chosen by Serve ("" before).
func (m *Module) Accel() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.accel
}

// Serve probes the acceleration, rebuilds the module's view from the
// records and the running QEMUs, then watches the VMs (keep-alive, console
// rotation) until ctx ends. It fails, wrapping errors.ErrUnsupported, when
// QEMU cannot run a VM on this host.
func (m *Module) Serve(ctx context.Context) error {
	accel, err := m.hv.Probe(ctx, m.cfg.Accel)
	if err != nil {
		return err
	}
	m.log.InfoContext(ctx, "vm acceleration", "accel", accel)
	for _, d := range []string{m.store.dir, m.cfg.RunDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("vm: %w", err)
		}
	}
	if err := m.reattach(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	m.runCtx, m.accel = ctx, accel
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.runCtx = nil
		m.mu.Unlock()
	}()
	t := time.NewTicker(m.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			m.check(ctx)
		}
	}
}

// op returns a context for one seed call: bounded by Serve's lifetime and
// OpTimeout.
func (m *Module) op() (context.Context, context.CancelFunc, string, error) {
	m.mu.Lock()
	rc, accel := m.runCtx, m.accel
	m.mu.Unlock()
	if rc == nil || rc.Err() != nil {
		return nil, nil, "", ErrNotReady
	}
	ctx, cancel := context.WithTimeout(rc, m.cfg.OpTimeout)
	return ctx, cancel, accel, nil
}

func (m *Module) service(name string) string { return m.cfg.ServicePrefix + name }

// limits returns what Validate checks against on this node.
func (m *Module) limits(ctx context.Context) (Limits, error) {
	dirs, err := m.disks.VDiskDirs(ctx)
	if err != nil {
		return Limits{}, fmt.Errorf("vm: vdisk area: %w", err)
	}
	lim := Limits{MemoryMiB: m.cfg.NodeMemoryMiB, CPUs: m.cfg.NodeCPUs, DiskDirs: dirs, ImageDirs: m.cfg.ImageDirs,
		TapExists: func(name string) (bool, error) { return m.tapExists(m.cfg.HostNS, name) }}
	if lim.MemoryMiB == 0 {
		if lim.MemoryMiB, err = m.memoryMiB(); err != nil {
			return Limits{}, fmt.Errorf("vm: node memory: %w", err)
		}
	}
	if lim.CPUs == 0 {
		lim.CPUs = runtime.NumCPU()
	}
	return lim, nil
}

// machine resolves v for the hypervisor.
func (m *Module) machine(v pkg.VM, accel string) Machine {
	mc := Machine{
		Name: v.Name, Type: MachineMicroVM, Accel: accel, CPU: int(v.CPU), Memory: v.Memory,
		Kernel: v.KernelImage, Initrd: v.InitrdImage,
		QMPSocket:  filepath.Join(m.cfg.RunDir, v.Name+".qmp"),
		ConsoleLog: m.store.consoleLog(v.Name),
		NetNS:      m.cfg.HostNS,
	}
	if v.KernelImage == "" {
		mc.Type = MachineQ35
	} else {
		mc.Cmdline = KernelArgs(v)
	}
	// The root disk first (/dev/vda), the others in order.
	for _, d := range v.Disks {
		if d.Root {
			mc.Disks = append(mc.Disks, Disk{Path: d.Path, ReadOnly: d.ReadOnly, Root: true})
		}
	}
	for _, d := range v.Disks {
		if !d.Root {
			mc.Disks = append(mc.Disks, Disk{Path: d.Path, ReadOnly: d.ReadOnly})
		}
	}
	for _, n := range v.Network.Ifaces {
		mc.Nics = append(mc.Nics, Nic{Tap: n.Tap, MAC: n.MAC})
	}
	return mc
}

// Run implements pkg.VMModule: validate v, record it, start its QEMU and
// wait until QMP answers. Bad input fails with an error wrapping
// ErrInvalidVM and changes nothing; a name whose VM runs (or waits for a
// restart) fails with ErrExists; a stopped VM of that name is replaced.
func (m *Module) Run(v pkg.VM) error {
	ctx, cancel, accel, err := m.op()
	if err != nil {
		return err
	}
	defer cancel()
	return m.run(ctx, v, accel)
}

func (m *Module) run(ctx context.Context, v pkg.VM, accel string) error {
	lim, err := m.limits(ctx)
	if err != nil {
		return err
	}
	if err := Validate(v, lim); err != nil {
		return err
	}
	if sock := filepath.Join(m.cfg.RunDir, v.Name+".qmp"); len(sock) > maxSocketPath {
		return fmt.Errorf("vm %q: name too long for the socket %s: %w", v.Name, sock, ErrInvalidVM)
	}
	unlock := m.locks.Lock(v.Name)
	defer unlock()
	m.mu.Lock()
	old := m.vms[v.Name]
	m.mu.Unlock()
	if old != nil {
		if old.state != StateStopped {
			return fmt.Errorf("vm %s is %s: %w", v.Name, old.state, ErrExists)
		}
		if err := m.deleteLocked(ctx, v.Name); err != nil {
			return err
		}
	}
	mc := m.machine(v, accel)
	argv, err := m.hv.Command(mc)
	if err != nil {
		return err
	}
	rec := record{VM: v, Machine: mc, Service: m.service(v.Name), Argv: argv}

	var undo revert.Stack
	defer undo.Unwind()
	// A leftover directory (a crash before the record was complete) goes.
	if err := m.store.remove(v.Name); err != nil {
		return err
	}
	if err := m.store.save(rec); err != nil {
		return err
	}
	undo.Push(func() { _ = m.store.remove(v.Name) })
	_ = os.Remove(mc.QMPSocket)
	cleanup := context.WithoutCancel(ctx)
	if err := m.l.Start(ctx, rec.Service, argv); err != nil {
		return fmt.Errorf("vm %s: %w: %w", v.Name, ErrStart, err)
	}
	undo.Push(func() {
		_ = m.l.Stop(cleanup, rec.Service)
		_ = os.Remove(mc.QMPSocket)
	})
	pid, err := m.waitStarted(ctx, rec)
	if err != nil {
		return err
	}
	now := time.Now()
	m.mu.Lock()
	m.vms[v.Name] = &vmState{rec: rec, state: StateRunning, started: now, since: now, pid: pid}
	m.mu.Unlock()
	undo.Done()
	m.log.InfoContext(ctx, "vm started", "vm", v.Name, "machine", mc.Type, "accel", accel, "pid", pid,
		"cpu", mc.CPU, "memory_mib", mc.Memory)
	return nil
}

// waitStarted waits until the QEMU of rec answers on QMP, and fails with
// its output when it ends first or StartTimeout passes.
func (m *Module) waitStarted(ctx context.Context, rec record) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.StartTimeout)
	defer cancel()
	fail := func(why string) (int, error) {
		out := m.l.Output(context.WithoutCancel(ctx), rec.Service)
		return 0, fmt.Errorf("vm %s: %w: %s: %s", rec.VM.Name, ErrStart, why, tail([]byte(out), 2048))
	}
	for {
		p, err := m.l.Status(ctx, rec.Service)
		switch {
		case err != nil && ctx.Err() == nil:
			return fail(err.Error())
		case err == nil && !p.Running && p.Exit != "":
			return fail(p.Exit)
		case err == nil && p.Running:
			qctx, qcancel := context.WithTimeout(ctx, time.Second)
			_, qerr := m.hv.Info(qctx, rec.Machine)
			qcancel()
			if qerr == nil {
				return p.PID, nil
			}
		}
		select {
		case <-ctx.Done():
			return fail(fmt.Sprintf("no answer on QMP after %v", m.cfg.StartTimeout))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Inspect implements pkg.VMModule: the VM's vCPUs and memory as its
// running QEMU reports them. A VM whose QEMU does not run gives a
// *StateError (state, reason, next restart); an unknown one ErrNotFound.
func (m *Module) Inspect(name string) (pkg.VMInfo, error) {
	ctx, cancel, _, err := m.op()
	if err != nil {
		return pkg.VMInfo{}, err
	}
	defer cancel()
	m.mu.Lock()
	s := m.vms[name]
	var st Status
	var mc Machine
	if s != nil {
		st, mc = s.status(), s.rec.Machine
	}
	m.mu.Unlock()
	if s == nil {
		return pkg.VMInfo{}, fmt.Errorf("vm %s: %w", name, ErrNotFound)
	}
	if st.State != StateRunning {
		return pkg.VMInfo{}, &StateError{Name: name, State: st.State, Reason: st.Reason, NextRestart: st.NextRestart}
	}
	info, err := m.hv.Info(ctx, mc)
	if err != nil {
		return pkg.VMInfo{}, err
	}
	return pkg.VMInfo{CPU: int64(info.CPU), Memory: info.MemoryMiB}, nil
}

// Exists implements pkg.VMModule: the VM runs or keep-alive will start it
// again. A NoKeepAlive VM that ended does not exist any more (its record
// and logs stay until Delete).
func (m *Module) Exists(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.vms[name]
	return s != nil && s.state != StateStopped
}

// Logs implements pkg.VMModule: the tail (Config.LogTailBytes) of the
// VM's serial console.
func (m *Module) Logs(name string) (string, error) {
	m.mu.Lock()
	s := m.vms[name]
	var path string
	if s != nil {
		path = s.rec.Machine.ConsoleLog
	}
	m.mu.Unlock()
	if s == nil {
		return "", fmt.Errorf("vm %s: %w", name, ErrNotFound)
	}
	return consoleTail(path, m.cfg.LogTailBytes)
}

// Status implements Manager.
func (m *Module) Status(_ context.Context, name string) (Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.vms[name]
	if s == nil {
		return Status{}, fmt.Errorf("vm %s: %w", name, ErrNotFound)
	}
	return s.status(), nil
}

// List implements Manager.
func (m *Module) List(context.Context) ([]Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Status, 0, len(m.vms))
	for _, n := range slices.Sorted(maps.Keys(m.vms)) {
		out = append(out, m.vms[n].status())
	}
	return out, nil
}

// Delete implements pkg.VMModule: press the power button, give the guest
// StopTimeout, stop QEMU, remove its record, console log and socket. The
// taps stay (the network module owns them). Deleting an unknown VM is not
// an error.
func (m *Module) Delete(name string) error {
	ctx, cancel, _, err := m.op()
	if err != nil {
		return err
	}
	defer cancel()
	if err := ValidateName(name); err != nil {
		return err
	}
	unlock := m.locks.Lock(name)
	defer unlock()
	return m.deleteLocked(ctx, name)
}

func (m *Module) deleteLocked(ctx context.Context, name string) error {
	m.mu.Lock()
	s := m.vms[name]
	m.mu.Unlock()
	var rec record
	switch {
	case s != nil:
		rec = s.rec
	default:
		r, err := m.store.load(name)
		if err != nil { // nothing usable: remove what may be left
			if err := m.l.Stop(ctx, m.service(name)); err != nil {
				return fmt.Errorf("vm %s: %w", name, err)
			}
			return m.store.remove(name)
		}
		rec = r
	}
	rec.Deleting = true
	if err := m.store.save(rec); err != nil {
		return err
	}
	m.stopGracefully(ctx, rec)
	if err := m.l.Stop(ctx, rec.Service); err != nil {
		return fmt.Errorf("vm %s: %w", name, err)
	}
	if err := os.Remove(rec.Machine.QMPSocket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("vm %s: %w", name, err)
	}
	if err := m.store.remove(name); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.vms, name)
	m.mu.Unlock()
	m.log.InfoContext(ctx, "vm deleted", "vm", name)
	return nil
}

// stopGracefully presses the power button of a running VM and waits up to
// StopTimeout for its QEMU to end.
func (m *Module) stopGracefully(ctx context.Context, rec record) {
	if m.cfg.StopTimeout <= 0 {
		return
	}
	p, err := m.l.Status(ctx, rec.Service)
	if err != nil || !p.Running {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, m.cfg.StopTimeout)
	defer cancel()
	if err := m.hv.Powerdown(pctx, rec.Machine); err != nil {
		return
	}
	for pctx.Err() == nil {
		if p, err := m.l.Status(pctx, rec.Service); err != nil || !p.Running {
			return
		}
		select {
		case <-pctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}
