package network_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/network"
	"github.com/zos-go/zos/pkg/network/networktest"
)

// TestUserAccess: a "laptop" namespace on the internet runs Debian's
// wireguard-go and wg with the generated configuration and reaches a
// container of the network.
func TestUserAccess(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t, "ip", "nft", "ping", "wireguard-go", "wg")
	g := newGrid(t, 1)
	nd := g.nodes[0]
	nd.start()
	nr := networktest.NR("Access000001", "net", "10.20.0.0/16", "10.20.1.0/24", 51821, networktest.NewKey(), nil)
	user := networktest.NewKey()
	acc, err := network.NewAccess(nr, nd.endpoint(nr.WGListenPort), user.Private, mustPrefix("10.20.254.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	nr.Peers = []pkg.Peer{acc.Peer}
	if _, err := nd.mod.CreateNR(nr); err != nil {
		t.Fatal(err)
	}
	m, err := nd.mod.Join(nr.NetID, "c", pkg.ContainerNetworkConfig{IPs: []string{"10.20.1.5"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nd.mod.Leave(nr.NetID, "c") })

	laptop := testutil.NetNS(t)
	run(t, "ip", "-n", g.inet, "link", "add", "laptop", "type", "veth", "peer", "name", "eth0", "netns", laptop)
	run(t, "ip", "-n", g.inet, "link", "set", "laptop", "master", "inet", "up")
	run(t, "ip", "-n", laptop, "addr", "add", "198.18.0.50/24", "dev", "eth0")
	run(t, "ip", "-n", laptop, "link", "set", "eth0", "up")
	wgif := testutil.Name(t, "wg")
	testutil.StartProcess(t, nil, "ip", "netns", "exec", laptop, "wireguard-go", "-f", wgif)
	sock := filepath.Join(network.UAPIDir, wgif+".sock")
	testutil.WaitFor(t, 10*time.Second, "wireguard-go socket", func() error { _, err := os.Stat(sock); return err })
	t.Cleanup(func() { _ = os.Remove(sock) })
	conf := filepath.Join(testutil.TempDir(t), "wg.conf")
	if err := os.WriteFile(conf, []byte(acc.WG()), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "netns", "exec", laptop, "wg", "setconf", wgif, conf)
	for _, a := range acc.Addresses {
		run(t, "ip", "-n", laptop, "addr", "add", a.String(), "dev", wgif)
	}
	run(t, "ip", "-n", laptop, "link", "set", wgif, "up")
	for _, r := range acc.Routes {
		run(t, "ip", "-n", laptop, "route", "replace", r.String(), "dev", wgif)
	}
	testutil.WaitFor(t, 20*time.Second, "laptop → container", func() error { return ping(laptop, "10.20.1.5", 1, time.Second) })
	if err := ping(m.Namespace, "10.20.254.1", 1, time.Second); err != nil {
		t.Errorf("container → laptop: %v", err)
	}
}
