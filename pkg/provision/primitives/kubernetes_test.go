package primitives

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/network"
	"github.com/zos-go/zos/pkg/provision"
	"github.com/zos-go/zos/pkg/vm"
	"github.com/zos-go/zos/pkg/vm/vmtest"
)

func k8sWorkload(ip string) *gridtypes.Kubernetes {
	return &gridtypes.Kubernetes{Size: 18, ClusterSecret: "s3cr3t-token", NetworkID: "net1", IPAddress: ip,
		MasterIPs: []string{"10.1.2.2", "fd00::2"}, SSHKeys: []string{"ssh-ed25519 AAAAkey me@x", "github:someone"},
		DatastoreEndpoint: "mysql://user:pw@tcp(10.1.2.9:3306)/k3s", DisableDefaultIngress: true}
}

// installer plays the k3os installer: each time an installer VM runs it
// records its spec and, unless told to hang, lets it end by itself.
type installer struct {
	mu    sync.Mutex
	specs []pkg.VM
	hang  bool
}

func (in *installer) runs() []pkg.VM {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]pkg.VM(nil), in.specs...)
}

// watch runs until ctx ends.
func (in *installer) watch(ctx context.Context, vms *vmtest.Fake, name string) {
	var seen time.Time
	for ctx.Err() == nil {
		if st, err := vms.Status(ctx, name); err == nil && st.State == vm.StateRunning && !st.Since.Equal(seen) {
			seen = st.Since
			spec, _ := vms.Spec(name)
			in.mu.Lock()
			in.specs = append(in.specs, spec)
			hang := in.hang
			in.mu.Unlock()
			_ = vms.Console(name, "k3os installing\n")
			if !hang {
				_ = vms.Crash(name, "guest rebooted", 0)
			}
		}
		time.Sleep(time.Millisecond)
	}
}

func (e *vmEnv) installer(t *testing.T, name string) *installer {
	ctx, cancel := context.WithCancel(context.Background())
	in := &installer{}
	done := make(chan struct{})
	vms := e.vms
	go func() { defer close(done); in.watch(ctx, vms, name) }()
	t.Cleanup(func() { cancel(); <-done })
	return in
}

func TestKubernetesProvision(t *testing.T) {
	e := newVMEnv(t, nil)
	ctx := t.Context()
	e.publicIP(t, 9, testUser, provision.StateDeployed)
	w := k8sWorkload("10.1.3.7")
	w.PublicIP = 9
	d := e.put(t, 30, w, provision.StateDeploying)
	in := e.installer(t, "30-1-install")

	res, err := e.k8s.Provision(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if res != (gridtypes.KubernetesResult{ID: "30-1", IP: "10.1.3.7"}) {
		t.Fatalf("result %+v", res)
	}
	runs := in.runs()
	if len(runs) != 1 {
		t.Fatalf("installer ran %d times", len(runs))
	}
	iv := runs[0]
	mount := filepath.Join(e.dir, "flist", "mountpoint", "30-1-k3os")
	if !iv.NoKeepAlive || len(iv.Disks) != 2 || filepath.Base(iv.Disks[0].Path) != "30-1-vda" ||
		iv.Disks[1].Path != filepath.Join(mount, vm.K3OSISOFile) || !iv.Disks[1].ReadOnly {
		t.Errorf("installer %+v", iv)
	}
	for _, s := range []string{"k3os.mode=install", "k3os.token=s3cr3t-token", "k3os.server_url=https://10.1.2.2:6443",
		"k3os.server_url=https://[fd00::2]:6443", `ssh_authorized_keys="ssh-ed25519 AAAAkey me@x"`, `ssh_authorized_keys="github:someone"`,
		`k3os.k3s_args="--datastore-endpoint=mysql://user:pw@tcp(10.1.2.9:3306)/k3s"`, `k3os.k3s_args="--disable=traefik"`} {
		if !strings.Contains(iv.KernelArgs, s) {
			t.Errorf("installer args %q lack %q", iv.KernelArgs, s)
		}
	}
	if e.vms.Exists("30-1-install") {
		t.Error("installer vm left")
	}
	if _, err := e.vms.Status(ctx, "30-1-install"); !errors.Is(err, vm.ErrNotFound) {
		t.Errorf("installer not deleted: %v", err)
	}
	spec, ok := e.vms.Spec("30-1")
	if !ok {
		t.Fatal("k3os vm not running")
	}
	if spec.NoKeepAlive || spec.KernelArgs != vm.K3OSRunArgs || spec.CPU != 1 || spec.Memory != 1024 ||
		len(spec.Disks) != 1 || spec.Disks[0].Path != iv.Disks[0].Path ||
		spec.KernelImage != filepath.Join(mount, vm.K3OSKernelFile) || spec.InitrdImage != filepath.Join(mount, vm.K3OSInitrdFile) {
		t.Errorf("run vm %+v", spec)
	}
	if info, err := e.disks.Inspect("30-1-vda"); err != nil || info.Size != 25*1024*1024*1024 {
		t.Errorf("disk %+v %v; want 25 GiB", info, err)
	}
	if n := spec.Network; !n.NewStyle || len(n.Ifaces) != 2 || n.Ifaces[0].IP4AddressCIDR.String() != "10.1.3.7/24" ||
		n.Ifaces[0].Tap != network.VMTapName(pkg.NetID(gridtypes.NetworkID(testUser, "net1")), "30-1") ||
		n.Ifaces[1].Tap != "p-9-1" || !n.Ifaces[1].Public {
		t.Errorf("network %+v", n)
	}
	if !e.fl.ReadOnly("30-1-k3os") {
		t.Error("k3os flist not read-only")
	}

	// idempotent: no second install, the VM untouched
	before, _ := e.vms.Status(ctx, "30-1")
	if res2, err := e.k8s.Provision(ctx, d); err != nil || res2 != res {
		t.Fatalf("second provision %+v %v", res2, err)
	}
	if after, _ := e.vms.Status(ctx, "30-1"); !after.Since.Equal(before.Since) || len(in.runs()) != 1 {
		t.Error("second provision restarted or reinstalled")
	}

	// power cut: nothing runs, taps and mounts are gone; no reinstall
	e.newVMs(filepath.Dir(mustPath(t, e, "30-1-vda")))
	if err := e.net.RemoveVMTap(pkg.NetID(gridtypes.NetworkID(testUser, "net1")), "30-1"); err != nil {
		t.Fatal(err)
	}
	_ = e.net.RemovePubTap("9-1")
	_ = e.fl.NamedUmount("30-1-k3os")
	e.build(t)
	in2 := e.installer(t, "30-1-install")
	if res2, err := e.k8s.Provision(ctx, d); err != nil || res2 != res {
		t.Fatalf("after power cut %+v %v", res2, err)
	}
	if !e.vms.Exists("30-1") || len(in2.runs()) != 0 {
		t.Fatalf("after power cut: running %v, installs %d", e.vms.Exists("30-1"), len(in2.runs()))
	}

	if err := e.k8s.Decommission(ctx, d); err != nil {
		t.Fatal(err)
	}
	e.empty(t)
	if err := e.k8s.Decommission(ctx, d); err != nil {
		t.Fatalf("second decommission: %v", err)
	}
}

func TestKubernetesLostDiskReinstalls(t *testing.T) {
	e := newVMEnv(t, nil)
	ctx := t.Context()
	d := e.put(t, 30, k8sWorkload("10.1.3.7"), provision.StateDeployed)
	in := e.installer(t, "30-1-install")
	if _, err := e.k8s.Provision(ctx, d); err != nil {
		t.Fatal(err)
	}
	// the disk is lost with the VM (a pool died)
	if err := e.vms.Delete("30-1"); err != nil {
		t.Fatal(err)
	}
	if err := e.disks.Deallocate("30-1-vda"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.k8s.Provision(ctx, d); err != nil {
		t.Fatal(err)
	}
	if n := len(in.runs()); n != 2 {
		t.Fatalf("%d installs; want a second one on the new disk", n)
	}
	if err := e.k8s.Decommission(ctx, d); err != nil {
		t.Fatal(err)
	}
	e.empty(t)
}

func TestKubernetesInstallTimeout(t *testing.T) {
	e := newVMEnv(t, func(c *VMConfig) { c.InstallTimeout = 100 * time.Millisecond })
	d := e.put(t, 30, k8sWorkload("10.1.3.7"), provision.StateDeploying)
	in := e.installer(t, "30-1-install")
	in.hang = true
	_, err := e.k8s.Provision(t.Context(), d)
	if !errors.Is(err, vm.ErrWaitTimeout) || !strings.Contains(err.Error(), "k3os installing") {
		t.Fatalf("error %v; want a timeout quoting the console", err)
	}
	if errors.Is(err, provision.ErrTemporary) {
		t.Error("install timeout would be retried for ever")
	}
	e.empty(t)
}

func TestKubernetesInterruptedInstall(t *testing.T) {
	e := newVMEnv(t, nil)
	d := e.put(t, 30, k8sWorkload("10.1.3.7"), provision.StateDeploying)
	in := e.installer(t, "30-1-install")
	in.hang = true
	// The agent stops (ctx ends) during the install.
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		for len(in.runs()) == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	if _, err := e.k8s.Provision(ctx, d); !errors.Is(err, provision.ErrTemporary) {
		t.Fatalf("interrupted install: %v; want ErrTemporary (retried)", err)
	}
	in.mu.Lock()
	in.hang = false
	in.mu.Unlock()
	if _, err := e.k8s.Provision(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if n := len(in.runs()); n != 2 || !e.vms.Exists("30-1") {
		t.Fatalf("%d installs, running %v; want the install redone", n, e.vms.Exists("30-1"))
	}
	if err := e.k8s.Decommission(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	e.empty(t)
}

func TestKubernetesBadInput(t *testing.T) {
	for _, tt := range []struct {
		name  string
		mod   func(t *testing.T, e *vmEnv, w *gridtypes.Kubernetes)
		field string
	}{
		{"ip outside the subnet", func(_ *testing.T, _ *vmEnv, w *gridtypes.Kubernetes) { w.IPAddress = "10.1.9.7" }, "ipaddress"},
		{"size", func(_ *testing.T, _ *vmEnv, w *gridtypes.Kubernetes) { w.Size = 19 }, "size"},
		{"master ip", func(_ *testing.T, _ *vmEnv, w *gridtypes.Kubernetes) { w.MasterIPs = []string{"nope"} }, "master_ips[0]"},
		{"quote in ssh key", func(_ *testing.T, _ *vmEnv, w *gridtypes.Kubernetes) { w.SSHKeys = []string{`a" k3os.mode=x`} }, "cluster_secret, ssh_keys or datastore_endpoint"},
		{"public ip of another user", func(t *testing.T, e *vmEnv, w *gridtypes.Kubernetes) {
			e.publicIP(t, 9, testUser+1, provision.StateDeployed)
			w.PublicIP = 9
		}, "public_ip"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newVMEnv(t, nil)
			w := k8sWorkload("10.1.3.7")
			tt.mod(t, e, w)
			d := e.put(t, 30, w, provision.StateDeploying)
			_, err := e.k8s.Provision(t.Context(), d)
			fe, ok := errors.AsType[*gridtypes.FieldError](err)
			if !ok || fe.Field != tt.field || errors.Is(err, provision.ErrTemporary) || errors.Is(err, provision.ErrDependency) {
				t.Fatalf("error %v; want a field error on %s", err, tt.field)
			}
			e.empty(t)
		})
	}
}

func TestKubernetesWaitsForNetwork(t *testing.T) {
	e := newVMEnv(t, nil)
	w := k8sWorkload("10.2.1.7")
	w.NetworkID = "net2"
	d := e.put(t, 30, w, provision.StateDeploying)
	if _, err := e.k8s.Provision(t.Context(), d); !errors.Is(err, provision.ErrDependency) {
		t.Fatalf("without network: %v; want ErrDependency", err)
	}
	e.empty(t)
}
