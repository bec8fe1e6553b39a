package vm

import (
	"context"
	"errors"
	"time"
)

// State is where a VM is in its life.
type State string

// States of a VM.
const (
	// StateRunning: its QEMU process runs.
	StateRunning State = "running"
	// StateBackoff: its QEMU ended and keep-alive starts it again at
	// Status.NextRestart.
	StateBackoff State = "backoff"
	// StateStopped: its QEMU ended and it is not restarted (NoKeepAlive).
	// The caller reads its logs and calls Delete.
	StateStopped State = "stopped"
)

// Status is the module's view of one VM, beyond what the seed's VMInfo
// carries.
type Status struct {
	Name  string
	State State
	// Reason is why the last QEMU ended (empty while the first runs).
	Reason string
	// Restarts counts keep-alive restarts since the module started.
	Restarts int
	// NextRestart is when a VM in StateBackoff is started again.
	NextRestart time.Time
	// Since is when the current state began.
	Since time.Time
	// PID of the QEMU process (0 when none).
	PID int
	// Accel is the acceleration the VM was started with (kvm or tcg).
	Accel string
	// Machine is the QEMU machine type (microvm or q35).
	Machine string
	// CPU and MemoryMiB are the configured size.
	CPU       int
	MemoryMiB int64
}

// Machine types.
const (
	// MachineMicroVM boots a kernel directly (virtio-mmio devices).
	MachineMicroVM = "microvm"
	// MachineQ35 boots a disk image through its firmware (virtio-pci).
	MachineQ35 = "q35"
)

// Machine is a VM resolved for a hypervisor: every path checked, the
// kernel command line complete, the disks in guest order.
type Machine struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Accel   string `json:"accel"`
	CPU     int    `json:"cpu"`
	Memory  int64  `json:"memory_mib"`
	Kernel  string `json:"kernel,omitempty"`
	Initrd  string `json:"initrd,omitempty"`
	Cmdline string `json:"cmdline,omitempty"`
	// Disks in guest order: /dev/vda first.
	Disks []Disk `json:"disks,omitempty"`
	Nics  []Nic  `json:"nics,omitempty"`
	// QMPSocket is the path of the QMP unix socket.
	QMPSocket string `json:"qmp_socket"`
	// ConsoleLog is the file the serial console is appended to.
	ConsoleLog string `json:"console_log"`
	// NetNS is the named network namespace QEMU runs in ("" = current).
	NetNS string `json:"netns,omitempty"`
}

// Disk is one block device of a Machine.
type Disk struct {
	Path     string `json:"path"`
	ReadOnly bool   `json:"read_only,omitempty"`
	Root     bool   `json:"root,omitempty"`
}

// Nic is one network interface of a Machine.
type Nic struct {
	Tap string `json:"tap"`
	MAC string `json:"mac,omitempty"`
}

// MachineInfo is what a running VM reports about itself.
type MachineInfo struct {
	// CPU is the number of vCPUs, MemoryMiB the base memory.
	CPU       int
	MemoryMiB int64
	// Status is QEMU's run state ("running", "paused", "shutdown"...).
	Status string
	// KVM tells whether the VM runs under KVM.
	KVM bool
}

// Hypervisor builds and talks to one kind of VM monitor. The module
// launches the command it builds through a Launcher, so the VM outlives
// the agent. Implementations must be safe for concurrent use.
type Hypervisor interface {
	// Probe decides the acceleration for want (AccelAuto, AccelKVM or
	// AccelTCG) by really starting a tiny VM; it fails, wrapping
	// errors.ErrUnsupported, when no acceleration works.
	Probe(ctx context.Context, want string) (string, error)
	// Command returns the argv that runs m in the foreground.
	Command(m Machine) ([]string, error)
	// Info asks the running VM m about itself.
	Info(ctx context.Context, m Machine) (MachineInfo, error)
	// Powerdown presses the VM's power button (the guest may ignore it).
	Powerdown(ctx context.Context, m Machine) error
}

// Proc is the state of a launched process.
type Proc struct {
	// PID is the process id while it runs.
	PID int
	// Running tells whether the process runs.
	Running bool
	// Exit says how it ended, when it did ("exited 1", "signal: killed").
	Exit string
}

// ErrNoService is returned by Launcher.Status for a name it does not know.
var ErrNoService = errors.New("no such service")

// Launcher runs the QEMU processes so that they outlive the agent: zinit
// on a node (ZinitLauncher), detached processes in development
// (ProcessLauncher). It never restarts a process by itself: keep-alive is
// the module's. Implementations must be safe for concurrent use.
type Launcher interface {
	// Start runs argv as service name. A service of that name that runs
	// already is an error; one that ended is replaced.
	Start(ctx context.Context, name string, argv []string) error
	// Stop stops the service (SIGTERM, then SIGKILL), waits until its
	// process is gone and forgets it; nil when it does not exist.
	Stop(ctx context.Context, name string) error
	// Status returns the state of the service; ErrNoService when unknown.
	Status(ctx context.Context, name string) (Proc, error)
	// List returns the names of the services that start with prefix.
	List(ctx context.Context, prefix string) ([]string, error)
	// Output returns the last lines the process wrote to stderr and
	// stdout, for error messages (best effort).
	Output(ctx context.Context, name string) string
}

// DiskArea tells where vdisks live (pkg/storage's VDiskDirs). Disks of a
// VM must be files below one of these directories.
type DiskArea interface {
	VDiskDirs(ctx context.Context) ([]string, error)
}

// Dirs is a fixed DiskArea.
type Dirs []string

// VDiskDirs implements DiskArea.
func (d Dirs) VDiskDirs(context.Context) ([]string, error) { return d, nil }
