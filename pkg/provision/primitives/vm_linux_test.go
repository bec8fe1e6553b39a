package primitives

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/flist/flisttest"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/network"
	"github.com/zos-go/zos/pkg/network/networktest"
	"github.com/zos-go/zos/pkg/network/wgdev"
	"github.com/zos-go/zos/pkg/provision"
	"github.com/zos-go/zos/pkg/storage/storagetest"
	"github.com/zos-go/zos/pkg/vdisk"
	"github.com/zos-go/zos/pkg/vm"
	"github.com/zos-go/zos/pkg/vm/vmtest"
)

// TestMain lets the test binary play zos-wg ("<test binary> zos-wg
// flags…"), so the root test runs the real network module with userspace
// WireGuard devices without building cmd/zos-wg.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "zos-wg" {
		os.Exit(wgdev.Main(os.Args[2:], os.Stderr))
	}
	os.Exit(m.Run())
}

// guestModules are the virtio modules the test guest loads, in order
// (vmtest's list: the Debian cloud kernel builds virtio as modules).
const guestModules = "virtio_ring virtio virtio_mmio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net virtio_blk"

// mockK3OSInit plays k3os on the test guest: booted with k3os.mode=install
// it writes "K3OSOK:<token>" at the start of /dev/vda and ends (init exits,
// the kernel panics and, with panic=1 and QEMU's -no-reboot, the VM
// stops); otherwise it hands over to the test guest's init, which reports
// the head of /dev/vda on the console and serves the network.
const mockK3OSInit = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /sbin /usr/bin /usr/sbin
/bin/busybox mount -t proc proc /proc
if /bin/busybox grep -q k3os.mode=install /proc/cmdline; then
	/bin/busybox --install -s
	mount -t devtmpfs dev /dev 2>/dev/null
	for m in @MODULES@; do
		[ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko 2>/dev/null
	done
	i=0
	while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
	token=$(sed -n 's/.*k3os.token=\([^ ]*\).*/\1/p' /proc/cmdline)
	printf 'K3OSOK:%s\n' "$token" > /dev/vda
	sync
	echo "ZOSK3OS installed" > /dev/console
	exit 0
fi
/bin/busybox umount /proc
exec /init.guest
`

// newc builds a gzip-compressed "newc" cpio archive of regular files.
func newc(files map[string]string) []byte {
	var b bytes.Buffer
	ino := 100000
	hdr := func(name string, mode uint32, size int) {
		ino++
		fmt.Fprintf(&b, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, len(name)+1, 0)
		b.WriteString(name)
		b.WriteByte(0)
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
	}
	for name, data := range files {
		hdr(name, 0o100755, len(data))
		b.WriteString(data)
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
	}
	hdr("TRAILER!!!", 0, 0)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(b.Bytes())
	_ = zw.Close()
	return gz.Bytes()
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// realNode is a node made of the real network module (in a host namespace
// of its own, wired to an "internet" namespace), the real VM module on
// QEMU, the real vdisk module on a fake storage module, and the flist Fake
// serving the guest images.
type realNode struct {
	host, inet string
	netCfg     network.Config
	net        *network.Module
	vms        *vm.Module
	disks      *vdisk.Module
	fl         *flisttest.Fake
	store      *provision.MemStore
	runs       *countingVMs
	vmp        *VM
	k8s        *Kubernetes
	pubip      PublicIP
	log        *slog.Logger
}

func newRealNode(t *testing.T) *realNode {
	t.Helper()
	n := &realNode{store: provision.NewMemStore(),
		log: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))}
	dir := testutil.TempDir(t)

	// Images: the guest as a generic VM flist, and a mock k3os flist.
	kernel := vmtest.Kernel(t)
	initrd, err := vmtest.BuildInitramfs(kernel)
	if err != nil {
		t.Fatalf("initramfs: %v", err)
	}
	guest, k3os := filepath.Join(dir, "img", "guest"), filepath.Join(dir, "img", "k3os")
	copyFile(t, kernel.Vmlinuz, filepath.Join(guest, "kernel"))
	writeFiles(t, guest, map[string]string{"initrd.gz": string(initrd)})
	copyFile(t, kernel.Vmlinuz, filepath.Join(k3os, vm.K3OSKernelFile))
	guestInit := strings.NewReplacer("@MODULES@", guestModules, "@MARKER@", vmtest.Marker).Replace(vmtest.GuestInit)
	k3osInit := strings.ReplaceAll(mockK3OSInit, "@MODULES@", guestModules)
	writeFiles(t, k3os, map[string]string{
		vm.K3OSInitrdFile: string(initrd) + string(newc(map[string]string{"init": k3osInit, "init.guest": guestInit})),
		vm.K3OSISOFile:    "K3OS-ISO",
	})
	n.fl = flisttest.NewFake(filepath.Join(dir, "flist"))
	n.fl.AddFlist(testVMFlist, guest)
	n.fl.AddFlist(testK3OSFlist, k3os)

	// Network: the internet (198.18.0.1/24, and the farm's public IPs'
	// gateway 185.69.166.1/24) and the node's host namespace.
	n.inet, n.host = testutil.NetNS(t), testutil.NetNS(t)
	sh(t, "ip", "-n", n.inet, "link", "add", "inet", "type", "bridge")
	sh(t, "ip", "-n", n.inet, "addr", "add", "198.18.0.1/24", "dev", "inet")
	sh(t, "ip", "-n", n.inet, "addr", "add", "185.69.166.1/24", "dev", "inet")
	sh(t, "ip", "-n", n.inet, "link", "set", "inet", "up")
	sh(t, "ip", "-n", n.inet, "link", "add", "port1", "type", "veth", "peer", "name", "uplink", "netns", n.host)
	sh(t, "ip", "-n", n.inet, "link", "set", "port1", "master", "inet", "up")
	cfg := network.DefaultConfig()
	cfg.NodeID = "vmnode-" + testutil.Prefix()
	cfg.NamePrefix = testutil.Name(t, "nd") + "-"
	cfg.HostNS = n.host
	cfg.StateDir = filepath.Join(dir, "network")
	cfg.Uplink = "uplink"
	cfg.ZOSAddress = netip.MustParsePrefix("198.18.0.11/24")
	cfg.ZOSGateway = netip.MustParseAddr("198.18.0.1")
	cfg.NDMZ4Address = netip.MustParsePrefix("198.18.0.111/24")
	cfg.NDMZ4Gateway = netip.MustParseAddr("198.18.0.1")
	cfg.DHCP = false
	cfg.WireGuard = network.WGUserspace
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg.WGCommand = []string{exe, "zos-wg"}
	cfg.OpTimeout = time.Minute
	cfg.FastInterval, cfg.SlowInterval = 100*time.Millisecond, 200*time.Millisecond
	n.netCfg = cfg
	n.net, err = network.New(cfg, networktest.PlainIdentity{}, network.ProcessSupervisor{Dir: filepath.Join(dir, "services")}, n.log.With("module", "network"))
	if err != nil {
		t.Fatal(err)
	}
	n.serve(t, "network", func(ctx context.Context) error { return n.net.Run(ctx) }, func() error { return n.net.Ready() },
		func() {
			if err := n.net.Teardown(context.Background()); err != nil {
				t.Errorf("network teardown: %v", err)
			}
		})

	// Disks and VMs.
	st := storagetest.NewFake(filepath.Join(dir, "storage"), 1<<40)
	if n.disks, err = vdisk.New(vdisk.DefaultConfig(), st, n.log); err != nil {
		t.Fatal(err)
	}
	run, err := os.MkdirTemp("", "zvm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(run) })
	vcfg := vm.DefaultConfig()
	vcfg.Root = filepath.Join(dir, "vm")
	vcfg.RunDir = run
	vcfg.HostNS = n.host
	vcfg.ServicePrefix = testutil.Prefix() + "-qemu@"
	vcfg.ImageDirs = []string{filepath.Join(dir, "flist")}
	vcfg.PollInterval = 200 * time.Millisecond
	vcfg.StopTimeout = 0 // the busybox guest ignores the power button
	vcfg.ProbeTimeout = 10 * time.Second
	vlog := n.log.With("module", "vm")
	if n.vms, err = vm.New(vcfg, vm.NewQEMU(vcfg, vlog), vm.NewProcessLauncher(filepath.Join(dir, "qemu")), st, vlog); err != nil {
		t.Fatal(err)
	}
	n.serve(t, "vm", n.vms.Serve, func() error {
		if n.vms.Accel() == "" {
			return vm.ErrNotReady
		}
		return nil
	}, func() {
		l, _ := n.vms.List(context.Background())
		for _, s := range l {
			t.Errorf("vm %s left running", s.Name)
			_ = n.vms.Delete(s.Name)
		}
	})

	pcfg := DefaultVMConfig()
	pcfg.StateDir = filepath.Join(dir, "vmstate")
	pcfg.K3OSFlist = testK3OSFlist
	pcfg.InstallTimeout = 2 * time.Minute
	pcfg.InstallPoll = 200 * time.Millisecond
	pcfg.Nameservers = []netip.Addr{netip.MustParseAddr("198.18.0.1")}
	gw := &fakeGateways{gws: map[netip.Prefix]netip.Addr{netip.MustParsePrefix("185.69.166.7/24"): netip.MustParseAddr("185.69.166.1")}}
	n.runs = &countingVMs{Manager: n.vms, runs: map[string]int{}}
	if n.vmp, n.k8s, err = NewVMProvisioners(pcfg, VMDeps{Networker: n.net, Flister: n.fl, VDisks: n.disks, VMs: n.runs, Gateways: gw}, n.log); err != nil {
		t.Fatal(err)
	}
	n.pubip = PublicIP{Networker: n.net, Filter: NFTFilter{NetNS: n.host}}
	return n
}

// countingVMs counts the VMs started, by name.
type countingVMs struct {
	vm.Manager
	mu   sync.Mutex
	runs map[string]int
}

func (c *countingVMs) Run(v pkg.VM) error {
	c.mu.Lock()
	c.runs[v.Name]++
	c.mu.Unlock()
	return c.Manager.Run(v)
}

func (c *countingVMs) count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runs[name]
}

// serve runs a module until the test ends: ready is polled until nil,
// stop runs before the module's Run is cancelled.
func (n *realNode) serve(t *testing.T, what string, run func(context.Context) error, ready func() error, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			stop()
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: %v", what, err)
			}
		})
	})
	testutil.WaitFor(t, time.Minute, what+" ready", func() error {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("%s: %v", what, err)
		default:
		}
		return ready()
	})
}

// waitConsole waits until the console of the VM name matches re.
func (n *realNode) waitConsole(t *testing.T, name string, re *regexp.Regexp) string {
	t.Helper()
	var logs string
	testutil.WaitFor(t, 2*time.Minute, "console of "+name+" shows "+re.String(), func() error {
		var err error
		if logs, err = n.vms.Logs(name); err != nil {
			return err
		}
		if !re.MatchString(logs) {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	return logs
}

func (n *realNode) ping(t *testing.T, ns, ip string) {
	t.Helper()
	testutil.WaitFor(t, 30*time.Second, "ping "+ip+" from "+ns, func() error {
		if out, err := testutil.InNetNS(t, ns, "ping", "-c", "1", "-W", "1", ip); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
}

// TestVMAndKubernetesReal deploys, on a node of real modules (network in
// its own host namespace, QEMU VMs), a VM with a private and a public IP
// next to a second VM on the same network (each on its own tap), and then
// a kubernetes VM on that network, and checks each boots, answers ping on
// its private address from the network's namespace (and the first VM on
// its public address from the internet, through the anti-spoofing
// filter), survives a second provision untouched, and goes without a
// trace, leaving the other VM running.
func TestVMAndKubernetesReal(t *testing.T) {
	testutil.RequireRoot(t, "qemu-system-x86_64", "ip", "nft", "ping", "busybox", "apt-get", "dpkg-deb", "nsenter")
	testutil.CheckLeaks(t)
	n := newRealNode(t)
	ctx := t.Context()

	netID := pkg.NetID(gridtypes.NetworkID(testUser, "net1"))
	nr := networktest.NR(netID, "net1", "10.1.0.0/16", "10.1.3.0/24", uint16(testutil.FreePort(t)), networktest.NewKey(), nil)
	if _, err := n.net.CreateNR(nr); err != nil {
		t.Fatal(err)
	}
	nrNS := n.netCfg.NamePrefix + "n-" + string(netID)

	// The public IP workload: deployed first, its filter in the host.
	pd := deployment(t, 9, &gridtypes.PublicIP{IPAddress: "185.69.166.7/24"})
	pd.Store = n.store
	if _, err := n.pubip.Provision(ctx, pd); err != nil {
		t.Fatal(err)
	}
	if err := n.store.Put(&provision.Record{Reservation: pd.Reservation, Name: pd.Name, State: provision.StateDeployed}); err != nil {
		t.Fatal(err)
	}

	t.Run("vm", func(t *testing.T) {
		w := &gridtypes.VM{CPU: 1, Memory: 512, Flist: testVMFlist, InitrdImage: "/initrd.gz",
			KernelArgs: "console=ttyS0 reboot=k panic=1 quiet",
			Disks:      []gridtypes.VMDisk{{Size: 16}},
			Network:    gridtypes.VMNetwork{NetworkID: "net1", IPAddress: "10.1.3.7", PublicIP: 9}}
		d := deployment(t, 20, w)
		d.Store = n.store
		t.Cleanup(func() { _ = n.vmp.Decommission(context.Background(), d) })
		res, err := n.vmp.Provision(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		logs := n.waitConsole(t, "20-1", regexp.MustCompile(regexp.QuoteMeta(vmtest.Marker)))
		for _, s := range []string{"ZOSVM net eth0 ip4=10.1.3.7/24 gw4=10.1.3.1", "ZOSVM net eth1 ip4=185.69.166.7/24 gw4=185.69.166.1",
			"mac=" + PublicIPMAC(netip.MustParseAddr("185.69.166.7")).String(), "ZOSVM disk vda sectors=32768"} {
			if !strings.Contains(logs, s) {
				t.Errorf("console lacks %q:\n%s", s, logs)
			}
		}
		n.ping(t, nrNS, "10.1.3.7")
		n.ping(t, n.inet, "185.69.166.7")
		st, _ := n.vms.Status(ctx, "20-1")

		// A second VM on the same network, on a tap of its own.
		w2 := &gridtypes.VM{CPU: 1, Memory: 512, Flist: testVMFlist, InitrdImage: "/initrd.gz",
			KernelArgs: "console=ttyS0 reboot=k panic=1 quiet",
			Network:    gridtypes.VMNetwork{NetworkID: "net1", IPAddress: "10.1.3.9"}}
		d2 := deployment(t, 21, w2)
		d2.Store = n.store
		t.Cleanup(func() { _ = n.vmp.Decommission(context.Background(), d2) })
		if _, err := n.vmp.Provision(ctx, d2); err != nil {
			t.Fatalf("second vm on the network: %v", err)
		}
		n.waitConsole(t, "21-1", regexp.MustCompile(regexp.QuoteMeta(vmtest.Marker)))
		n.ping(t, nrNS, "10.1.3.9")
		n.ping(t, nrNS, "10.1.3.7")
		for _, name := range []string{"20-1", "21-1"} {
			if ok, err := n.net.VMTapExists(netID, name); !ok || err != nil {
				t.Errorf("tap of %s: %v %v", name, ok, err)
			}
		}
		st21, _ := n.vms.Status(ctx, "21-1")
		if err := n.vmp.Decommission(ctx, d2); err != nil {
			t.Fatal(err)
		}
		if ok, _ := n.net.VMTapExists(netID, "21-1"); ok || testutil.ProcessAlive(st21.PID) {
			t.Errorf("second vm left: tap %v, qemu alive %v", ok, testutil.ProcessAlive(st21.PID))
		}
		// the first VM keeps its tap and answers
		n.ping(t, nrNS, "10.1.3.7")

		res2, err := n.vmp.Provision(ctx, d)
		if err != nil || res2 != res {
			t.Fatalf("second provision: %+v %v; want %+v", res2, err, res)
		}
		if st2, _ := n.vms.Status(ctx, "20-1"); st2.PID != st.PID {
			t.Errorf("second provision restarted qemu: pid %d → %d", st.PID, st2.PID)
		}

		if err := n.vmp.Decommission(ctx, d); err != nil {
			t.Fatal(err)
		}
		if ok, _ := n.net.VMTapExists(netID, "20-1"); ok {
			t.Error("tap left")
		}
		if ok, _ := n.net.PubTapExists("9-1"); ok {
			t.Error("public tap left")
		}
		if l, _ := n.disks.List(); len(l) != 0 || len(n.fl.Mounts()) != 0 || testutil.ProcessAlive(st.PID) {
			t.Errorf("left: disks %v, mounts %v, qemu alive %v", l, n.fl.Mounts(), testutil.ProcessAlive(st.PID))
		}
	})

	t.Run("kubernetes", func(t *testing.T) {
		w := &gridtypes.Kubernetes{Size: 18, ClusterSecret: "k3stoken42", NetworkID: "net1", IPAddress: "10.1.3.8"}
		d := deployment(t, 30, w)
		d.Store = n.store
		t.Cleanup(func() { _ = n.k8s.Decommission(context.Background(), d) })
		start := time.Now()
		res, err := n.k8s.Provision(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("installed and started in %v", time.Since(start))
		logs := n.waitConsole(t, "30-1", regexp.MustCompile(regexp.QuoteMeta(vmtest.Marker)))
		if !strings.Contains(logs, "head=K3OSOK:k3stoken42") {
			t.Errorf("the run VM does not see what the installer wrote with the token:\n%s", logs)
		}
		if strings.Contains(logs, "k3os.mode=install") {
			t.Errorf("the run VM booted with the install arguments:\n%s", logs)
		}
		n.ping(t, nrNS, "10.1.3.8")
		if res2, err := n.k8s.Provision(ctx, d); err != nil || res2 != res {
			t.Fatalf("second provision: %+v %v", res2, err)
		}
		// Power cut: QEMU, the tap and the flist mount are gone; the
		// vdisk and the state stay. Provision brings the VM back
		// without installing again.
		if err := n.vms.Delete("30-1"); err != nil {
			t.Fatal(err)
		}
		if err := n.net.RemoveVMTap(netID, "30-1"); err != nil {
			t.Fatal(err)
		}
		if err := n.fl.NamedUmount("30-1-k3os"); err != nil {
			t.Fatal(err)
		}
		if res2, err := n.k8s.Provision(ctx, d); err != nil || res2 != res {
			t.Fatalf("provision after power cut: %+v %v", res2, err)
		}
		n.waitConsole(t, "30-1", regexp.MustCompile(regexp.QuoteMeta(vmtest.Marker)))
		n.ping(t, nrNS, "10.1.3.8")
		if i, r := n.runs.count("30-1-install"), n.runs.count("30-1"); i != 1 || r != 2 {
			t.Errorf("installer ran %d times, vm %d times; want 1 and 2", i, r)
		}
		if err := n.k8s.Decommission(ctx, d); err != nil {
			t.Fatal(err)
		}
		if ok, _ := n.net.VMTapExists(netID, "30-1"); ok {
			t.Error("tap left")
		}
		if l, _ := n.vms.List(ctx); len(l) != 0 {
			t.Errorf("vms left: %+v", l)
		}
	})

	if err := n.pubip.Decommission(ctx, pd); err != nil {
		t.Fatal(err)
	}
	if err := n.net.DeleteNR(nr); err != nil {
		t.Fatal(err)
	}
}
