package primitives

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/network"
	"github.com/zos-go/zos/pkg/provision"
)

// privTap is the tap of a running VM's first (private) interface.
func (e *vmEnv) privTap(t *testing.T, name string) string {
	t.Helper()
	spec, ok := e.vms.Spec(name)
	if !ok || len(spec.Network.Ifaces) == 0 {
		t.Fatalf("vm %s not running with a nic: %+v", name, spec)
	}
	return spec.Network.Ifaces[0].Tap
}

func TestVMManyVMsPerNetwork(t *testing.T) {
	e := newVMEnv(t, nil)
	ctx := t.Context()
	netID := pkg.NetID(gridtypes.NetworkID(testUser, "net1"))
	a := e.put(t, 20, guestVM(), provision.StateDeploying)
	w := guestVM()
	w.Network.IPAddress = "10.1.3.8"
	b := e.put(t, 21, w, provision.StateDeploying)
	k := e.put(t, 22, k8sWorkload("10.1.3.9"), provision.StateDeploying)
	e.installer(t, "22-1-install")
	for _, d := range []*provision.Deployment{a, b} {
		if _, err := e.vm.Provision(ctx, d); err != nil {
			t.Fatalf("vm %s: %v", d.Name, err)
		}
		e.setState(t, d.Reservation.ID, provision.StateDeployed)
	}
	if _, err := e.k8s.Provision(ctx, k); err != nil {
		t.Fatalf("kubernetes on the same network: %v", err)
	}
	if got := e.net.VMTapsOf(netID); !slices.Equal(got, []string{"20-1", "21-1", "22-1"}) {
		t.Fatalf("taps of %v on the network", got)
	}
	taps := map[string]bool{}
	for _, name := range []string{"20-1", "21-1", "22-1"} {
		tap := e.privTap(t, name)
		if tap != network.VMTapName(netID, name) || taps[tap] {
			t.Fatalf("vm %s on tap %s (taps so far %v)", name, tap, taps)
		}
		taps[tap] = true
	}

	// The decommission of a VM that never deployed on the network (the
	// engine cleaning a failure) leaves the others' taps alone.
	c := deployment(t, 23, guestVM())
	if err := e.vm.Decommission(ctx, c); err != nil {
		t.Fatal(err)
	}
	// Decommissioning one VM removes its tap only.
	if err := e.vm.Decommission(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got := e.net.VMTapsOf(netID); !slices.Equal(got, []string{"21-1", "22-1"}) {
		t.Fatalf("taps of %v after removing 20-1", got)
	}
	if e.vms.Exists("20-1") || !e.vms.Exists("21-1") || !e.vms.Exists("22-1") {
		t.Fatal("decommission of 20-1 touched the other vms")
	}
	// the others still provision as they are (not restarted)
	before, _ := e.vms.Status(ctx, "21-1")
	if _, err := e.vm.Provision(ctx, b); err != nil {
		t.Fatal(err)
	}
	if after, _ := e.vms.Status(ctx, "21-1"); !after.Since.Equal(before.Since) {
		t.Error("re-provision restarted the vm")
	}
	if err := e.k8s.Decommission(ctx, k); err != nil {
		t.Fatal(err)
	}
	if got := e.net.VMTapsOf(netID); !slices.Equal(got, []string{"21-1"}) || !e.vms.Exists("21-1") {
		t.Fatalf("taps of %v after removing the kubernetes vm", got)
	}
	if err := e.vm.Decommission(ctx, b); err != nil {
		t.Fatal(err)
	}
	e.empty(t)
}

// TestVMTapLostBeforeState: a tap made but its VM's state file lost (the
// state was unreadable) still goes with the VM: the tap carries its name.
func TestVMTapLostBeforeState(t *testing.T) {
	e := newVMEnv(t, nil)
	ctx := t.Context()
	d := e.put(t, 20, guestVM(), provision.StateDeploying)
	if _, err := e.vm.Provision(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.vm.b.statePath(d.Name), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.vm.Decommission(ctx, d); err != nil {
		t.Fatal(err)
	}
	e.empty(t)
}

// legacyVM turns the deployed VM name into one deployed before taps per
// VM: running on the network's shared tap t-<netid>, with a state file
// without vm_tap.
func (e *vmEnv) legacyVM(t *testing.T, netID pkg.NetID, name, flist string) {
	t.Helper()
	spec, ok := e.vms.Spec(name)
	if !ok {
		t.Fatalf("vm %s not running", name)
	}
	if err := e.vms.Delete(name); err != nil {
		t.Fatal(err)
	}
	if err := e.net.RemoveVMTap(netID, name); err != nil {
		t.Fatal(err)
	}
	tap, err := e.net.SetupTap(netID)
	if err != nil {
		t.Fatal(err)
	}
	spec.Network.Ifaces[0].Tap = tap
	if err := e.vms.Run(spec); err != nil {
		t.Fatal(err)
	}
	path := e.vm.b.statePath(name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["vm_tap"] != true {
		t.Fatalf("state %s does not record the vm's tap", data)
	}
	delete(raw, "vm_tap")
	raw["spec"] = specHash(spec, flist)
	if data, err = json.Marshal(raw); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestVMSharedTapFromBefore(t *testing.T) {
	e := newVMEnv(t, nil)
	ctx := t.Context()
	net1 := pkg.NetID(gridtypes.NetworkID(testUser, "net1"))
	shared := "t-" + string(net1)
	a := e.put(t, 20, guestVM(), provision.StateDeployed)
	if _, err := e.vm.Provision(ctx, a); err != nil {
		t.Fatal(err)
	}
	e.legacyVM(t, net1, "20-1", testVMFlist)

	// The agent restarts: the old VM keeps running on the shared tap.
	before, _ := e.vms.Status(ctx, "20-1")
	if _, err := e.vm.Provision(ctx, a); err != nil {
		t.Fatal(err)
	}
	if after, _ := e.vms.Status(ctx, "20-1"); !after.Since.Equal(before.Since) || e.privTap(t, "20-1") != shared {
		t.Fatalf("old vm restarted or moved to %s", e.privTap(t, "20-1"))
	}
	// A new VM joins the network on a tap of its own.
	w := guestVM()
	w.Network.IPAddress = "10.1.3.8"
	b := e.put(t, 21, w, provision.StateDeploying)
	if _, err := e.vm.Provision(ctx, b); err != nil {
		t.Fatalf("second vm next to an old one: %v", err)
	}
	if e.privTap(t, "21-1") != network.VMTapName(net1, "21-1") {
		t.Fatalf("new vm on %s", e.privTap(t, "21-1"))
	}
	// Its decommission leaves the shared tap; the old VM's removes it.
	if err := e.vm.Decommission(ctx, b); err != nil {
		t.Fatal(err)
	}
	if ok, _ := e.net.TapExists(net1); !ok || !e.vms.Exists("20-1") {
		t.Fatal("the new vm's decommission took the old vm's tap")
	}
	if err := e.vm.Decommission(ctx, a); err != nil {
		t.Fatal(err)
	}
	e.empty(t)
}

func TestVMSharedTapFromBeforeMoves(t *testing.T) {
	e := newVMEnv(t, nil)
	ctx := t.Context()
	net1 := pkg.NetID(gridtypes.NetworkID(testUser, "net1"))
	net2 := e.addNetwork(t, "net2", "10.2.0.0/16", "10.2.1.0/24")

	// After a reboot (no VM, no shared tap), an old VM comes back on a
	// tap of its own.
	a := e.put(t, 20, guestVM(), provision.StateDeployed)
	if _, err := e.vm.Provision(ctx, a); err != nil {
		t.Fatal(err)
	}
	e.legacyVM(t, net1, "20-1", testVMFlist)
	e.newVMs(filepath.Dir(mustPath(t, e, "20-1-0")))
	if err := e.net.RemoveTap(net1); err != nil {
		t.Fatal(err)
	}
	e.build(t)
	if _, err := e.vm.Provision(ctx, a); err != nil {
		t.Fatal(err)
	}
	if tap := e.privTap(t, "20-1"); tap != network.VMTapName(net1, "20-1") {
		t.Fatalf("old vm after a reboot on %s", tap)
	}
	if st, _, _ := e.vm.b.load("20-1"); !st.VMTap {
		t.Fatalf("state %+v does not record the vm's tap", st)
	}

	// An old VM updated onto another network: the shared tap it left goes,
	// the other VM keeps its own.
	w := guestVM()
	w.Network.IPAddress = "10.1.3.8"
	b := e.put(t, 21, w, provision.StateDeployed)
	if _, err := e.vm.Provision(ctx, b); err != nil {
		t.Fatal(err)
	}
	e.legacyVM(t, net1, "21-1", testVMFlist)
	w2 := guestVM()
	w2.Network = gridtypes.VMNetwork{NetworkID: "net2", IPAddress: "10.2.1.5"}
	u := deployment(t, 22, w2)
	u.Name, u.Store = b.Name, e.store
	if _, err := e.vm.Provision(ctx, u); err != nil {
		t.Fatal(err)
	}
	if tap := e.privTap(t, "21-1"); tap != network.VMTapName(net2, "21-1") {
		t.Fatalf("updated vm on %s", tap)
	}
	if ok, _ := e.net.TapExists(net1); ok {
		t.Error("the shared tap the old vm left is still there")
	}
	if got := e.net.VMTapsOf(net1); !slices.Equal(got, []string{"20-1"}) {
		t.Errorf("taps of %v on the network left", got)
	}
	for _, d := range []*provision.Deployment{a, u} {
		if err := e.vm.Decommission(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	e.empty(t)
}

// TestVMUpdateKeepsTap: an update that drops the public IP keeps the VM's
// tap on the network it stays on, its own or (a VM from before taps per
// VM) the shared one.
func TestVMUpdateKeepsTap(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		t.Run(map[bool]string{false: "own", true: "shared"}[legacy], func(t *testing.T) {
			e := newVMEnv(t, nil)
			ctx := t.Context()
			net1 := pkg.NetID(gridtypes.NetworkID(testUser, "net1"))
			e.publicIP(t, 9, testUser, provision.StateDeployed)
			w := guestVM()
			w.Network.PublicIP = 9
			d := e.put(t, 20, w, provision.StateDeployed)
			if _, err := e.vm.Provision(ctx, d); err != nil {
				t.Fatal(err)
			}
			tap, own := network.VMTapName(net1, "20-1"), []string{"20-1"}
			if legacy {
				e.legacyVM(t, net1, "20-1", testVMFlist)
				tap, own = "t-"+string(net1), nil
			}
			u := deployment(t, 21, guestVM())
			u.Name, u.Store = d.Name, e.store
			if _, err := e.vm.Provision(ctx, u); err != nil {
				t.Fatal(err)
			}
			if ok, _ := e.net.PubTapExists("9-1"); ok {
				t.Error("the public tap the vm left is still there")
			}
			if got := e.net.VMTapsOf(net1); !slices.Equal(got, own) || e.privTap(t, "20-1") != tap {
				t.Fatalf("vm on %s, taps of %v on the network it stays on", e.privTap(t, "20-1"), got)
			}
			if ok, _ := e.net.TapExists(net1); ok != legacy {
				t.Fatalf("shared tap exists: %v", ok)
			}
			if err := e.vm.Decommission(ctx, u); err != nil {
				t.Fatal(err)
			}
			e.empty(t)
		})
	}
}
