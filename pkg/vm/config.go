package vm

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// Acceleration modes of Config.Accel.
const (
	// AccelAuto uses KVM when a probe VM really runs under it (and faster
	// than under emulation), TCG otherwise.
	AccelAuto = "auto"
	// AccelKVM requires KVM; the module does not start without it.
	AccelKVM = "kvm"
	// AccelTCG always emulates (QEMU's tiny code generator).
	AccelTCG = "tcg"
)

// Limits of the original module (spec §2.1).
const (
	// MinMemoryMiB is the smallest memory a VM may have.
	MinMemoryMiB = 512
	// MaxCPU is the largest vCPU count a VM may have.
	MaxCPU = 32
	// maxNameLen bounds VM names: they become file, socket and service
	// names.
	maxNameLen = 64
	// maxSocketPath is the longest unix socket path.
	maxSocketPath = 107
)

// OriginalKernelArgs are the default kernel arguments of the original
// (Firecracker) module (spec §2.2).
const OriginalKernelArgs = "ro console=ttyS0 noapic reboot=k panic=1 pci=off nomodules"

// DefaultKernelArgs are the kernel arguments of a VM whose KernelArgs is
// empty: OriginalKernelArgs without "noapic", because QEMU's microvm routes
// the virtio-mmio interrupts through the IOAPIC (with noapic the guest
// never sees its disks and NICs).
const DefaultKernelArgs = "ro console=ttyS0 reboot=k panic=1 pci=off nomodules"

// Config configures the VM module of one node.
type Config struct {
	// Root holds one directory per VM (its record vm.json and its serial
	// console log). It must be persistent across agent restarts.
	Root string
	// RunDir holds the QMP sockets. Unix socket paths are limited to 107
	// bytes, so keep it short.
	RunDir string
	// QEMU is the qemu-system-x86_64 binary.
	QEMU string
	// Accel is AccelAuto, AccelKVM or AccelTCG.
	Accel string
	// HostNS is the named network namespace where the VMs' taps live and
	// QEMU runs; empty means the namespace of this process. The
	// development grid and tests set it.
	HostNS string
	// ServicePrefix is put in front of a VM's name to name its supervised
	// QEMU service ("qemu@" on a node; tests add testutil.Prefix()).
	ServicePrefix string
	// ImageDirs are directories (flist mounts) from which read-only disks
	// may be attached in addition to the vdisk area.
	ImageDirs []string

	// NodeMemoryMiB and NodeCPUs bound a single VM; 0 reads them from the
	// host.
	NodeMemoryMiB int64
	NodeCPUs      int

	// RestartDelay is the first keep-alive restart delay; it doubles at
	// each crash up to MaxRestartDelay, and is reset after a VM ran for
	// HealthyAfter.
	RestartDelay    time.Duration
	MaxRestartDelay time.Duration
	HealthyAfter    time.Duration
	// PollInterval is how often the module checks its QEMU processes.
	PollInterval time.Duration
	// StartTimeout bounds the wait for a new QEMU's QMP socket.
	StartTimeout time.Duration
	// StopTimeout is how long Delete waits for the guest to power down
	// after an ACPI power button press before stopping QEMU.
	StopTimeout time.Duration
	// ProbeTimeout bounds one run of the acceleration probe VM.
	ProbeTimeout time.Duration
	// OpTimeout bounds each seed method call.
	OpTimeout time.Duration

	// LogMaxBytes is the size at which a console log is rotated (one old
	// file is kept); LogTailBytes is how much of it Logs returns.
	LogMaxBytes  int64
	LogTailBytes int64
}

// DefaultConfig returns the configuration of a node.
func DefaultConfig() Config {
	return Config{
		Root:            "/var/cache/modules/vmd",
		RunDir:          "/run/zos/vm",
		QEMU:            "qemu-system-x86_64",
		Accel:           AccelAuto,
		ServicePrefix:   "qemu@",
		RestartDelay:    10 * time.Second,
		MaxRestartDelay: 5 * time.Minute,
		HealthyAfter:    10 * time.Minute,
		PollInterval:    2 * time.Second,
		StartTimeout:    30 * time.Second,
		StopTimeout:     10 * time.Second,
		ProbeTimeout:    3 * time.Second,
		OpTimeout:       2 * time.Minute,
		LogMaxBytes:     1 << 20,
		LogTailBytes:    64 << 10,
	}
}

// ErrInvalidConfig is wrapped by every Config.Validate error.
var ErrInvalidConfig = errors.New("invalid vm config")

// Validate checks the configuration.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("vm config: %s: %w", fmt.Sprintf(format, a...), ErrInvalidConfig)
	}
	switch {
	case c.Root == "" || !filepath.IsAbs(c.Root):
		return bad("Root must be an absolute path")
	case c.RunDir == "" || !filepath.IsAbs(c.RunDir):
		return bad("RunDir must be an absolute path")
	case len(c.RunDir)+len("/x.qmp") > maxSocketPath-16:
		return bad("RunDir %q too long for unix sockets", c.RunDir)
	case c.QEMU == "":
		return bad("QEMU is required")
	case c.ServicePrefix == "":
		return bad("ServicePrefix is required (services without it are stopped)")
	case c.Accel != AccelAuto && c.Accel != AccelKVM && c.Accel != AccelTCG:
		return bad("Accel %q is not auto, kvm or tcg", c.Accel)
	case c.NodeMemoryMiB < 0 || c.NodeCPUs < 0:
		return bad("node limits must not be negative")
	case c.RestartDelay <= 0 || c.MaxRestartDelay < c.RestartDelay:
		return bad("RestartDelay must be > 0 and <= MaxRestartDelay")
	case c.HealthyAfter <= 0 || c.PollInterval <= 0 || c.StartTimeout <= 0 ||
		c.StopTimeout < 0 || c.ProbeTimeout <= 0 || c.OpTimeout <= 0:
		return bad("durations must be > 0")
	case c.LogMaxBytes <= 0 || c.LogTailBytes <= 0:
		return bad("log sizes must be > 0")
	}
	for _, d := range c.ImageDirs {
		if !filepath.IsAbs(d) {
			return bad("image dir %q is not absolute", d)
		}
	}
	return nil
}
