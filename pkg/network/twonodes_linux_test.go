package network_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/netns"
	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/network"
	"github.com/zos-go/zos/pkg/network/networktest"
)

// pair builds one network spanning nodes a and b: resources 10.20.1.0/24 on
// a and 10.20.2.0/24 on b, each the other's peer.
func pair(a, b *node, id pkg.NetID) (pkg.NetResource, pkg.NetResource) {
	ra := networktest.NR(id, "net", "10.20.0.0/16", "10.20.1.0/24", 51821, networktest.NewKey(), nil)
	rb := networktest.NR(id, "net", "10.20.0.0/16", "10.20.2.0/24", 51822, networktest.NewKey(), nil)
	ra.Peers = []pkg.Peer{networktest.PeerOf(rb, b.endpoint(rb.WGListenPort))}
	rb.Peers = []pkg.Peer{networktest.PeerOf(ra, a.endpoint(ra.WGListenPort))}
	return ra, rb
}

func TestTwoNodesNetwork(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t, "ip", "nft", "ping", "timeout", "bash")
	g := newGrid(t, 2)
	a, b := g.nodes[0], g.nodes[1]
	a.start()
	b.start()
	if a.mod.WireGuardBackend() != network.WGUserspace {
		t.Fatalf("backend = %s", a.mod.WireGuardBackend())
	}
	ra, rb := pair(a, b, "TwoNodes0001")
	nsA, err := a.mod.CreateNR(ra)
	if err != nil {
		t.Fatalf("CreateNR a: %v", err)
	}
	if nsA != a.cfg.NamePrefix+"n-TwoNodes0001" {
		t.Errorf("namespace = %s", nsA)
	}
	if _, err := b.mod.CreateNR(rb); err != nil {
		t.Fatalf("CreateNR b: %v", err)
	}
	ma, err := a.mod.Join(ra.NetID, "ca", pkg.ContainerNetworkConfig{IPs: []string{"10.20.1.5"}})
	if err != nil {
		t.Fatalf("Join a: %v", err)
	}
	mb, err := b.mod.Join(rb.NetID, "cb", pkg.ContainerNetworkConfig{IPs: []string{"10.20.2.5"}})
	if err != nil {
		t.Fatalf("Join b: %v", err)
	}
	t.Cleanup(func() { _ = b.mod.Leave(rb.NetID, "cb") })
	t.Run("ContainersPingOverWireGuard", func(t *testing.T) {
		testutil.WaitFor(t, 20*time.Second, "ping a→b", func() error { return ping(ma.Namespace, "10.20.2.5", 1, time.Second) })
		if err := ping(mb.Namespace, "10.20.1.5", 3, time.Second); err != nil {
			t.Error(err)
		}
		// The gateway and the other node's WireGuard address answer too.
		if err := ping(ma.Namespace, "10.20.1.1", 1, time.Second); err != nil {
			t.Error(err)
		}
		if err := ping(ma.Namespace, "100.64.20.2", 1, time.Second); err != nil {
			t.Error(err)
		}
	})
	t.Run("InternetThroughNAT", func(t *testing.T) {
		if err := ping(ma.Namespace, inetGW, 2, 2*time.Second); err != nil {
			t.Error(err)
		}
	})
	t.Run("Addrs", func(t *testing.T) {
		ips, err := a.mod.Addrs("eth0", ma.Namespace)
		if err != nil || len(ips) == 0 || !ips[0].Equal(ma.IPv4) {
			t.Errorf("Addrs(eth0, %s) = %v, %v", ma.Namespace, ips, err)
		}
		if _, err := a.mod.Addrs("nope0", ""); !errors.Is(err, network.ErrUnknownInterface) {
			t.Errorf("Addrs of a missing iface: %v", err)
		}
	})
	t.Run("DeleteLeavesNothing", func(t *testing.T) {
		if err := a.mod.Leave(ra.NetID, "ca"); err != nil {
			t.Fatal(err)
		}
		if err := a.mod.DeleteNR(ra); err != nil {
			t.Fatal(err)
		}
		if l := nsList(t, a.cfg.NamePrefix+"n-"); len(l) != 0 {
			t.Errorf("namespaces left: %v", l)
		}
		if netns.Exists(ma.Namespace) {
			t.Errorf("container namespace left")
		}
		if ok, _ := linkExists(a.hostNS, "b-TwoNodes0001"); ok {
			t.Errorf("bridge left")
		}
		if pid := a.sup.Pid(a.cfg.NamePrefix + "wg@TwoNodes0001"); pid != 0 {
			t.Errorf("wireguard process %d left", pid)
		}
		for _, f := range []string{
			filepath.Join(network.UAPIDir, a.cfg.NamePrefix+"w-TwoNodes0001.sock"),
			filepath.Join(a.cfg.StateDir, "networks", "TwoNodes0001"),
			filepath.Join(a.cfg.StateDir, "wg", "TwoNodes0001.conf"),
		} {
			if _, err := os.Stat(f); err == nil {
				t.Errorf("file left: %s", f)
			}
		}
		if err := ping(mb.Namespace, "10.20.1.5", 1, time.Second); err == nil {
			t.Errorf("deleted resource still answers")
		}
	})
}
