//go:build e2e

package e2e

import (
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/zos-go/zos/internal/netns"
	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/network"
	"github.com/zos-go/zos/pkg/provision/primitives"
)

func wgKey(t testing.TB) wgtypes.Key {
	k, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestDeployAcrossTwoNodes deploys, through the explorer, a private network
// spanning two nodes with a laptop peer, a volume, a 0-db namespace and a
// container, checks each from the outside, deletes everything and checks the
// grid is left clean.
func TestDeployAcrossTwoNodes(t *testing.T) {
	testutil.RequireRoot(t, "wireguard-go", "wget")
	testutil.CheckLeaks(t)
	g := startGrid(t, 2)
	alice := g.newUser("alice")
	n1, n2 := g.nodeID(0), g.nodeID(1)

	// The network: 10.42.1.0/24 on node 1, 10.42.2.0/24 on node 2, the
	// laptop dials node 1 from 10.42.3.0/24. WireGuard listens in each
	// node's public namespace (10.99.<i>.4).
	k1, k2, laptopKey := wgKey(t), wgKey(t), wgKey(t)
	nr1 := &gridtypes.Network{
		Name: "demo", NetworkIPRange: "10.42.0.0/16", IPRange: "10.42.1.0/24",
		WireguardPrivateKeyEncrypted: k1.String(), WireguardPublicKey: k1.PublicKey().String(), WireguardListenPort: 51820,
		Peers: []gridtypes.Peer{
			{PublicKey: k2.PublicKey().String(), Endpoint: "10.99.2.4:51821", IPRange: "10.42.2.0/24", AllowedIPRange: []string{"10.42.2.0/24", "100.64.42.2/32"}},
			{PublicKey: laptopKey.PublicKey().String(), IPRange: "10.42.3.0/24", AllowedIPRange: []string{"10.42.3.0/24", "100.64.42.3/32"}},
		},
	}
	nr2 := &gridtypes.Network{
		Name: "demo", NetworkIPRange: "10.42.0.0/16", IPRange: "10.42.2.0/24",
		WireguardPrivateKeyEncrypted: k2.String(), WireguardPublicKey: k2.PublicKey().String(), WireguardListenPort: 51821,
		Peers: []gridtypes.Peer{
			{PublicKey: k1.PublicKey().String(), Endpoint: "10.99.1.4:51820", IPRange: "10.42.1.0/24",
				AllowedIPRange: []string{"10.42.1.0/24", "100.64.42.1/32", "10.42.3.0/24", "100.64.42.3/32"}},
		},
	}
	net1, net2 := alice.deploy(n1, nr1), alice.deploy(n2, nr2)
	vol := alice.deploy(n1, &gridtypes.Volume{Size: 1, Type: gridtypes.DiskSSD})
	zdb := alice.deploy(n1, &gridtypes.ZDB{Size: 1, Mode: gridtypes.ZDBModeUser, Password: "s3cret", DiskType: gridtypes.DiskHDD})
	for _, id := range []uint64{net1, net2, vol} {
		alice.result(id, 2*time.Minute, gridtypes.StateOK)
	}

	// 0-db: the password opens the namespace, a wrong one does not.
	zr := alice.result(zdb, 2*time.Minute, gridtypes.StateOK)
	if !strings.Contains(string(zr.Data), `"port":9900`) {
		t.Fatalf("zdb result %s", zr.Data)
	}
	redis := func(args ...string) (string, error) {
		return inNS(g.InetNS(), "redis-cli", append([]string{"-h", "10.99.1.2", "-p", "9900"}, args...)...)
	}
	ns := zdbNamespace(t, string(zr.Data))
	if out, err := redis("SELECT", ns, "wrong"); err == nil && !strings.Contains(out, "denied") {
		t.Fatalf("wrong password accepted: %s", out)
	}
	cmd := exec.Command("nsenter", "--net="+netns.Path(g.InetNS()), "--", "redis-cli", "-h", "10.99.1.2", "-p", "9900")
	cmd.Stdin = strings.NewReader("SELECT " + ns + " s3cret\nSET greeting hello\nGET greeting\n")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "hello") {
		t.Fatalf("0-db write/read: %v: %s", err, out)
	}

	// A container from an flist on the hub, with the volume, on the network.
	fl := uploadBusybox(t, g, alice)
	ct := alice.deploy(n1, &gridtypes.Container{
		Flist:             fl,
		Entrypoint:        "/bin/httpd -f -p 80 -h /www",
		Volumes:           []gridtypes.ContainerMount{{VolumeID: gwid(vol), Mountpoint: "/data"}},
		NetworkConnection: []gridtypes.NetworkConnection{{NetworkID: "demo", IPAddress: "10.42.1.10"}},
		Capacity:          gridtypes.ContainerCapacity{CPU: 1, Memory: 128},
	})
	cr := alice.result(ct, 3*time.Minute, gridtypes.StateOK)
	if !strings.Contains(string(cr.Data), "10.42.1.10") {
		t.Fatalf("container result %s", cr.Data)
	}
	netID := gridtypes.NetworkID(alice.id, "demo")
	nr2ns := g.Nodes()[1].Prefix + "n-" + netID
	// From node 2's side of the network, over WireGuard.
	waitCmd(t, time.Minute, "node 2 → container over wireguard", func() (string, error) {
		out, err := inNS(nr2ns, "wget", "-q", "-O-", "-T", "2", "http://10.42.1.10/")
		if err == nil && !strings.Contains(out, "hello-from-zos") {
			err = os.ErrNotExist
		}
		return out, err
	})

	// From the laptop, through its access configuration.
	laptop := g.cfg.Prefix + "laptop"
	acc := laptopAccess(t, g, nr1, net1, alice, laptopKey)
	joinLaptop(t, g, laptop, acc)
	waitCmd(t, time.Minute, "laptop → container over wireguard", func() (string, error) {
		return inNS(laptop, "wget", "-q", "-O-", "-T", "2", "http://10.42.1.10/")
	})

	// Delete everything; the grid's own checks (no namespace, mount, loop
	// device or process left) run when it goes down.
	for _, id := range []uint64{ct, zdb, vol, net2, net1} {
		alice.remove(id)
	}
	if out, err := inNS(g.InetNS(), "redis-cli", "-h", "10.99.1.2", "-p", "9900", "PING"); err == nil && strings.Contains(out, "PONG") {
		t.Errorf("0-db still answers after its namespace was deleted")
	}
}

func gwid(id uint64) string { return strconv.FormatUint(id, 10) + "-1" }

func zdbNamespace(t testing.TB, data string) string {
	i := strings.Index(data, `"namespace":"`)
	if i < 0 {
		t.Fatalf("no namespace in %s", data)
	}
	rest := data[i+len(`"namespace":"`):]
	return rest[:strings.IndexByte(rest, '"')]
}

// uploadBusybox packs a busybox tree serving /www into an flist whose blocks
// are on the hub, uploads it for u and returns its URL as nodes see it.
func uploadBusybox(t testing.TB, g *grid, u *user) string {
	t.Helper()
	root := testutil.TempDir(t)
	for _, d := range []string{"bin", "www", "data", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"sh", "httpd", "ls", "cat"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "www", "index.html"), []byte("hello-from-zos\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return publishFlist(t, g, u, root, "busybox.fl")
}
func laptopAccess(t testing.TB, g *grid, nr *gridtypes.Network, id uint64, u *user, key wgtypes.Key) network.Access {
	t.Helper()
	r, err := g.client.Reservation(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	res, err := primitives.NetResource(r)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := network.NewAccess(res, "10.99.1.4:51820", key, netip.MustParsePrefix("10.42.3.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	return acc
}

// joinLaptop makes a "laptop" namespace on the grid's internet, with a
// userspace WireGuard interface configured from acc.
func joinLaptop(t testing.TB, g *grid, ns string, acc network.Access) {
	t.Helper()
	if _, err := netns.Create(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netns.Delete(ns) })
	veth := g.cfg.Prefix + "lap"
	for _, args := range [][]string{
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", g.InetNS(), "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"-n", g.InetNS(), "link", "set", veth, "master", "br0", "up"},
		{"-n", ns, "addr", "add", "10.99.0.50/16", "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	wgif := testutil.Name(t, "wg")
	testutil.StartProcess(t, nil, "nsenter", "--net="+netns.Path(ns), "--", "wireguard-go", "-f", wgif)
	sock := filepath.Join(network.UAPIDir, wgif+".sock")
	testutil.WaitFor(t, 10*time.Second, "wireguard-go socket", func() error { _, err := os.Stat(sock); return err })
	t.Cleanup(func() { _ = os.Remove(sock) })
	conf := filepath.Join(testutil.TempDir(t), "wg.conf")
	if err := os.WriteFile(conf, []byte(acc.WG()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmds := [][]string{{"nsenter", "--net=" + netns.Path(ns), "--", "wg", "setconf", wgif, conf}}
	for _, a := range acc.Addresses {
		cmds = append(cmds, []string{"ip", "-n", ns, "addr", "add", a.String(), "dev", wgif})
	}
	cmds = append(cmds, []string{"ip", "-n", ns, "link", "set", wgif, "up"})
	for _, r := range acc.Routes {
		cmds = append(cmds, []string{"ip", "-n", ns, "route", "replace", r.String(), "dev", wgif})
	}
	for _, c := range cmds {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", c, err, out)
		}
	}
}

// TestLifetime deploys a volume that lives 10 s and one without a
// lifetime: the node removes the first when its lifetime ends (its result
// reads deleted, "expired", its subvolume is gone, the explorer frees its
// capacity) and keeps the other.
func TestLifetime(t *testing.T) {
	testutil.CheckLeaks(t)
	g := startGrid(t, 1)
	alice := g.newUser("alice")
	n1 := g.nodeID(0)
	node := g.Nodes()[0]
	short := alice.submit(n1, &gridtypes.Volume{Size: 1, Type: gridtypes.DiskSSD}, func(r *gridtypes.Reservation) { r.Lifetime = 10 })
	keep := alice.deploy(n1, &gridtypes.Volume{Size: 2, Type: gridtypes.DiskSSD})
	alice.result(short, 2*time.Minute, gridtypes.StateOK)
	alice.result(keep, 2*time.Minute, gridtypes.StateOK)
	vol := func(id uint64) bool {
		m, _ := filepath.Glob(filepath.Join(node.Root, "root", "mnt", "*", gwid(id)))
		return len(m) == 1
	}
	if !vol(short) || !vol(keep) {
		t.Fatal("volumes not on the pools")
	}
	res := alice.result(short, time.Minute, gridtypes.StateDeleted)
	if res.Message != "expired" {
		t.Errorf("result of the expired volume: %q, want expired", res.Message)
	}
	if vol(short) || !vol(keep) {
		t.Errorf("after the lifetime: short volume there %v, kept volume there %v", vol(short), vol(keep))
	}
	n, err := g.client.Node(t.Context(), n1)
	if err != nil {
		t.Fatal(err)
	}
	if n.ReservedResources.SRU != 2*gridtypes.GiB {
		t.Errorf("explorer reserves %v, want the kept 2 GiB", n.ReservedResources)
	}
	alice.remove(keep)
}

// TestVolumeSnapshots takes a snapshot of a volume through an update,
// changes the data, restores the snapshot through another update (the
// bytes come back, on real btrfs) and drops it through a third.
func TestVolumeSnapshots(t *testing.T) {
	testutil.CheckLeaks(t)
	g := startGrid(t, 1)
	alice := g.newUser("alice")
	n1 := g.nodeID(0)
	node := g.Nodes()[0]
	vol := alice.deploy(n1, &gridtypes.Volume{Size: 1, Type: gridtypes.DiskSSD})
	alice.result(vol, 2*time.Minute, gridtypes.StateOK)
	pools := filepath.Join(node.Root, "root", "mnt", "*")
	m, _ := filepath.Glob(filepath.Join(pools, gwid(vol)))
	if len(m) != 1 {
		t.Fatalf("volume %s not on a pool: %v", gwid(vol), m)
	}
	data := filepath.Join(m[0], "data")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(data, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("monday")
	snap := alice.update(n1, vol, &gridtypes.Volume{Size: 1, Type: gridtypes.DiskSSD, Snapshots: []string{"mon"}})
	if res := alice.result(snap, 2*time.Minute, gridtypes.StateOK); !strings.Contains(string(res.Data), `"snapshots":["mon"]`) {
		t.Fatalf("result of the snapshot update: %s", res.Data)
	}
	snapDir := filepath.Join(filepath.Dir(m[0]), ".snapshots", gwid(vol), "mon")
	if b, err := os.ReadFile(filepath.Join(snapDir, "data")); err != nil || string(b) != "monday" {
		t.Fatalf("snapshot content %q %v", b, err)
	}
	write("tuesday")
	restore := alice.update(n1, snap, &gridtypes.Volume{Size: 1, Type: gridtypes.DiskSSD, Snapshots: []string{"mon"}, Restore: "mon"})
	alice.result(restore, 2*time.Minute, gridtypes.StateOK)
	if b, err := os.ReadFile(data); err != nil || string(b) != "monday" {
		t.Fatalf("after the restore: %q %v, want monday", b, err)
	}
	drop := alice.update(n1, restore, &gridtypes.Volume{Size: 1, Type: gridtypes.DiskSSD})
	alice.result(drop, 2*time.Minute, gridtypes.StateOK)
	if _, err := os.Stat(snapDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dropped snapshot still there: %v", err)
	}
	alice.remove(drop)
	if m, _ := filepath.Glob(filepath.Join(pools, gwid(vol))); len(m) != 0 {
		t.Fatalf("volume left after deletion: %v", m)
	}
}
