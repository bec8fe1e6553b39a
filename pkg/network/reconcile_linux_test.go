package network_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/netns"
	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/network/networktest"
)

// TestReconcileAtStart: while the agent is down, a resource is deleted from
// the store, the WireGuard process of another dies and part of its
// namespace is lost; the next start removes the first entirely and repairs
// the second.
func TestReconcileAtStart(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t, "ip", "nft", "ping")
	g := newGrid(t, 1)
	nd := g.nodes[0]
	nd.start()
	x := networktest.NR("ReconX000001", "x", "10.50.0.0/16", "10.50.1.0/24", 52101, networktest.NewKey(), nil)
	y := networktest.NR("ReconY000001", "y", "10.51.0.0/16", "10.51.1.0/24", 52102, networktest.NewKey(), nil)
	for _, nr := range []pkg.NetResource{x, y} {
		if _, err := nd.mod.CreateNR(nr); err != nil {
			t.Fatal(err)
		}
	}
	m, err := nd.mod.Join(x.NetID, "cx", pkg.ContainerNetworkConfig{IPs: []string{"10.50.1.5"}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = nd.mod.Leave(x.NetID, "cx") }()
	wgX, wgY := nd.cfg.NamePrefix+"wg@"+string(x.NetID), nd.cfg.NamePrefix+"wg@"+string(y.NetID)
	pidX := nd.sup.Pid(wgX)

	nd.halt()
	if err := os.Remove(filepath.Join(nd.cfg.StateDir, "networks", string(y.NetID))); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pidX, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	nsX := nd.cfg.NamePrefix + "n-" + string(x.NetID)
	run(t, "ip", "-n", nsX, "link", "del", "public")
	run(t, "ip", "netns", "exec", nsX, "nft", "delete", "table", "inet", "zos")
	testutil.WaitFor(t, 5*time.Second, "x's device process gone", func() error {
		if nd.sup.Pid(wgX) != 0 {
			return os.ErrExist
		}
		return nil
	})

	nd.start()
	if netns.Exists(nd.cfg.NamePrefix + "n-" + string(y.NetID)) {
		t.Errorf("orphan namespace of y left")
	}
	if ok, _ := linkExists(nd.hostNS, "b-"+string(y.NetID)); ok {
		t.Errorf("orphan bridge of y left")
	}
	if nd.sup.Pid(wgY) != 0 {
		t.Errorf("orphan device process of y left")
	}
	if p := nd.sup.Pid(wgX); p == 0 || p == pidX {
		t.Errorf("x's device process not restarted (pid %d, was %d)", p, pidX)
	}
	if err := ping(m.Namespace, inetGW, 1, 2*time.Second); err != nil {
		t.Errorf("x not repaired: %v", err)
	}
	out := run(t, "ip", "netns", "exec", nsX, "nft", "list", "table", "inet", "zos")
	if len(out) == 0 {
		t.Errorf("x's firewall not restored")
	}
}
