package primitives

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/flist/flisttest"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/network"
	"github.com/zos-go/zos/pkg/network/networktest"
	"github.com/zos-go/zos/pkg/provision"
	"github.com/zos-go/zos/pkg/storage/storagetest"
	"github.com/zos-go/zos/pkg/vdisk"
	"github.com/zos-go/zos/pkg/vm"
	"github.com/zos-go/zos/pkg/vm/vmtest"
)

const (
	testVMFlist   = "https://hub.test/guest.flist"
	testK3OSFlist = "https://hub.test/k3os.flist"
	testUser      = 7
)

// vmEnv is a node of fakes: network, flists, vdisks on a fake storage
// module (the real vdisk module), VMs, and the provision store.
type vmEnv struct {
	dir     string
	net     *networktest.Fake
	fl      *flisttest.Fake
	storage *storagetest.Fake
	disks   *vdisk.Module
	vms     *vmtest.Fake
	store   *provision.MemStore
	cfg     VMConfig
	gw      *fakeGateways
	vm      *VM
	k8s     *Kubernetes
	log     *slog.Logger
}

type fakeGateways struct{ gws map[netip.Prefix]netip.Addr }

func (f *fakeGateways) PublicGateway(_ context.Context, ip netip.Prefix) (netip.Addr, error) {
	if gw, ok := f.gws[ip]; ok {
		return gw, nil
	}
	return netip.Addr{}, fmt.Errorf("farm ip %s: %w", ip, os.ErrNotExist)
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func newVMEnv(t *testing.T, mod func(*VMConfig)) *vmEnv {
	t.Helper()
	dir := t.TempDir()
	e := &vmEnv{dir: dir, store: provision.NewMemStore(), log: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))}
	e.fl = flisttest.NewFake(filepath.Join(dir, "flist"))
	guest, k3os := filepath.Join(dir, "images", "guest"), filepath.Join(dir, "images", "k3os")
	writeFiles(t, guest, map[string]string{"kernel": "KERNEL", "boot/initrd.img": "INITRD", "other/vmlinuz": "KERNEL2"})
	if err := os.Symlink("/etc/hostname", filepath.Join(guest, "escape")); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, k3os, map[string]string{vm.K3OSKernelFile: "K", vm.K3OSInitrdFile: "I", vm.K3OSISOFile: "ISO"})
	e.fl.AddFlist(testVMFlist, guest)
	e.fl.AddFlist(testK3OSFlist, k3os)
	e.storage = storagetest.NewFake(filepath.Join(dir, "storage"), 1<<50)
	var err error
	if e.disks, err = vdisk.New(vdisk.DefaultConfig(), e.storage, e.log); err != nil {
		t.Fatal(err)
	}
	probe, err := e.disks.Allocate("probe", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.disks.Deallocate("probe"); err != nil {
		t.Fatal(err)
	}
	e.net = networktest.NewFake()
	e.newVMs(filepath.Dir(probe))
	e.gw = &fakeGateways{gws: map[netip.Prefix]netip.Addr{netip.MustParsePrefix("185.69.166.7/24"): netip.MustParseAddr("185.69.166.1")}}
	e.cfg = DefaultVMConfig()
	e.cfg.StateDir = filepath.Join(dir, "state")
	e.cfg.K3OSFlist = testK3OSFlist
	e.cfg.InstallPoll = 5 * time.Millisecond
	e.cfg.InstallTimeout = 10 * time.Second
	if mod != nil {
		mod(&e.cfg)
	}
	e.build(t)
	e.addNetwork(t, "net1", "10.1.0.0/16", "10.1.3.0/24")
	return e
}

// newVMs gives the env a fresh VM module (as after a power cut).
func (e *vmEnv) newVMs(diskDir string) {
	e.vms = vmtest.NewFake(vm.Limits{DiskDirs: []string{diskDir}, ImageDirs: []string{filepath.Join(e.dir, "flist")},
		TapExists: func(tap string) (bool, error) {
			if id, ok := strings.CutPrefix(tap, "t-"); ok {
				return e.net.TapExists(pkg.NetID(id))
			}
			for _, n := range []string{"net1", "net2"} {
				id := pkg.NetID(gridtypes.NetworkID(testUser, n))
				for _, v := range e.net.VMTapsOf(id) {
					if network.VMTapName(id, v) == tap {
						return true, nil
					}
				}
			}
			if res, ok := strings.CutPrefix(tap, "p-"); ok {
				return e.net.PubTapExists(res)
			}
			return false, nil
		}})
}

func (e *vmEnv) build(t *testing.T) {
	t.Helper()
	var err error
	e.vm, e.k8s, err = NewVMProvisioners(e.cfg, VMDeps{Networker: e.net, Flister: e.fl, VDisks: e.disks, VMs: e.vms, Gateways: e.gw}, e.log)
	if err != nil {
		t.Fatal(err)
	}
}

func (e *vmEnv) addNetwork(t *testing.T, name, rng, subnet string) pkg.NetID {
	t.Helper()
	id := pkg.NetID(gridtypes.NetworkID(testUser, name))
	if _, err := e.net.CreateNR(networktest.NR(id, name, rng, subnet, uint16(41000+int(name[len(name)-1])), networktest.NewKey(), nil)); err != nil {
		t.Fatal(err)
	}
	return id
}

// put records a workload in the store, as the engine would.
func (e *vmEnv) put(t *testing.T, id uint64, w gridtypes.Workload, state provision.State) *provision.Deployment {
	t.Helper()
	d := deployment(t, id, w)
	d.Store = e.store
	if err := e.store.Put(&provision.Record{Reservation: d.Reservation, Name: d.Name, State: state}); err != nil {
		t.Fatal(err)
	}
	return d
}

// setState changes the state of a stored record.
func (e *vmEnv) setState(t *testing.T, id uint64, state provision.State) {
	t.Helper()
	rec, err := e.store.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	rec.State = state
	if err := e.store.Put(rec); err != nil {
		t.Fatal(err)
	}
}

// empty fails unless nothing of any VM workload is left on the node.
func (e *vmEnv) empty(t *testing.T) {
	t.Helper()
	if l, _ := e.vms.List(t.Context()); len(l) != 0 {
		t.Errorf("vms left: %+v", l)
	}
	for _, n := range []string{"net1", "net2"} {
		id := pkg.NetID(gridtypes.NetworkID(testUser, n))
		if ok, _ := e.net.TapExists(id); ok {
			t.Errorf("shared tap of %s left", n)
		}
		if vms := e.net.VMTapsOf(id); len(vms) != 0 {
			t.Errorf("taps of %v on %s left", vms, n)
		}
	}
	for _, p := range []string{"9-1", "10-1"} {
		if ok, _ := e.net.PubTapExists(p); ok {
			t.Errorf("public tap p-%s left", p)
		}
	}
	if l, _ := e.disks.List(); len(l) != 0 {
		t.Errorf("disks left: %+v", l)
	}
	if m := e.fl.Mounts(); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	if l, _ := os.ReadDir(e.cfg.StateDir); len(l) != 0 {
		t.Errorf("state files left: %v", l)
	}
}

func guestVM() *gridtypes.VM {
	return &gridtypes.VM{CPU: 2, Memory: 1024, Flist: testVMFlist, InitrdImage: "/boot/initrd.img",
		Disks:   []gridtypes.VMDisk{{Size: 64}, {Size: 32, Root: true}},
		Network: gridtypes.VMNetwork{NetworkID: "net1", IPAddress: "10.1.3.7"},
		SSHKeys: []string{"ssh-ed25519 AAAAC3Nza user@host"}}
}

func (e *vmEnv) publicIP(t *testing.T, id uint64, user uint64, state provision.State) {
	t.Helper()
	d := deployment(t, id, &gridtypes.PublicIP{IPAddress: "185.69.166.7/24"})
	d.Reservation.UserID = user
	if err := e.store.Put(&provision.Record{Reservation: d.Reservation, Name: d.Name, State: state}); err != nil {
		t.Fatal(err)
	}
}

func TestVMProvision(t *testing.T) {
	e := newVMEnv(t, nil)
	e.publicIP(t, 9, testUser, provision.StateDeployed)
	w := guestVM()
	w.Network.PublicIP = 9
	d := e.put(t, 20, w, provision.StateDeploying)
	ctx := t.Context()

	res, err := e.vm.Provision(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	netID := pkg.NetID(gridtypes.NetworkID(testUser, "net1"))
	v6, err := e.net.GetIPv6From4(netID, netip.MustParseAddr("10.1.3.7").AsSlice())
	if err != nil {
		t.Fatal(err)
	}
	want := gridtypes.VMResult{ID: "20-1", IP: "10.1.3.7", PublicIP: "185.69.166.7", IPv6: v6.IP.String()}
	if res != want {
		t.Fatalf("result %+v, want %+v", res, want)
	}
	spec, ok := e.vms.Spec("20-1")
	if !ok {
		t.Fatal("vm not running")
	}
	mount := filepath.Join(e.dir, "flist", "mountpoint", "20-1-img")
	if spec.KernelImage != filepath.Join(mount, "kernel") || spec.InitrdImage != filepath.Join(mount, "boot", "initrd.img") {
		t.Errorf("kernel %s initrd %s", spec.KernelImage, spec.InitrdImage)
	}
	if !e.fl.ReadOnly("20-1-img") {
		t.Error("image flist not mounted read-only")
	}
	if spec.CPU != 2 || spec.Memory != 1024 || spec.NoKeepAlive {
		t.Errorf("size %d/%d keepalive off %v", spec.CPU, spec.Memory, spec.NoKeepAlive)
	}
	if len(spec.Disks) != 2 || filepath.Base(spec.Disks[0].Path) != "20-1-0" || spec.Disks[0].Root ||
		filepath.Base(spec.Disks[1].Path) != "20-1-1" || !spec.Disks[1].Root {
		t.Errorf("disks %+v", spec.Disks)
	}
	for id, size := range map[string]int64{"20-1-0": 64, "20-1-1": 32} {
		if info, err := e.disks.Inspect(id); err != nil || info.Size != size*vdisk.MiB {
			t.Errorf("disk %s: %+v %v", id, info, err)
		}
	}
	if !strings.Contains(spec.KernelArgs, `ssh_authorized_keys="ssh-ed25519 AAAAC3Nza user@host"`) {
		t.Errorf("kernel args %q lack the ssh key", spec.KernelArgs)
	}
	n := spec.Network
	if !n.NewStyle || len(n.Ifaces) != 2 || len(n.Nameservers) != 3 {
		t.Fatalf("network %+v", n)
	}
	priv, pub := n.Ifaces[0], n.Ifaces[1]
	if priv.Tap != network.VMTapName(netID, "20-1") || priv.IP4AddressCIDR.String() != "10.1.3.7/24" || priv.IP4GatewayIP.String() != "10.1.3.1" ||
		priv.IP4Net.String() != "10.1.0.0/16" || priv.IP6AddressCIDR.IP.String() != want.IPv6 || priv.IP6GatewayIP == nil || priv.Public {
		t.Errorf("private nic %+v", priv)
	}
	if pub.Tap != "p-9-1" || pub.MAC != PublicIPMAC(netip.MustParseAddr("185.69.166.7")).String() ||
		pub.IP4AddressCIDR.String() != "185.69.166.7/24" || pub.IP4GatewayIP.String() != "185.69.166.1" || !pub.Public {
		t.Errorf("public nic %+v", pub)
	}
	args := vm.KernelArgs(spec)
	for _, s := range []string{"net_eth0=10.1.3.7/24,10.1.3.1,10.1.0.0/16,", "net_eth1=185.69.166.7/24,185.69.166.1,slaac,public",
		"net_dns=8.8.8.8,1.1.1.1,2001:4860:4860::8888", "root=/dev/vda rw"} {
		if !strings.Contains(args, s) {
			t.Errorf("kernel command line %q lacks %q", args, s)
		}
	}

	// Idempotent: the same result, the VM untouched.
	before, _ := e.vms.Status(ctx, "20-1")
	res2, err := e.vm.Provision(ctx, d)
	if err != nil || res2 != res {
		t.Fatalf("second provision: %+v %v", res2, err)
	}
	if after, _ := e.vms.Status(ctx, "20-1"); !after.Since.Equal(before.Since) {
		t.Error("second provision restarted the VM")
	}

	if err := e.vm.Decommission(ctx, d); err != nil {
		t.Fatal(err)
	}
	e.empty(t)
	if err := e.vm.Decommission(ctx, d); err != nil {
		t.Fatalf("second decommission: %v", err)
	}
}

func TestVMWaitsForDependencies(t *testing.T) {
	e := newVMEnv(t, nil)
	ctx := t.Context()
	w := guestVM()
	w.Network = gridtypes.VMNetwork{NetworkID: "net2", IPAddress: "10.2.1.5", PublicIP: 9}
	d := e.put(t, 20, w, provision.StateDeploying)

	// network not there yet
	if _, err := e.vm.Provision(ctx, d); !errors.Is(err, provision.ErrDependency) {
		t.Fatalf("without network: %v; want ErrDependency", err)
	}
	e.empty(t)
	e.addNetwork(t, "net2", "10.2.0.0/16", "10.2.1.0/24")
	// public IP not on the node yet, then still deploying
	if _, err := e.vm.Provision(ctx, d); !errors.Is(err, provision.ErrDependency) {
		t.Fatalf("without public ip: %v; want ErrDependency", err)
	}
	e.publicIP(t, 9, testUser, provision.StateDeploying)
	if _, err := e.vm.Provision(ctx, d); !errors.Is(err, provision.ErrDependency) {
		t.Fatalf("public ip deploying: %v; want ErrDependency", err)
	}
	e.empty(t)
	e.setState(t, 9, provision.StateDeployed)
	res, err := e.vm.Provision(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if r := res.(gridtypes.VMResult); r.PublicIP != "185.69.166.7" || r.IP != "10.2.1.5" {
		t.Fatalf("result %+v", r)
	}
	if err := e.vm.Decommission(ctx, d); err != nil {
		t.Fatal(err)
	}
	e.empty(t)
}

func TestVMBadInput(t *testing.T) {
	for _, tt := range []struct {
		name  string
		mod   func(t *testing.T, e *vmEnv, w *gridtypes.VM)
		field string
		is    error
	}{
		{"ip outside the subnet", func(_ *testing.T, _ *vmEnv, w *gridtypes.VM) { w.Network.IPAddress = "10.1.4.7" }, "network.ipaddress", nil},
		{"ip is the gateway", func(_ *testing.T, _ *vmEnv, w *gridtypes.VM) { w.Network.IPAddress = "10.1.3.1" }, "network.ipaddress", nil},
		{"ip is the broadcast", func(_ *testing.T, _ *vmEnv, w *gridtypes.VM) { w.Network.IPAddress = "10.1.3.255" }, "network.ipaddress", nil},
		{"public ip of another user", func(t *testing.T, e *vmEnv, w *gridtypes.VM) {
			e.publicIP(t, 9, testUser+1, provision.StateDeployed)
			w.Network.PublicIP = 9
		}, "public_ip", ErrForeignPublicIP},
		{"public ip is a volume", func(t *testing.T, e *vmEnv, w *gridtypes.VM) {
			d := deployment(t, 9, &gridtypes.Volume{Size: 1, Type: gridtypes.DiskSSD})
			_ = e.store.Put(&provision.Record{Reservation: d.Reservation, Name: d.Name, State: provision.StateDeployed})
			w.Network.PublicIP = 9
		}, "public_ip", nil},
		{"public ip deleted", func(t *testing.T, e *vmEnv, w *gridtypes.VM) {
			e.publicIP(t, 9, testUser, provision.StateDeleted)
			w.Network.PublicIP = 9
		}, "public_ip", nil},
		{"hdd disk", func(_ *testing.T, _ *vmEnv, w *gridtypes.VM) { w.Disks[1].Type = gridtypes.DiskHDD }, "disks[1].type", nil},
		{"small memory", func(_ *testing.T, _ *vmEnv, w *gridtypes.VM) { w.Memory = 256 }, "memory", nil},
		{"no kernel", func(_ *testing.T, _ *vmEnv, w *gridtypes.VM) { w.KernelImage = "/nope" }, "kernel_image", vm.ErrKernelNotFound},
		{"kernel out of the flist", func(_ *testing.T, _ *vmEnv, w *gridtypes.VM) { w.KernelImage = "/escape" }, "kernel_image", vm.ErrInvalidVM},
		{"initrd is a dir", func(_ *testing.T, _ *vmEnv, w *gridtypes.VM) { w.InitrdImage = "/boot" }, "initrd_image", vm.ErrKernelNotFound},
		{"quote in kernel args", func(_ *testing.T, _ *vmEnv, w *gridtypes.VM) { w.KernelArgs = `console=ttyS0 x="` }, "kernel_args", nil},
		{"newline in ssh key", func(_ *testing.T, _ *vmEnv, w *gridtypes.VM) { w.SSHKeys = []string{"ssh-rsa A\ninit=/bin/sh"} }, "ssh_keys[0]", nil},
		{"public ip6 alone", func(_ *testing.T, _ *vmEnv, w *gridtypes.VM) { w.Network.PublicIP6 = true }, "network.public_ip6", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newVMEnv(t, nil)
			w := guestVM()
			tt.mod(t, e, w)
			d := e.put(t, 20, w, provision.StateDeploying)
			_, err := e.vm.Provision(t.Context(), d)
			fe, ok := errors.AsType[*gridtypes.FieldError](err)
			if !ok || fe.Field != tt.field || !errors.Is(err, gridtypes.ErrInvalid) {
				t.Fatalf("error %v (%T); want a field error on %s", err, err, tt.field)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v does not wrap %v", err, tt.is)
			}
			if errors.Is(err, provision.ErrDependency) || errors.Is(err, provision.ErrTemporary) {
				t.Errorf("bad input %v would be retried", err)
			}
			e.empty(t)
		})
	}
}

func TestVMPublicIPServesOneVM(t *testing.T) {
	e := newVMEnv(t, nil)
	ctx := t.Context()
	e.addNetwork(t, "net2", "10.2.0.0/16", "10.2.1.0/24")
	e.publicIP(t, 9, testUser, provision.StateDeployed)
	w1 := guestVM()
	w1.Network.PublicIP = 9
	a := e.put(t, 20, w1, provision.StateDeploying)
	if _, err := e.vm.Provision(ctx, a); err != nil {
		t.Fatal(err)
	}
	w2 := guestVM()
	w2.Network = gridtypes.VMNetwork{NetworkID: "net2", IPAddress: "10.2.1.5", PublicIP: 9}
	b := e.put(t, 21, w2, provision.StateDeploying)
	if _, err := e.vm.Provision(ctx, b); !errors.Is(err, ErrPublicIPInUse) {
		t.Fatalf("second vm on the public ip: %v; want ErrPublicIPInUse", err)
	}
	if err := e.vm.Decommission(ctx, b); err != nil {
		t.Fatal(err)
	}
	if ok, _ := e.net.PubTapExists("9-1"); !ok {
		t.Fatal("refused vm removed the public tap of the first")
	}
	if err := e.vm.Decommission(ctx, a); err != nil {
		t.Fatal(err)
	}
	e.empty(t)
}

func TestVMPublicGateway(t *testing.T) {
	for _, tt := range []struct {
		name string
		farm bool
		node string
		want string
		err  error
	}{
		{"farm", true, "185.69.166.254", "185.69.166.1", nil},
		{"node fallback", false, "185.69.166.254", "185.69.166.254", nil},
		{"none", false, "", "", ErrNoPublicGateway},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newVMEnv(t, func(c *VMConfig) {
				if tt.node != "" {
					c.PublicGateway4 = netip.MustParseAddr(tt.node)
				}
			})
			if !tt.farm {
				e.gw.gws = nil
			}
			e.publicIP(t, 9, testUser, provision.StateDeployed)
			w := guestVM()
			w.Network.PublicIP = 9
			d := e.put(t, 20, w, provision.StateDeploying)
			_, err := e.vm.Provision(t.Context(), d)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("error %v; want %v", err, tt.err)
				}
				e.empty(t)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			spec, _ := e.vms.Spec("20-1")
			if gw := spec.Network.Ifaces[1].IP4GatewayIP.String(); gw != tt.want {
				t.Fatalf("gateway %s, want %s", gw, tt.want)
			}
		})
	}
}

func TestVMUpdate(t *testing.T) {
	e := newVMEnv(t, nil)
	ctx := t.Context()
	e.addNetwork(t, "net2", "10.2.0.0/16", "10.2.1.0/24")
	d := e.put(t, 20, guestVM(), provision.StateDeployed)
	if _, err := e.vm.Provision(ctx, d); err != nil {
		t.Fatal(err)
	}
	disk0, _ := e.disks.Inspect("20-1-0")
	if err := os.WriteFile(disk0.Path, []byte("DATA"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk0.Path, 64*vdisk.MiB); err != nil {
		t.Fatal(err)
	}

	// More memory, another kernel, one disk less, another network: an
	// update (the engine calls Provision with the same working name).
	w := guestVM()
	w.Memory, w.KernelImage = 2048, "/other/vmlinuz"
	w.Disks = w.Disks[:1]
	w.Network = gridtypes.VMNetwork{NetworkID: "net2", IPAddress: "10.2.1.5"}
	u := deployment(t, 21, w)
	u.Name, u.Store = d.Name, e.store
	res, err := e.vm.Provision(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := e.vms.Spec("20-1")
	if spec.Memory != 2048 || filepath.Base(spec.KernelImage) != "vmlinuz" || len(spec.Disks) != 1 || res.(gridtypes.VMResult).IP != "10.2.1.5" {
		t.Fatalf("updated spec %+v, result %+v", spec, res)
	}
	if b, _ := os.ReadFile(disk0.Path); !strings.HasPrefix(string(b), "DATA") {
		t.Error("the kept disk lost its data")
	}
	if e.disks.Exists("20-1-1") {
		t.Error("the dropped disk is still allocated")
	}
	if vms := e.net.VMTapsOf(pkg.NetID(gridtypes.NetworkID(testUser, "net1"))); len(vms) != 0 {
		t.Errorf("the taps of %v on the network left are still there", vms)
	}
	if vms := e.net.VMTapsOf(pkg.NetID(gridtypes.NetworkID(testUser, "net2"))); !slices.Equal(vms, []string{"20-1"}) {
		t.Errorf("taps on the new network: %v", vms)
	}
	// A disk cannot change size.
	w2 := *w
	w2.Disks = []gridtypes.VMDisk{{Size: 128}}
	u2 := deployment(t, 22, &w2)
	u2.Name, u2.Store = d.Name, e.store
	if _, err := e.vm.Provision(ctx, u2); err == nil || !errors.Is(err, gridtypes.ErrInvalid) {
		t.Fatalf("disk resize: %v; want a field error", err)
	}
	if spec, ok := e.vms.Spec("20-1"); !ok || spec.Memory != 2048 {
		t.Fatal("a refused update stopped the running vm")
	}
	if err := e.vm.Decommission(ctx, u); err != nil {
		t.Fatal(err)
	}
	e.empty(t)
}

func TestVMPowerCut(t *testing.T) {
	e := newVMEnv(t, nil)
	ctx := t.Context()
	w := guestVM()
	d := e.put(t, 20, w, provision.StateDeployed)
	res, err := e.vm.Provision(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	// Power cut: no VM, no tap, no mount; disks and state files stay.
	diskDir := filepath.Dir(mustPath(t, e, "20-1-0"))
	e.newVMs(diskDir)
	if err := e.net.RemoveVMTap(pkg.NetID(gridtypes.NetworkID(testUser, "net1")), "20-1"); err != nil {
		t.Fatal(err)
	}
	if err := e.fl.NamedUmount("20-1-img"); err != nil {
		t.Fatal(err)
	}
	e.build(t)
	res2, err := e.vm.Provision(ctx, d)
	if err != nil || res2 != res {
		t.Fatalf("after power cut: %+v %v; want %+v", res2, err, res)
	}
	if !e.vms.Exists("20-1") {
		t.Fatal("vm not back")
	}
	if err := e.vm.Decommission(ctx, d); err != nil {
		t.Fatal(err)
	}
	e.empty(t)
}

func mustPath(t *testing.T, e *vmEnv, id string) string {
	t.Helper()
	info, err := e.disks.Inspect(id)
	if err != nil {
		t.Fatal(err)
	}
	return info.Path
}

func TestVMNoKeepAliveRunsOnce(t *testing.T) {
	e := newVMEnv(t, nil)
	ctx := t.Context()
	w := guestVM()
	w.NoKeepAlive = true
	d := e.put(t, 20, w, provision.StateDeployed)
	if _, err := e.vm.Provision(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := e.vms.Crash("20-1", "guest powered off", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.vm.Provision(ctx, d); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.vms.Status(ctx, "20-1"); st.State != vm.StateStopped {
		t.Fatalf("ended one-shot vm is %s after re-provision", st.State)
	}
	// after a restart of the module, it is not run again either
	e.newVMs(filepath.Dir(mustPath(t, e, "20-1-0")))
	e.build(t)
	if _, err := e.vm.Provision(ctx, d); err != nil {
		t.Fatal(err)
	}
	if e.vms.Exists("20-1") {
		t.Fatal("one-shot vm started again")
	}
	if err := e.vm.Decommission(ctx, d); err != nil {
		t.Fatal(err)
	}
	e.empty(t)
}

// failingVMs is a VM module that refuses to run anything.
type failingVMs struct {
	*vmtest.Fake
	err error
}

func (f failingVMs) Run(pkg.VM) error { return f.err }

func TestVMUndoOnFailure(t *testing.T) {
	for _, tt := range []struct {
		name      string
		err       error
		temporary bool
	}{
		{"module not ready", vm.ErrNotReady, true},
		{"qemu does not start", fmt.Errorf("qemu: %w", vm.ErrStart), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newVMEnv(t, nil)
			e.publicIP(t, 9, testUser, provision.StateDeployed)
			var err error
			e.vm, _, err = NewVMProvisioners(e.cfg, VMDeps{Networker: e.net, Flister: e.fl, VDisks: e.disks,
				VMs: failingVMs{e.vms, tt.err}, Gateways: e.gw}, e.log)
			if err != nil {
				t.Fatal(err)
			}
			w := guestVM()
			w.Network.PublicIP = 9
			d := e.put(t, 20, w, provision.StateDeploying)
			_, err = e.vm.Provision(t.Context(), d)
			if err == nil || errors.Is(err, provision.ErrTemporary) != tt.temporary {
				t.Fatalf("error %v; temporary want %v", err, tt.temporary)
			}
			e.empty(t)
		})
	}
}

func TestVMConfigValidate(t *testing.T) {
	if err := DefaultVMConfig().Validate(); err != nil {
		t.Fatalf("default: %v", err)
	}
	for name, mod := range map[string]func(*VMConfig){
		"relative state":  func(c *VMConfig) { c.StateDir = "state" },
		"no k3os flist":   func(c *VMConfig) { c.K3OSFlist = "" },
		"no timeout":      func(c *VMConfig) { c.InstallTimeout = 0 },
		"ipv6 gateway":    func(c *VMConfig) { c.PublicGateway4 = netip.MustParseAddr("2001:db8::1") },
		"zero nameserver": func(c *VMConfig) { c.Nameservers = append(c.Nameservers, netip.Addr{}) },
	} {
		c := DefaultVMConfig()
		mod(&c)
		if c.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, _, err := NewVMProvisioners(DefaultVMConfig(), VMDeps{}, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("NewVMProvisioners without modules accepted")
	}
}

func TestHostAddress(t *testing.T) {
	_, sub, _ := net.ParseCIDR("10.1.3.0/24")
	for ip, want := range map[string]bool{"10.1.3.0": false, "10.1.3.1": true, "10.1.3.254": true, "10.1.3.255": false, "10.1.4.1": false} {
		if got := hostAddress(*sub, netip.MustParseAddr(ip).AsSlice()); got != want {
			t.Errorf("%s: %v", ip, got)
		}
	}
}

func FuzzVMState(f *testing.F) {
	f.Add([]byte(`{"kind":"vm","net_id":"abc","pub_tap":"9-1","mount":"20-1-img","disks":["20-1-0"],"spec":"x","started":true}`))
	f.Add([]byte(`{"kind":"kubernetes","installed":true}`))
	f.Add([]byte(`{"kind":"vm","net_id":"abc","vm_tap":true,"old_net_id":"def","old_vm_tap":false}`))
	f.Add([]byte(`{"kind":1}`))
	f.Add([]byte(`{} {}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeVMState(b)
		if err != nil {
			return
		}
		enc, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := decodeVMState(enc)
		if err != nil || !slices.Equal(s.Disks, s2.Disks) || s.Spec != s2.Spec || s.NetID != s2.NetID || s.VMTap != s2.VMTap {
			t.Fatalf("round trip: %+v %+v %v", s, s2, err)
		}
	})
}
