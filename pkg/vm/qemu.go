package vm

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/zos-go/zos/internal/qmp"
)

// QEMU is the Hypervisor on Debian's qemu-system-x86_64.
type QEMU struct {
	// Binary is the qemu-system-x86_64 to run.
	Binary string
	// Nsenter runs QEMU in a Machine's NetNS ("nsenter" by default).
	Nsenter string
	cfg     Config
	log     *slog.Logger
}

var _ Hypervisor = (*QEMU)(nil)

// NewQEMU returns the QEMU hypervisor of cfg (Binary = cfg.QEMU).
func NewQEMU(cfg Config, log *slog.Logger) *QEMU {
	return &QEMU{Binary: cfg.QEMU, Nsenter: "nsenter", cfg: cfg, log: log}
}

// qemuEscape doubles the commas of a value inside a QEMU option list.
func qemuEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// Command implements Hypervisor.
//
// Both machines: no default devices, no display, -no-reboot (a guest reboot
// or panic ends QEMU, so keep-alive sees it), the serial console appended to
// m.ConsoleLog, QMP on m.QMPSocket. microvm boots m.Kernel directly with
// virtio-mmio devices; q35 boots the root disk through SeaBIOS with
// virtio-pci devices.
func (q *QEMU) Command(m Machine) ([]string, error) {
	if m.Type != MachineMicroVM && m.Type != MachineQ35 {
		return nil, fmt.Errorf("vm %s: machine type %q: %w", m.Name, m.Type, ErrInvalidVM)
	}
	if m.Accel != AccelKVM && m.Accel != AccelTCG {
		return nil, fmt.Errorf("vm %s: acceleration %q: %w", m.Name, m.Accel, ErrInvalidVM)
	}
	if m.Type == MachineMicroVM && m.Kernel == "" {
		return nil, fmt.Errorf("vm %s: microvm needs a kernel: %w", m.Name, ErrInvalidVM)
	}
	var argv []string
	if m.NetNS != "" {
		argv = append(argv, q.Nsenter, "--net=/run/netns/"+m.NetNS, "--")
	}
	argv = append(argv, q.Binary,
		"-name", qemuEscape(m.Name),
		"-machine", m.Type+",accel="+m.Accel,
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-smp", strconv.Itoa(m.CPU),
		"-m", strconv.FormatInt(m.Memory, 10)+"M",
		"-chardev", "file,id=console,append=on,path="+qemuEscape(m.ConsoleLog),
		"-serial", "chardev:console",
		"-qmp", "unix:"+qemuEscape(m.QMPSocket)+",server=on,wait=off",
	)
	if m.Accel == AccelKVM {
		argv = append(argv, "-cpu", "host")
	} else {
		argv = append(argv, "-cpu", "max")
	}
	if m.Kernel != "" {
		cmdline := m.Cmdline
		if m.Type == MachineMicroVM && m.Accel == AccelTCG && !strings.Contains(cmdline, "tsc_early_khz=") {
			if khz := hostTSCkHz(); khz > 0 {
				cmdline += " tsc_early_khz=" + strconv.Itoa(khz)
			}
		}
		argv = append(argv, "-kernel", m.Kernel, "-append", cmdline)
		if m.Initrd != "" {
			argv = append(argv, "-initrd", m.Initrd)
		}
	}
	blk, nic := "virtio-blk-device", "virtio-net-device"
	if m.Type == MachineQ35 {
		blk, nic = "virtio-blk-pci", "virtio-net-pci"
	}
	for i, d := range m.Disks {
		id := "disk" + strconv.Itoa(i)
		drive := "if=none,id=" + id + ",format=raw,file=" + qemuEscape(d.Path)
		if d.ReadOnly {
			drive += ",readonly=on"
		}
		dev := blk + ",drive=" + id
		if m.Type == MachineQ35 && d.Root {
			dev += ",bootindex=0"
		}
		argv = append(argv, "-drive", drive, "-device", dev)
	}
	for i, n := range m.Nics {
		id := "net" + strconv.Itoa(i)
		netdev := "tap,id=" + id + ",ifname=" + n.Tap + ",script=no,downscript=no"
		if m.Accel == AccelKVM {
			netdev += ",vhost=on"
		}
		mac := n.MAC
		if mac == "" {
			mac = DefaultMAC(m.Name, n.Tap)
		}
		argv = append(argv, "-netdev", netdev, "-device", nic+",netdev="+id+",mac="+mac)
	}
	return argv, nil
}

// hostTSCkHz returns the host's CPU frequency in kHz (0 when unknown),
// read once. Under TCG the guest's TSC runs at the host's rate; microvm has
// no HPET nor ACPI PM timer to calibrate it against, and on a loaded host
// the PIT calibration fails and the guest hangs early in boot, so the
// frequency is handed to the guest kernel (tsc_early_khz=).
var hostTSCkHz = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) != "cpu MHz" {
			continue
		}
		mhz, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || mhz <= 0 {
			return 0
		}
		return int(mhz * 1000)
	}
	return 0
})

// DefaultMAC is the MAC of an interface given without one: locally
// administered, derived from the VM and tap names so that it is stable
// across restarts and differs between VMs (QEMU's default is the same
// for every VM).
func DefaultMAC(vmName, tap string) string {
	h := sha256.Sum256([]byte(vmName + "\x00" + tap))
	mac := net.HardwareAddr{0x02, h[0], h[1], h[2], h[3], h[4]}
	return mac.String()
}

// Info implements Hypervisor over QMP.
func (q *QEMU) Info(ctx context.Context, m Machine) (MachineInfo, error) {
	c, err := qmp.Dial(ctx, m.QMPSocket)
	if err != nil {
		return MachineInfo{}, fmt.Errorf("vm %s: %w", m.Name, err)
	}
	defer c.Close()
	st, err := c.QueryStatus(ctx)
	if err != nil {
		return MachineInfo{}, fmt.Errorf("vm %s: %w", m.Name, err)
	}
	cpus, err := c.QueryCPUs(ctx)
	if err != nil {
		return MachineInfo{}, fmt.Errorf("vm %s: %w", m.Name, err)
	}
	mem, err := c.QueryMemory(ctx)
	if err != nil {
		return MachineInfo{}, fmt.Errorf("vm %s: %w", m.Name, err)
	}
	kvm, err := c.QueryKVM(ctx)
	if err != nil {
		return MachineInfo{}, fmt.Errorf("vm %s: %w", m.Name, err)
	}
	return MachineInfo{CPU: len(cpus), MemoryMiB: mem.BaseMemory >> 20, Status: st.Status, KVM: kvm.Enabled}, nil
}

// Powerdown implements Hypervisor: QMP system_powerdown.
func (q *QEMU) Powerdown(ctx context.Context, m Machine) error {
	c, err := qmp.Dial(ctx, m.QMPSocket)
	if err != nil {
		return fmt.Errorf("vm %s: %w", m.Name, err)
	}
	defer c.Close()
	if err := c.SystemPowerdown(ctx); err != nil {
		return fmt.Errorf("vm %s: %w", m.Name, err)
	}
	return nil
}
