package network_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/network"
	"github.com/zos-go/zos/pkg/network/networktest"
)

func yggAddrOf(t *testing.T, nd *node) net.IP {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for as := range nd.mod.YggAddresses(ctx) {
		for _, a := range as {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && netip.MustParsePrefix("200::/7").Contains(ip) {
				return a.IP
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	t.Fatalf("node %d: no yggdrasil address", nd.i)
	return nil
}

func ping6(ns string, ip net.IP) error {
	out, err := exec.Command("ip", "netns", "exec", ns, "ping", "-6", "-n", "-c", "1", "-W", "1", ip.String()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ping %s from %s: %v: %s", ip, ns, err, out)
	}
	return nil
}

// TestYggdrasil: two nodes run Debian's yggdrasil in their ndmz, peered over
// the simulated internet; a container with an yggdrasil address on one
// reaches the other node and a 0-db namespace on it through the overlay.
func TestYggdrasil(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t, "ip", "nft", "ping", "yggdrasil")
	g := newGrid(t, 2)
	a, b := g.nodes[0], g.nodes[1]
	for _, nd := range g.nodes {
		_, key, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		nd.cfg.Yggdrasil = &network.YggdrasilConfig{Command: "yggdrasil", PrivateKey: key}
	}
	a.cfg.Yggdrasil.Peers = []string{"tcp://198.18.0.112:9943"}
	b.start()
	a.start()
	yb := yggAddrOf(t, b)
	ya := yggAddrOf(t, a)
	t.Logf("yggdrasil a=%s b=%s", ya, yb)

	nr := networktest.NR("Ygg000000001", "ygg", "10.70.0.0/16", "10.70.1.0/24", 52301, networktest.NewKey(), nil)
	if _, err := a.mod.CreateNR(nr); err != nil {
		t.Fatal(err)
	}
	m, err := a.mod.Join(nr.NetID, "yc", pkg.ContainerNetworkConfig{IPs: []string{"10.70.1.5"}, YggdrasilIP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.mod.Leave(nr.NetID, "yc")
	if m.YggdrasilIP == nil || m.YggdrasilIP[0]&0xfe != 0x02 || m.YggdrasilIP[0]&1 != 1 {
		t.Fatalf("member yggdrasil ip = %v; want one of the node's 300::/8 subnet", m.YggdrasilIP)
	}
	testutil.WaitFor(t, 30*time.Second, "container on a → node b over yggdrasil", func() error { return ping6(m.Namespace, yb) })

	hw := network.HardwareAddrFromInputBytes([]byte("zdb-ygg"))
	zns, err := b.mod.ZDBPrepare(hw)
	if err != nil {
		t.Fatal(err)
	}
	defer b.mod.ZDBDestroy(zns)
	ips, err := b.mod.Addrs("zdb0", zns)
	if err != nil {
		t.Fatal(err)
	}
	var zygg net.IP
	for _, ip := range ips {
		if ip[0]&0xfe == 0x02 {
			zygg = ip
		}
	}
	if zygg == nil {
		t.Fatalf("zdb0 has no yggdrasil address: %v", ips)
	}
	testutil.WaitFor(t, 30*time.Second, "container on a → 0-db on b over yggdrasil", func() error { return ping6(m.Namespace, zygg) })
	if _, err := g.nodes[0].mod.Join(nr.NetID, "plain", pkg.ContainerNetworkConfig{IPs: []string{"10.70.1.6"}}); err != nil {
		t.Fatal(err)
	}
	_ = a.mod.Leave(nr.NetID, "plain")
}
