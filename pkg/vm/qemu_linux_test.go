package vm_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/zos-go/zos/internal/netns"
	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/vm"
	"github.com/zos-go/zos/pkg/vm/vmtest"
	"github.com/zos-go/zos/pkg/zinit"
	"github.com/zos-go/zos/pkg/zinit/zinittest"
)

// bootTimeout bounds a TCG boot to the guest marker; a loaded CI machine
// makes TCG boots slow.
const bootTimeout = 3 * time.Minute

// rootEnv is a real module: QEMU under a private zinit, taps in a test
// network namespace.
type rootEnv struct {
	m       *vm.Module
	cfg     vm.Config
	ns      string
	zc      *zinit.Client
	zd      *zinittest.Daemon
	kernel  string
	initrd  string
	area    string
	images  string
	stopped func()
}

var (
	guestOnce   sync.Once
	guestKernel vmtest.GuestKernel
	guestInitrd []byte
	guestErr    error
)

func newRootEnv(t testing.TB) *rootEnv {
	t.Helper()
	testutil.RequireRoot(t, "qemu-system-x86_64", "nsenter", "apt-get", "dpkg-deb", "busybox", "ping")
	guestOnce.Do(func() {
		guestKernel = vmtest.Kernel(t)
		guestInitrd, guestErr = vmtest.BuildInitramfs(guestKernel)
	})
	if guestErr != nil {
		t.Fatalf("initramfs: %v", guestErr)
	}
	dir := testutil.TempDir(t)
	e := &rootEnv{kernel: guestKernel.Vmlinuz, initrd: filepath.Join(dir, "initrd.gz"),
		area: filepath.Join(dir, "vdisks"), images: filepath.Join(dir, "images")}
	for _, d := range []string{e.area, e.images} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(e.initrd, guestInitrd, 0o644); err != nil {
		t.Fatal(err)
	}
	e.ns = testutil.NetNS(t)
	e.zc, e.zd = zinittest.Start(t)
	run, err := os.MkdirTemp("", "zvm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(run) })
	cfg := vm.DefaultConfig()
	cfg.Root = filepath.Join(dir, "root")
	cfg.RunDir = run
	cfg.HostNS = e.ns
	cfg.ServicePrefix = testutil.Prefix() + "-qemu@"
	cfg.ImageDirs = []string{e.images}
	cfg.PollInterval = 200 * time.Millisecond
	cfg.RestartDelay, cfg.MaxRestartDelay = time.Second, 4*time.Second
	cfg.StopTimeout = 0 // the busybox guest ignores the power button
	cfg.ProbeTimeout = 10 * time.Second
	e.cfg = cfg
	e.start(t)
	t.Cleanup(func() { e.cleanup(t) })
	return e
}

// start creates a module on e's state and serves it.
func (e *rootEnv) start(t testing.TB) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := vm.New(e.cfg, vm.NewQEMU(e.cfg, log), vm.ZinitLauncher{Client: e.zc}, vm.Dirs{e.area}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx) }()
	for m.Accel() == "" {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("Serve: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	e.m = m
	e.stopped = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

// cleanup deletes every VM and stops the module.
func (e *rootEnv) cleanup(t testing.TB) {
	if e.m != nil {
		l, _ := e.m.List(context.Background())
		for _, st := range l {
			if err := e.m.Delete(st.Name); err != nil {
				t.Errorf("cleanup: delete %s: %v", st.Name, err)
			}
		}
	}
	if e.stopped != nil {
		e.stopped()
	}
}

// bridgeTap makes, in the test namespace, a bridge with address gw and a
// tap on it, as the network module would.
func (e *rootEnv) bridgeTap(t *testing.T, gw string) string {
	t.Helper()
	br, tap := testutil.Name(t, "br"), testutil.Name(t, "tap")
	addr, err := netlink.ParseAddr(gw)
	if err != nil {
		t.Fatal(err)
	}
	err = netns.Do(netns.Path(e.ns), func() error {
		b := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: br}}
		if err := netlink.LinkAdd(b); err != nil {
			return err
		}
		if err := netlink.AddrAdd(b, addr); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(b); err != nil {
			return err
		}
		tp := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: tap}, Mode: netlink.TUNTAP_MODE_TAP, Flags: netlink.TUNTAP_DEFAULTS}
		if err := netlink.LinkAdd(tp); err != nil {
			return err
		}
		l, err := netlink.LinkByName(tap)
		if err != nil {
			return err
		}
		if err := netlink.LinkSetMaster(l, b); err != nil {
			return err
		}
		return netlink.LinkSetUp(l)
	})
	if err != nil {
		t.Fatalf("bridge and tap: %v", err)
	}
	return tap
}

func (e *rootEnv) tapExists(t *testing.T, tap string) bool {
	ok, err := tapExists(e.ns, tap)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// waitLog waits until the console of name matches re and returns the match.
func (e *rootEnv) waitLog(t *testing.T, name string, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(bootTimeout)
	for {
		logs, err := e.m.Logs(name)
		if m := re.FindStringSubmatch(logs); err == nil && m != nil {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("console of %s: no %q after %v (err %v):\n%s", name, re, bootTimeout, err, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *rootEnv) guestVM(name string) pkg.VM {
	return pkg.VM{Name: name, CPU: 1, Memory: 512, KernelImage: e.kernel, InitrdImage: e.initrd,
		KernelArgs: "console=ttyS0 reboot=k panic=1 quiet"}
}

var markerRE = regexp.MustCompile(regexp.QuoteMeta(vmtest.Marker))

func TestQEMUSuite(t *testing.T) {
	testutil.CheckLeaks(t)
	vmtest.Suite(t, func(t *testing.T) vmtest.Harness {
		e := newRootEnv(t)
		outside := testutil.TempDir(t)
		mem, err := memTotalMiB()
		if err != nil {
			t.Fatal(err)
		}
		// Empty KernelArgs: the module's default must boot the guest.
		return vmtest.Harness{VMs: e.m, Kernel: e.kernel, Initrd: e.initrd, Marker: vmtest.Marker,
			DiskDir: e.area, Outside: outside, NodeMemoryMiB: mem, BootTimeout: bootTimeout}
	})
}

// TestQEMUGuest boots one VM with 2 vCPUs, 640 MiB, a vdisk (rw), an image
// disk (ro) and a tap with an old-style ip= configuration, and checks what
// the guest sees and that it answers ping and HTTP from the host side of
// the bridge. Then Delete removes QEMU and its files but not the tap.
func TestQEMUGuest(t *testing.T) {
	testutil.CheckLeaks(t)
	e := newRootEnv(t)
	tap := e.bridgeTap(t, "10.77.1.1/24")
	vdisk := filepath.Join(e.area, "vd1.img")
	image := filepath.Join(e.images, "image.iso")
	for p, head := range map[string]string{vdisk: "ZOSDISK-RW", image: "ZOSIMAGE-RO"} {
		if err := os.WriteFile(p, []byte(head), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, 8<<20); err != nil {
			t.Fatal(err)
		}
	}
	v := e.guestVM("guest")
	v.CPU, v.Memory = 2, 640
	v.Disks = []pkg.VMDisk{{Path: vdisk}, {Path: image, ReadOnly: true}}
	mac := "02:00:00:aa:bb:01"
	v.Network = pkg.VMNetworkInfo{
		Ifaces:      []pkg.VMIface{{Tap: tap, MAC: mac, IP4AddressCIDR: cidr(t, "10.77.1.2/24"), IP4GatewayIP: net.ParseIP("10.77.1.1")}},
		Nameservers: []net.IP{net.ParseIP("10.77.1.53"), net.ParseIP("10.77.1.54")},
	}
	start := time.Now()
	if err := e.m.Run(v); err != nil {
		t.Fatal(err)
	}
	e.waitLog(t, "guest", markerRE)
	t.Logf("booted in %v", time.Since(start))
	logs, _ := e.m.Logs("guest")

	info, err := e.m.Inspect("guest")
	if err != nil || info.CPU != 2 || info.Memory != 640 {
		t.Errorf("Inspect = %+v, %v; want 2 vCPUs, 640 MiB", info, err)
	}
	m := regexp.MustCompile(`ZOSVM cpus=(\d+) mem_kb=(\d+)`).FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("no cpu line:\n%s", logs)
	}
	memKB, _ := strconv.Atoi(m[2])
	if m[1] != "2" || memKB > 640<<10 || memKB < 500<<10 {
		t.Errorf("guest sees %s cpus and %d kB; want 2 and a little under 640 MiB", m[1], memKB)
	}
	for _, want := range []string{
		"ZOSVM disk vda sectors=16384 ro=0 head=ZOSDISK-RW",
		"ZOSVM disk vdb sectors=16384 ro=1 head=ZOSIMAGE-RO",
		"ip=10.77.1.2::10.77.1.1:255.255.255.0:::off:10.77.1.53:10.77.1.54:",
		"ZOSVM iface eth0 mac=" + mac + " addrs=10.77.1.2/24",
		"ZOSVM dns 10.77.1.53 10.77.1.54",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("console lacks %q:\n%s", want, logs)
		}
	}
	if out, err := testutil.InNetNS(t, e.ns, "ping", "-c", "1", "-W", "10", "10.77.1.2"); err != nil {
		t.Errorf("ping the guest: %v\n%s", err, out)
	}
	if out, err := httpGet(e.ns, "10.77.1.2:80"); err != nil || !strings.Contains(out, "hello from the zos test guest") {
		t.Errorf("http from the host side: %q, %v", out, err)
	}

	st, _ := e.m.Status(t.Context(), "guest")
	if st.Accel != vm.AccelTCG && st.Accel != vm.AccelKVM || st.Machine != vm.MachineMicroVM || st.PID == 0 {
		t.Errorf("status = %+v", st)
	}
	pid := st.PID
	if err := e.m.Delete("guest"); err != nil {
		t.Fatal(err)
	}
	if testutil.ProcessAlive(pid) {
		t.Errorf("qemu %d still runs after Delete", pid)
	}
	for _, p := range []string{filepath.Join(e.cfg.Root, "vms", "guest"), filepath.Join(e.cfg.RunDir, "guest.qmp")} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after Delete: %v", p, err)
		}
	}
	if ok, _ := e.zc.Exists(e.cfg.ServicePrefix + "guest"); ok {
		t.Error("zinit service left after Delete")
	}
	if !e.tapExists(t, tap) {
		t.Error("Delete removed the tap (the network module owns it)")
	}
	if _, err := os.Stat(vdisk); err != nil {
		t.Errorf("Delete removed the vdisk: %v", err)
	}
}

// TestQEMUNewStyleNetwork boots a VM with two interfaces configured by the
// new-style net_eth<i> arguments and pings both.
func TestQEMUNewStyleNetwork(t *testing.T) {
	testutil.CheckLeaks(t)
	e := newRootEnv(t)
	tap0, tap1 := e.bridgeTap(t, "10.77.2.1/24"), e.bridgeTap(t, "10.77.3.1/24")
	v := e.guestVM("newstyle")
	v.Network = pkg.VMNetworkInfo{NewStyle: true, Nameservers: []net.IP{net.ParseIP("10.77.2.53")},
		Ifaces: []pkg.VMIface{
			{Tap: tap0, IP4AddressCIDR: cidr(t, "10.77.2.2/24"), IP4GatewayIP: net.ParseIP("10.77.2.1"), IP4Net: cidr(t, "10.77.0.0/16"),
				IP6AddressCIDR: cidr(t, "fd77:2::2/64"), IP6GatewayIP: net.ParseIP("fd77:2::1")},
			{Tap: tap1, IP4AddressCIDR: cidr(t, "10.77.3.2/24"), IP4GatewayIP: net.ParseIP("10.77.3.1"), Public: true},
		}}
	if err := e.m.Run(v); err != nil {
		t.Fatal(err)
	}
	e.waitLog(t, "newstyle", markerRE)
	logs, _ := e.m.Logs("newstyle")
	for _, want := range []string{
		"net_eth0=10.77.2.2/24,10.77.2.1,10.77.0.0/16,fd77:2::2/64,fd77:2::1,priv",
		"net_eth1=10.77.3.2/24,10.77.3.1,slaac,public",
		"net_dns=10.77.2.53",
		"ZOSVM iface eth0 mac=" + vm.DefaultMAC("newstyle", tap0),
		"ZOSVM iface eth1 mac=" + vm.DefaultMAC("newstyle", tap1),
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("console lacks %q:\n%s", want, logs)
		}
	}
	for _, ip := range []string{"10.77.2.2", "10.77.3.2"} {
		if out, err := testutil.InNetNS(t, e.ns, "ping", "-c", "1", "-W", "10", ip); err != nil {
			t.Errorf("ping %s: %v\n%s", ip, err, out)
		}
	}
}

// TestQEMUKeepAlive kills QEMU with SIGKILL: the module sees it, shows the
// reason, and starts it again after the backoff delay; the guest boots
// again. A NoKeepAlive VM killed the same way stays stopped.
func TestQEMUKeepAlive(t *testing.T) {
	testutil.CheckLeaks(t)
	e := newRootEnv(t)
	if err := e.m.Run(e.guestVM("crashy")); err != nil {
		t.Fatal(err)
	}
	once := e.guestVM("once")
	once.NoKeepAlive = true
	if err := e.m.Run(once); err != nil {
		t.Fatal(err)
	}
	e.waitLog(t, "crashy", markerRE)
	st, _ := e.m.Status(t.Context(), "crashy")
	st1, _ := e.m.Status(t.Context(), "once")
	for _, pid := range []int{st.PID, st1.PID} {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	var seen vm.Status
	testutil.WaitFor(t, 30*time.Second, "crash seen", func() error {
		seen, _ = e.m.Status(t.Context(), "crashy")
		if seen.State == vm.StateBackoff || seen.Restarts > 0 {
			return nil
		}
		return fmt.Errorf("state %s", seen.State)
	})
	if seen.State == vm.StateBackoff && !strings.Contains(strings.ToLower(seen.Reason), "kill") {
		t.Errorf("reason %q does not say killed", seen.Reason)
	}
	testutil.WaitFor(t, 30*time.Second, "restart", func() error {
		st, _ := e.m.Status(t.Context(), "crashy")
		if st.State != vm.StateRunning || st.Restarts != 1 || st.PID == 0 || st.PID == seen.PID {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	// The console keeps both boots.
	e.waitLog(t, "crashy", regexp.MustCompile(`(?s)`+vmtest.Marker+`.*`+vmtest.Marker))
	if _, err := e.m.Inspect("crashy"); err != nil {
		t.Errorf("Inspect after restart: %v", err)
	}
	testutil.WaitFor(t, 30*time.Second, "once stopped", func() error {
		if st, _ := e.m.Status(t.Context(), "once"); st.State != vm.StateStopped {
			return fmt.Errorf("state %s", st.State)
		}
		return nil
	})
	if e.m.Exists("once") {
		t.Error("a stopped NoKeepAlive VM exists")
	}
	if st, _ := e.m.Status(t.Context(), "once"); st.Restarts != 0 {
		t.Errorf("NoKeepAlive VM restarted: %+v", st)
	}
}

// TestQEMUAgentRestart stops the module and its zinit: the QEMU process
// keeps running; a new module adopts it (same pid, QMP answers).
func TestQEMUAgentRestart(t *testing.T) {
	testutil.CheckLeaks(t)
	e := newRootEnv(t)
	if err := e.m.Run(e.guestVM("steady")); err != nil {
		t.Fatal(err)
	}
	st, _ := e.m.Status(t.Context(), "steady")
	e.stopped()
	e.zd.Kill()
	e.zd.Restart()
	if !testutil.ProcessAlive(st.PID) {
		t.Fatal("qemu died with the agent")
	}
	e.start(t)
	got, err := e.m.Status(t.Context(), "steady")
	if err != nil || got.State != vm.StateRunning || got.PID != st.PID {
		t.Fatalf("after restart: %+v, %v; want running pid %d", got, err, st.PID)
	}
	if info, err := e.m.Inspect("steady"); err != nil || info.Memory != 512 {
		t.Errorf("Inspect over QMP after restart: %+v, %v", info, err)
	}
	e.waitLog(t, "steady", markerRE)
}

// TestQEMUFirmwareBoot boots a disk image by itself (q35, SeaBIOS): a boot
// sector that writes a marker on the serial port.
func TestQEMUFirmwareBoot(t *testing.T) {
	testutil.CheckLeaks(t)
	e := newRootEnv(t)
	img := filepath.Join(e.area, "boot.img")
	sector := make([]byte, 1<<20)
	copy(sector, bootSector)
	sector[510], sector[511] = 0x55, 0xaa
	if err := os.WriteFile(img, sector, 0o644); err != nil {
		t.Fatal(err)
	}
	v := pkg.VM{Name: "firmware", CPU: 1, Memory: 512, Disks: []pkg.VMDisk{{Path: img, Root: true}}}
	if err := e.m.Run(v); err != nil {
		t.Fatal(err)
	}
	e.waitLog(t, "firmware", regexp.MustCompile("ZOSVM-BOOTSECTOR"))
	if st, _ := e.m.Status(t.Context(), "firmware"); st.Machine != vm.MachineQ35 {
		t.Errorf("machine %s, want q35", st.Machine)
	}
}

// bootSector writes "ZOSVM-BOOTSECTOR\r\n" to COM1 and halts (16-bit code
// at 0x7c00: cli; ds=0; si=msg; dx=0x3f8; loop lodsb/out; hlt).
var bootSector = []byte{
	0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0xbe, 0x19, 0x7c, 0xba, 0xf8, 0x03, 0xac, 0x84, 0xc0, 0x74, 0x03,
	0xee, 0xeb, 0xf8, 0xba, 0x04, 0x06, 0xf4, 0xeb, 0xfa, 0x5a, 0x4f, 0x53, 0x56, 0x4d, 0x2d, 0x42,
	0x4f, 0x4f, 0x54, 0x53, 0x45, 0x43, 0x54, 0x4f, 0x52, 0x0d, 0x0a,
}

func cidr(t *testing.T, s string) net.IPNet {
	t.Helper()
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	n.IP = ip
	if v4 := ip.To4(); v4 != nil {
		n.IP = v4
	}
	return *n
}

func tapExists(ns, tap string) (bool, error) {
	found := false
	err := netns.Do(netns.Path(ns), func() error {
		_, err := netlink.LinkByName(tap)
		if errors.As(err, new(netlink.LinkNotFoundError)) {
			return nil
		}
		found = err == nil
		return err
	})
	return found, err
}

func memTotalMiB() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(`MemTotal:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return 0, errors.New("no MemTotal")
	}
	kb, err := strconv.ParseInt(string(m[1]), 10, 64)
	return kb >> 10, err
}

// httpGet fetches / from addr inside the namespace ns (HTTP/1.0 by hand:
// the dial must happen on the thread that is in ns).
func httpGet(ns, addr string) (string, error) {
	var out []byte
	err := netns.Do(netns.Path(ns), func() error {
		c, err := net.DialTimeout("tcp", addr, 20*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := c.Write([]byte("GET / HTTP/1.0\r\nHost: guest\r\n\r\n")); err != nil {
			return err
		}
		out, err = io.ReadAll(c)
		return err
	})
	return string(out), err
}
