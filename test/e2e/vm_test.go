//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/internal/zosd"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/vm/vmtest"
)

// TestVMWithPublicIP boots a VM from an flist (kernel + initramfs) on a
// private network with one of the farm's public IPv4 addresses, and reaches
// it on both: from the network's namespace and from the grid's internet.
func TestVMWithPublicIP(t *testing.T) {
	testutil.RequireRoot(t, "qemu-system-x86_64", "wget")
	testutil.CheckLeaks(t)
	t0 := time.Now()
	kernel := vmtest.Kernel(t)
	t.Logf("guest kernel in %v", time.Since(t0).Round(time.Millisecond))
	g := startGrid(t, 1)
	alice := g.newUser("alice")
	n1 := g.nodeID(0)

	k := wgKey(t)
	net1 := alice.deploy(n1, &gridtypes.Network{
		Name: "vmnet", NetworkIPRange: "10.43.0.0/16", IPRange: "10.43.1.0/24",
		WireguardPrivateKeyEncrypted: k.String(), WireguardPublicKey: k.PublicKey().String(), WireguardListenPort: 51830,
	})
	pub := alice.deploy(n1, &gridtypes.PublicIP{IPAddress: "10.99.250.7/16"})
	t0 = time.Now()
	fl := uploadVMImage(t, g, alice, kernel)
	t.Logf("guest image published in %v", time.Since(t0).Round(time.Millisecond))
	vmID := alice.deploy(n1, &gridtypes.VM{
		CPU: 1, Memory: 512, Flist: fl, InitrdImage: "/initrd.gz",
		Network: gridtypes.VMNetwork{NetworkID: "vmnet", IPAddress: "10.43.1.20", PublicIP: pub},
	})
	for _, id := range []uint64{net1, pub} {
		alice.result(id, 2*time.Minute, gridtypes.StateOK)
	}
	start := time.Now()
	phase := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	res := alice.result(vmID, 3*time.Minute, gridtypes.StateOK)
	phase("vm deployed: " + string(res.Data))

	node := g.Nodes()[0]
	waitCmd(t, 3*time.Minute, "vm console marker", func() (string, error) {
		b, err := zosd.Get(t.Context(), node.API, "/workloads/"+itoa(vmID)+"/logs", nil)
		if err == nil && !strings.Contains(string(b), vmtest.Marker) {
			err = os.ErrNotExist
		}
		return lastLine(string(b)), err
	})
	phase("console marker")
	nrNS := node.Prefix + "n-" + gridtypes.NetworkID(alice.id, "vmnet")
	waitCmd(t, time.Minute, "private address answers", func() (string, error) {
		return inNS(nrNS, "wget", "-q", "-O-", "-T", "2", "http://10.43.1.20/")
	})
	waitCmd(t, time.Minute, "public address answers from the internet", func() (string, error) {
		return inNS(g.InetNS(), "wget", "-q", "-O-", "-T", "2", "http://10.99.250.7/")
	})

	phase("reachable")
	for _, id := range []uint64{vmID, pub, net1} {
		alice.remove(id)
		phase("deleted " + itoa(id))
	}
	if out, err := inNS(g.InetNS(), "wget", "-q", "-O-", "-T", "2", "http://10.99.250.7/"); err == nil {
		t.Errorf("the VM still answers after deletion: %s", out)
	}
}

func itoa(id uint64) string { return strings.TrimSuffix(gwid(id), "-1") }

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// uploadVMImage publishes an flist holding /kernel and /initrd.gz of the
// test guest.
func uploadVMImage(t testing.TB, g *grid, u *user, k vmtest.GuestKernel) string {
	t.Helper()
	root := testutil.TempDir(t)
	initrd, err := vmtest.BuildInitramfs(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "initrd.gz"), initrd, 0o644); err != nil {
		t.Fatal(err)
	}
	kb, err := os.ReadFile(k.Vmlinuz)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "kernel"), kb, 0o644); err != nil {
		t.Fatal(err)
	}
	return publishFlist(t, g, u, root, "guest.fl")
}

// publishFlist packs dir into an flist with the user's CLI (blocks uploaded
// through the forwarded API, the nodes' view of the block store recorded in
// the flist) and returns its URL as nodes see it.
func publishFlist(t testing.TB, g *grid, u *user, dir, name string) string {
	t.Helper()
	hub := g.ExplorerURL() + "/hub"
	fl := filepath.Join(testutil.TempDir(t), name)
	zos := filepath.Join(g.cfg.Bin, "zos")
	for _, args := range [][]string{
		{"flist", "create", dir, "-o", fl, "--store", hub + "/blocks", "--route", "00-ff=" + g.BlocksURL(),
			"--hub", hub, "--user", u.name, "--identity", u.seedFile, "-q"},
		{"flist", "upload", fl, "--hub", hub, "--user", u.name, "--identity", u.seedFile},
	} {
		if out, err := exec.Command(zos, args...).CombinedOutput(); err != nil {
			t.Fatalf("zos %v: %v: %s", args[:2], err, out)
		}
	}
	return g.HubURL() + "/" + u.name + "/" + name
}
