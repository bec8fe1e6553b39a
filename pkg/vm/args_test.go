package vm

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zos-go/zos/pkg"
)

func ipnet(t *testing.T, s string) net.IPNet {
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

func TestKernelArgs(t *testing.T) {
	nic := pkg.VMIface{Tap: "t-a", IP4AddressCIDR: ipnet(t, "10.1.2.3/24"), IP4GatewayIP: net.ParseIP("10.1.2.1"),
		IP4Net: ipnet(t, "10.1.0.0/16")}
	pub := pkg.VMIface{Tap: "p-b", IP4AddressCIDR: ipnet(t, "185.1.2.3/28"), IP4GatewayIP: net.ParseIP("185.1.2.1"),
		IP6AddressCIDR: ipnet(t, "2a02:1::5/64"), IP6GatewayIP: net.ParseIP("2a02:1::1"), Public: true}
	dns := []net.IP{net.ParseIP("8.8.8.8"), net.ParseIP("1.1.1.1"), net.ParseIP("2001:4860:4860::8888")}
	cases := map[string]struct {
		vm   pkg.VM
		want string
	}{
		"default": {pkg.VM{}, DefaultKernelArgs},
		"old style": {pkg.VM{KernelArgs: "console=ttyS0", Network: pkg.VMNetworkInfo{Ifaces: []pkg.VMIface{nic, pub}, Nameservers: dns}},
			"console=ttyS0 ip=10.1.2.3::10.1.2.1:255.255.255.0:::off:8.8.8.8:1.1.1.1:"},
		"old style no dns": {pkg.VM{KernelArgs: "x", Network: pkg.VMNetworkInfo{Ifaces: []pkg.VMIface{nic}}},
			"x ip=10.1.2.3::10.1.2.1:255.255.255.0:::off:::"},
		"new style": {pkg.VM{KernelArgs: "x", Network: pkg.VMNetworkInfo{NewStyle: true, Ifaces: []pkg.VMIface{nic, pub}, Nameservers: dns}},
			"x net_eth0=10.1.2.3/24,10.1.2.1,10.1.0.0/16,slaac,priv net_eth1=185.1.2.3/28,185.1.2.1,2a02:1::5/64,2a02:1::1,public " +
				"net_dns=8.8.8.8,1.1.1.1,2001:4860:4860::8888"},
		"root disk": {pkg.VM{KernelArgs: "x", Disks: []pkg.VMDisk{{Path: "/a"}, {Path: "/b", Root: true, ReadOnly: true}}},
			"x root=/dev/vda ro"},
	}
	for name, c := range cases {
		if got := KernelArgs(c.vm); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", name, got, c.want)
		}
	}
}

func TestQEMUCommand(t *testing.T) {
	q := NewQEMU(DefaultConfig(), slog.New(slog.DiscardHandler))
	m := Machine{Name: "vm,1", Type: MachineMicroVM, Accel: AccelKVM, CPU: 2, Memory: 1024,
		Kernel: "/k", Initrd: "/i", Cmdline: "console=ttyS0", QMPSocket: "/run/x.qmp", ConsoleLog: "/c,og",
		Disks: []Disk{{Path: "/d/root", Root: true}, {Path: "/d/iso", ReadOnly: true}},
		Nics:  []Nic{{Tap: "t-1", MAC: "02:00:00:00:00:01"}, {Tap: "t-2"}}, NetNS: "host1"}
	argv, err := q.Command(m)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(argv, " ")
	want := "nsenter --net=/run/netns/host1 -- qemu-system-x86_64 -name vm,,1 -machine microvm,accel=kvm " +
		"-nodefaults -no-user-config -display none -no-reboot -smp 2 -m 1024M " +
		"-chardev file,id=console,append=on,path=/c,,og -serial chardev:console -qmp unix:/run/x.qmp,server=on,wait=off " +
		"-cpu host -kernel /k -append console=ttyS0 -initrd /i " +
		"-drive if=none,id=disk0,format=raw,file=/d/root -device virtio-blk-device,drive=disk0 " +
		"-drive if=none,id=disk1,format=raw,file=/d/iso,readonly=on -device virtio-blk-device,drive=disk1 " +
		"-netdev tap,id=net0,ifname=t-1,script=no,downscript=no,vhost=on -device virtio-net-device,netdev=net0,mac=02:00:00:00:00:01 " +
		"-netdev tap,id=net1,ifname=t-2,script=no,downscript=no,vhost=on -device virtio-net-device,netdev=net1,mac=" + DefaultMAC("vm,1", "t-2")
	if got != want {
		t.Errorf("argv:\n got %s\nwant %s", got, want)
	}
	// q35: PCI devices, the root disk boots.
	m = Machine{Name: "fw", Type: MachineQ35, Accel: AccelTCG, CPU: 1, Memory: 512, QMPSocket: "/q", ConsoleLog: "/c",
		Disks: []Disk{{Path: "/d/root", Root: true}}}
	argv, _ = q.Command(m)
	if got := strings.Join(argv, " "); !strings.Contains(got, "-machine q35,accel=tcg") ||
		!strings.Contains(got, "-device virtio-blk-pci,drive=disk0,bootindex=0") || strings.Contains(got, "-kernel") {
		t.Errorf("q35 argv: %s", got)
	}
	if _, err := q.Command(Machine{Name: "x", Type: MachineMicroVM, Accel: AccelTCG}); !errors.Is(err, ErrInvalidVM) {
		t.Errorf("microvm without kernel: %v", err)
	}
	if a, b := DefaultMAC("a", "t"), DefaultMAC("b", "t"); a == b || a != DefaultMAC("a", "t") || !strings.HasPrefix(a, "02:") {
		t.Errorf("default MACs %s %s", a, b)
	}
}

func TestK3OSArgs(t *testing.T) {
	got, err := K3OSInstallArgs(K3OSConfig{Token: "abc", MasterIPs: []net.IP{net.ParseIP("10.1.2.3"), net.ParseIP("fd00::1")},
		SSHKeys: []string{"ssh-ed25519 AAAA me@x", "github:me"}, DatastoreEndpoint: "mysql://db", DisableDefaultIngress: true})
	if err != nil {
		t.Fatal(err)
	}
	want := `console=ttyS0 reboot=k panic=1 k3os.mode=install k3os.install.silent k3os.debug k3os.install.device=/dev/vda ` +
		`k3os.token=abc k3os.k3s_args="--flannel-iface=eth0" k3os.server_url=https://10.1.2.3:6443 k3os.server_url=https://[fd00::1]:6443 ` +
		`ssh_authorized_keys="ssh-ed25519 AAAA me@x" ssh_authorized_keys="github:me" k3os.k3s_args="--datastore-endpoint=mysql://db" ` +
		`k3os.k3s_args="--disable=traefik"`
	if got != want {
		t.Errorf("install args:\n got %s\nwant %s", got, want)
	}
	if _, err := K3OSInstallArgs(K3OSConfig{Token: "x", SSHKeys: []string{`bad" k3os.mode=evil`}}); !errors.Is(err, ErrBadK3OSArg) {
		t.Errorf("quote in a key: %v", err)
	}
	if _, err := K3OSInstallArgs(K3OSConfig{}); !errors.Is(err, ErrInvalidVM) {
		t.Errorf("no token: %v", err)
	}
	dir := t.TempDir()
	if _, err := K3OSImage(dir); !errors.Is(err, ErrKernelNotFound) {
		t.Errorf("empty flist: %v", err)
	}
	for _, f := range []string{K3OSKernelFile, K3OSInitrdFile, K3OSISOFile} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img, err := K3OSImage(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := K3OSInstallVM("k8s-1", 2, 4096, img, "/vd/1-vda", pkg.VMNetworkInfo{}, K3OSConfig{Token: "t"})
	if err != nil || !v.NoKeepAlive || len(v.Disks) != 2 || v.Disks[0].Path != "/vd/1-vda" || !v.Disks[1].ReadOnly || v.Disks[1].Path != img.ISO {
		t.Errorf("install vm = %+v, %v", v, err)
	}
	if r := K3OSRunVM("k8s-1", 2, 4096, img, "/vd/1-vda", pkg.VMNetworkInfo{}); r.NoKeepAlive || r.KernelArgs != K3OSRunArgs || len(r.Disks) != 1 {
		t.Errorf("run vm = %+v", r)
	}
}

func TestConsoleRotation(t *testing.T) {
	p := filepath.Join(t.TempDir(), "console.log")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := range 100 {
		f.WriteString(strings.Repeat("x", 20) + " line " + string(rune('a'+i%26)) + "\n")
	}
	rotated, err := rotateConsole(p, 1024)
	if err != nil || !rotated {
		t.Fatalf("rotate: %v %v", rotated, err)
	}
	f.WriteString("after rotation\n") // the writer appends to the truncated file
	if fi, _ := os.Stat(p); fi.Size() != int64(len("after rotation\n")) {
		t.Errorf("current log is %d bytes", fi.Size())
	}
	if fi, _ := os.Stat(p + ".1"); fi.Size() > 1024 {
		t.Errorf("rotated log is %d bytes, over the limit", fi.Size())
	}
	tail, err := consoleTail(p, 200)
	if err != nil || !strings.HasSuffix(tail, "after rotation\n") || !strings.Contains(tail, " line ") || len(tail) > 200 {
		t.Errorf("tail = %q, %v", tail, err)
	}
	if !strings.HasPrefix(tail, "xxxx") {
		t.Errorf("tail does not start at a line: %q", tail)
	}
	if rotated, _ := rotateConsole(p, 1024); rotated {
		t.Error("rotated a small log")
	}
}

func TestValidateConfig(t *testing.T) {
	good := DefaultConfig()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*Config){
		"relative root":  func(c *Config) { c.Root = "x" },
		"long run dir":   func(c *Config) { c.RunDir = "/" + strings.Repeat("r", 100) },
		"no prefix":      func(c *Config) { c.ServicePrefix = "" },
		"bad accel":      func(c *Config) { c.Accel = "hvf" },
		"zero delay":     func(c *Config) { c.RestartDelay = 0 },
		"max below min":  func(c *Config) { c.MaxRestartDelay = time.Second },
		"relative image": func(c *Config) { c.ImageDirs = []string{"img"} },
	} {
		c := good
		edit(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestProbe runs the probe firmware under TCG (no root needed): it must
// finish, and auto must pick an acceleration that works.
func TestProbe(t *testing.T) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("needs qemu-system-x86_64")
	}
	cfg := DefaultConfig()
	cfg.ProbeTimeout = 30 * time.Second
	q := NewQEMU(cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if a, err := q.Probe(ctx, AccelTCG); err != nil || a != AccelTCG {
		t.Fatalf("probe tcg: %q, %v", a, err)
	}
	a, err := q.Probe(ctx, AccelAuto)
	if err != nil || !slices.Contains([]string{AccelTCG, AccelKVM}, a) {
		t.Fatalf("probe auto: %q, %v", a, err)
	}
	t.Logf("auto picked %s", a)
	bad := &QEMU{Binary: "/bin/false", cfg: cfg, log: slog.New(slog.DiscardHandler)}
	if _, err := bad.Probe(ctx, AccelAuto); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("probe with a broken qemu: %v", err)
	}
}
