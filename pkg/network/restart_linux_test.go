package network_test

import (
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg"
)

// TestDeviceProcessRestart: when a userspace WireGuard process dies and its
// supervisor starts it again (same command, as zinit does), the device comes
// back with its key, port and peers from its configuration file, without
// the agent, and traffic flows again.
func TestDeviceProcessRestart(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t, "ip", "nft", "ping")
	g := newGrid(t, 2)
	a, b := g.nodes[0], g.nodes[1]
	a.start()
	b.start()
	id := pkg.NetID("Restart00001")
	ra, rb := pair(a, b, id)
	for _, x := range []struct {
		nd *node
		nr pkg.NetResource
		ip string
	}{{a, ra, "10.20.1.5"}, {b, rb, "10.20.2.5"}} {
		if _, err := x.nd.mod.CreateNR(x.nr); err != nil {
			t.Fatal(err)
		}
		if _, err := x.nd.mod.Join(id, "c", pkg.ContainerNetworkConfig{IPs: []string{x.ip}}); err != nil {
			t.Fatal(err)
		}
		defer x.nd.mod.Leave(id, "c")
	}
	if got := a.mod.WGPorts(); !slices.Equal(got, []uint16{ra.WGListenPort}) {
		t.Errorf("WGPorts = %v", got)
	}
	nsA := a.cfg.NamePrefix + "c"
	testutil.WaitFor(t, 20*time.Second, "a→b", func() error { return ping(nsA, "10.20.2.5", 1, time.Second) })

	svc := a.cfg.NamePrefix + "wg@" + string(id)
	argv := procArgv(t, a.sup.Pid(svc))
	if err := syscall.Kill(a.sup.Pid(svc), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "device process gone", func() error {
		if a.sup.Pid(svc) != 0 {
			return syscall.EEXIST
		}
		return nil
	})
	if err := ping(nsA, "10.20.2.5", 1, time.Second); err == nil {
		t.Fatalf("traffic flows without the device process")
	}
	if err := a.sup.Start(t.Context(), svc, argv); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 20*time.Second, "a→b after the device restarted", func() error { return ping(nsA, "10.20.2.5", 1, time.Second) })
}
