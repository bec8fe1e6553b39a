package networktest

import (
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/network"
)

// Env is what a conformance factory returns: the Networker under test and
// the function that encrypts WireGuard private keys for it (nil for
// PlainIdentity).
type Env struct {
	Net     pkg.Networker
	Encrypt func([]byte) ([]byte, error)
}

// Run is the conformance suite of pkg.Networker: the Fake and the real
// module must both pass it. newEnv is called once per subtest and must give
// a fresh, ready node whose cleanup is registered on t.
func Run(t *testing.T, newEnv func(t *testing.T) Env) {
	t.Run("CreateQueryDelete", func(t *testing.T) { testCreateQueryDelete(t, newEnv(t)) })
	t.Run("BadInput", func(t *testing.T) { testBadInput(t, newEnv(t)) })
	t.Run("JoinLeave", func(t *testing.T) { testJoinLeave(t, newEnv(t)) })
	t.Run("Taps", func(t *testing.T) { testTaps(t, newEnv(t)) })
	t.Run("VMTaps", func(t *testing.T) { testVMTaps(t, newEnv(t)) })
	t.Run("ZDB", func(t *testing.T) { testZDB(t, newEnv(t)) })
}

func testCreateQueryDelete(t *testing.T, e Env) {
	n := e.Net
	if err := n.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	nr := NR("ABCDEabc12345", "net1", "10.1.0.0/16", "10.1.3.0/24", 40001, NewKey(), e.Encrypt)
	if _, err := n.CreateNR(nr); err != nil {
		t.Fatalf("CreateNR: %v", err)
	}
	// idempotent, and an update with a peer.
	nr.Peers = []pkg.Peer{PeerOf(NR("ABCDEabc12345", "net1", "10.1.0.0/16", "10.1.4.0/24", 1, NewKey(), e.Encrypt), "198.51.100.7:40002")}
	if _, err := n.CreateNR(nr); err != nil {
		t.Fatalf("CreateNR update: %v", err)
	}
	sub, err := n.GetSubnet(nr.NetID)
	if err != nil || sub.String() != "10.1.3.0/24" {
		t.Errorf("GetSubnet = %v, %v; want 10.1.3.0/24", sub.String(), err)
	}
	rng, err := n.GetNet(nr.NetID)
	if err != nil || rng.String() != "10.1.0.0/16" {
		t.Errorf("GetNet = %v, %v; want 10.1.0.0/16", rng.String(), err)
	}
	gw4, gw6, err := n.GetDefaultGwIP(nr.NetID)
	if err != nil || gw4.String() != "10.1.3.1" || gw6.String() != "fd41:4243:4445:3::1" {
		t.Errorf("GetDefaultGwIP = %v %v %v; want 10.1.3.1 fd41:4243:4445:3::1", gw4, gw6, err)
	}
	v6, err := n.GetIPv6From4(nr.NetID, net.ParseIP("10.1.3.5"))
	if err != nil || v6.String() != "fd41:4243:4445:3::5/64" {
		t.Errorf("GetIPv6From4 = %v %v; want fd41:4243:4445:3::5/64", v6.String(), err)
	}
	if _, err := n.GetIPv6From4(nr.NetID, net.ParseIP("fd00::1")); !errors.Is(err, network.ErrInvalidAddress) {
		t.Errorf("GetIPv6From4(ipv6) error = %v; want ErrInvalidAddress", err)
	}
	// Another network may not take the port, nor the net id.
	other := NR("XYZother12345", "net2", "10.2.0.0/16", "10.2.1.0/24", 40001, NewKey(), e.Encrypt)
	if _, err := n.CreateNR(other); !errors.Is(err, network.ErrPortInUse) {
		t.Errorf("CreateNR on a used port: %v; want ErrPortInUse", err)
	}
	clash := NR("ABCDEabc12345", "othername", "10.9.0.0/16", "10.9.1.0/24", 40009, NewKey(), e.Encrypt)
	if _, err := n.CreateNR(clash); !errors.Is(err, network.ErrNetIDConflict) {
		t.Errorf("CreateNR with another network's id: %v; want ErrNetIDConflict", err)
	}
	if _, err := n.GetSubnet("XYZother12345"); !errors.Is(err, network.ErrUnknownNetwork) {
		t.Errorf("refused resource exists: %v", err)
	}
	if err := n.DeleteNR(nr); err != nil {
		t.Fatalf("DeleteNR: %v", err)
	}
	if _, err := n.GetSubnet(nr.NetID); !errors.Is(err, network.ErrUnknownNetwork) {
		t.Errorf("GetSubnet after delete: %v; want ErrUnknownNetwork", err)
	}
	if err := n.DeleteNR(nr); err != nil {
		t.Errorf("second DeleteNR: %v", err)
	}
	// The port is free again.
	other.WGListenPort = 40001
	if _, err := n.CreateNR(other); err != nil {
		t.Errorf("CreateNR on a released port: %v", err)
	}
	if err := n.DeleteNR(other); err != nil {
		t.Errorf("DeleteNR: %v", err)
	}
}

// BadNRs returns network resources that are each invalid in one field, with
// the error they must give.
func BadNRs(encrypt func([]byte) ([]byte, error)) []struct {
	Name string
	NR   pkg.NetResource
	Err  error
} {
	base := func() pkg.NetResource {
		return NR("BAD0netid0001", "bad", "10.5.0.0/16", "10.5.1.0/24", 41001, NewKey(), encrypt)
	}
	peer := func(subnet string) pkg.Peer {
		p := PeerOf(NR("BAD0netid0001", "bad", "10.5.0.0/16", subnet, 1, NewKey(), encrypt), "")
		return p
	}
	type tc = struct {
		Name string
		NR   pkg.NetResource
		Err  error
	}
	var out []tc
	add := func(name string, err error, mod func(*pkg.NetResource)) {
		nr := base()
		mod(&nr)
		out = append(out, tc{name, nr, err})
	}
	add("missing net id", network.ErrInvalidNetResource, func(nr *pkg.NetResource) { nr.NetID = "" })
	add("missing name", network.ErrInvalidNetResource, func(nr *pkg.NetResource) { nr.Name = "" })
	add("missing node id", network.ErrInvalidNetResource, func(nr *pkg.NetResource) { nr.NodeID = "" })
	add("missing port", network.ErrInvalidNetResource, func(nr *pkg.NetResource) { nr.WGListenPort = 0 })
	add("missing range", network.ErrInvalidNetResource, func(nr *pkg.NetResource) { nr.NetworkIPRange = typesIPNet{} })
	add("missing subnet", network.ErrInvalidNetResource, func(nr *pkg.NetResource) { nr.Subnet = typesIPNet{} })
	add("net id too long", network.ErrNameTooLong, func(nr *pkg.NetResource) { nr.NetID = "ABCDEFGHIJKLMN" })
	add("net id with slash", network.ErrInvalidName, func(nr *pkg.NetResource) { nr.NetID = "../../etc" })
	add("range not /16", network.ErrInvalidSubnet, func(nr *pkg.NetResource) { nr.NetworkIPRange = mustIPNet("10.5.0.0/8") })
	add("range ipv6", network.ErrInvalidSubnet, func(nr *pkg.NetResource) { nr.NetworkIPRange = mustIPNet("fd00::/16") })
	add("subnet not /24", network.ErrInvalidSubnet, func(nr *pkg.NetResource) { nr.Subnet = mustIPNet("10.5.1.0/25") })
	add("subnet outside range", network.ErrSubnetOutsideRange, func(nr *pkg.NetResource) { nr.Subnet = mustIPNet("10.6.1.0/24") })
	add("private key not hex", network.ErrInvalidKey, func(nr *pkg.NetResource) { nr.WGPrivateKey = "zz" })
	add("private key wrong length", network.ErrInvalidKey, func(nr *pkg.NetResource) { nr.WGPrivateKey = "abcd" })
	add("public key not base64", network.ErrInvalidKey, func(nr *pkg.NetResource) { nr.WGPublicKey = "not a key" })
	add("public key wrong length", network.ErrInvalidKey, func(nr *pkg.NetResource) { nr.WGPublicKey = "AAAA" })
	add("public key of another private key", network.ErrInvalidKey, func(nr *pkg.NetResource) { nr.WGPublicKey = NewKey().Public.String() })
	add("reserved port", network.ErrInvalidPort, func(nr *pkg.NetResource) { nr.WGListenPort = 9943 })
	add("peer missing key", network.ErrInvalidNetResource, func(nr *pkg.NetResource) {
		p := peer("10.5.2.0/24")
		p.WGPublicKey = ""
		nr.Peers = []pkg.Peer{p}
	})
	add("peer bad key", network.ErrInvalidKey, func(nr *pkg.NetResource) {
		p := peer("10.5.2.0/24")
		p.WGPublicKey = "AAAA"
		nr.Peers = []pkg.Peer{p}
	})
	add("peer without allowed ips", network.ErrInvalidNetResource, func(nr *pkg.NetResource) {
		p := peer("10.5.2.0/24")
		p.AllowedIPs = nil
		nr.Peers = []pkg.Peer{p}
	})
	add("peer subnet outside range", network.ErrSubnetOutsideRange, func(nr *pkg.NetResource) { nr.Peers = []pkg.Peer{peer("10.7.2.0/24")} })
	add("peer subnet overlaps own", network.ErrSubnetOverlap, func(nr *pkg.NetResource) { nr.Peers = []pkg.Peer{peer("10.5.1.0/24")} })
	add("peers overlap", network.ErrSubnetOverlap, func(nr *pkg.NetResource) {
		a, b := peer("10.5.2.0/24"), peer("10.5.3.0/24")
		b.Subnet = mustIPNet("10.5.2.0/23")
		nr.Peers = []pkg.Peer{a, b}
	})
	add("peer allowed ips overlap", network.ErrSubnetOverlap, func(nr *pkg.NetResource) {
		a, b := peer("10.5.2.0/24"), peer("10.5.3.0/24")
		b.AllowedIPs = append(b.AllowedIPs, mustIPNet("10.5.2.128/25"))
		nr.Peers = []pkg.Peer{a, b}
	})
	add("duplicate peer keys", network.ErrDuplicatePeer, func(nr *pkg.NetResource) {
		a, b := peer("10.5.2.0/24"), peer("10.5.3.0/24")
		b.WGPublicKey = a.WGPublicKey
		nr.Peers = []pkg.Peer{a, b}
	})
	for _, ep := range []string{"198.51.100.1", "198.51.100.1:0", "198.51.100.1:99999", "host name:1", "[fe80::1%eth0]:51820", ":51820"} {
		add("endpoint "+ep, network.ErrInvalidEndpoint, func(nr *pkg.NetResource) {
			p := peer("10.5.2.0/24")
			p.Endpoint = ep
			nr.Peers = []pkg.Peer{p}
		})
	}
	return out
}

func testBadInput(t *testing.T, e Env) {
	n := e.Net
	for _, tc := range BadNRs(e.Encrypt) {
		_, err := n.CreateNR(tc.NR)
		if !errors.Is(err, tc.Err) || !errors.Is(err, network.ErrInvalidNetResource) {
			t.Errorf("%s: CreateNR error = %v; want %v", tc.Name, err, tc.Err)
		}
		if tc.NR.NetID != "" {
			if _, err := n.GetSubnet(tc.NR.NetID); !errors.Is(err, network.ErrUnknownNetwork) {
				t.Errorf("%s: resource exists after a refused CreateNR (%v)", tc.Name, err)
			}
		}
	}
	// A refused update leaves the stored resource as it was.
	nr := NR("GOOD0netid001", "good", "10.5.0.0/16", "10.5.1.0/24", 41002, NewKey(), e.Encrypt)
	if _, err := n.CreateNR(nr); err != nil {
		t.Fatalf("CreateNR: %v", err)
	}
	t.Cleanup(func() { _ = n.DeleteNR(nr) })
	bad := nr
	bad.Subnet = mustIPNet("10.6.1.0/24")
	if _, err := n.CreateNR(bad); !errors.Is(err, network.ErrSubnetOutsideRange) {
		t.Errorf("bad update: %v", err)
	}
	if sub, _ := n.GetSubnet(nr.NetID); sub.String() != "10.5.1.0/24" {
		t.Errorf("subnet after refused update = %s; want 10.5.1.0/24", sub.String())
	}
}

func testJoinLeave(t *testing.T, e Env) {
	n := e.Net
	nr := NR("JOIN0netid001", "join", "10.8.0.0/16", "10.8.2.0/24", 41003, NewKey(), e.Encrypt)
	if _, err := n.Join(nr.NetID, "c1", pkg.ContainerNetworkConfig{IPs: []string{"10.8.2.5"}}); !errors.Is(err, network.ErrUnknownNetwork) {
		t.Errorf("Join of an unknown network: %v; want ErrUnknownNetwork", err)
	}
	if _, err := n.CreateNR(nr); err != nil {
		t.Fatalf("CreateNR: %v", err)
	}
	t.Cleanup(func() { _ = n.DeleteNR(nr) })
	for _, bad := range [][]string{nil, {"10.8.3.5"}, {"10.8.2.1"}, {"fd00::5"}, {"nonsense"}} {
		if _, err := n.Join(nr.NetID, "c1", pkg.ContainerNetworkConfig{IPs: bad}); !errors.Is(err, network.ErrInvalidAddress) {
			t.Errorf("Join with IPs %v: %v; want ErrInvalidAddress", bad, err)
		}
	}
	id := fmt.Sprintf("c%d", len(t.Name()))
	m, err := n.Join(nr.NetID, id, pkg.ContainerNetworkConfig{IPs: []string{"10.8.2.5"}})
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	if !m.IPv4.Equal(net.ParseIP("10.8.2.5")) || m.Namespace == "" {
		t.Errorf("member = %+v", m)
	}
	again, err := n.Join(nr.NetID, id, pkg.ContainerNetworkConfig{IPs: []string{"10.8.2.5"}})
	if err != nil || again.Namespace != m.Namespace || !again.IPv4.Equal(m.IPv4) {
		t.Errorf("Join again with the same configuration (an ensure): %+v, %v; want %+v", again, err, m)
	}
	if _, err := n.Join(nr.NetID, id, pkg.ContainerNetworkConfig{IPs: []string{"10.8.2.6"}}); !errors.Is(err, network.ErrExists) {
		t.Errorf("second Join of the same container with another IP: %v; want ErrExists", err)
	}
	if err := n.Leave(nr.NetID, id); err != nil {
		t.Errorf("Leave: %v", err)
	}
	if err := n.Leave(nr.NetID, id); err != nil {
		t.Errorf("second Leave: %v", err)
	}
	if _, err := n.Join(nr.NetID, id, pkg.ContainerNetworkConfig{IPs: []string{"10.8.2.6"}}); err != nil {
		t.Errorf("Join after Leave: %v", err)
	}
	if err := n.Leave(nr.NetID, id); err != nil {
		t.Errorf("Leave: %v", err)
	}
}

func testTaps(t *testing.T, e Env) {
	n := e.Net
	nr := NR("TAP0netid0001", "tap", "10.9.0.0/16", "10.9.2.0/24", 41004, NewKey(), e.Encrypt)
	if _, err := n.SetupTap(nr.NetID); !errors.Is(err, network.ErrUnknownNetwork) {
		t.Errorf("SetupTap of an unknown network: %v", err)
	}
	if _, err := n.CreateNR(nr); err != nil {
		t.Fatalf("CreateNR: %v", err)
	}
	t.Cleanup(func() { _ = n.DeleteNR(nr) })
	name, err := n.SetupTap(nr.NetID)
	if err != nil || name != "t-"+string(nr.NetID) {
		t.Fatalf("SetupTap = %q, %v", name, err)
	}
	if _, err := n.SetupTap(nr.NetID); !errors.Is(err, network.ErrExists) {
		t.Errorf("second SetupTap: %v; want ErrExists", err)
	}
	if ok, err := n.TapExists(nr.NetID); !ok || err != nil {
		t.Errorf("TapExists = %v, %v", ok, err)
	}
	if err := n.RemoveTap(nr.NetID); err != nil {
		t.Errorf("RemoveTap: %v", err)
	}
	if ok, _ := n.TapExists(nr.NetID); ok {
		t.Errorf("tap exists after RemoveTap")
	}
	if !n.PublicIPv4Support() {
		t.Fatalf("PublicIPv4Support = false")
	}
	if _, err := n.SetupPubTap("bad/id"); !errors.Is(err, network.ErrInvalidName) {
		t.Errorf("SetupPubTap(bad/id): %v", err)
	}
	pt, err := n.SetupPubTap("123-1")
	if err != nil || pt != "p-123-1" {
		t.Fatalf("SetupPubTap = %q, %v", pt, err)
	}
	if _, err := n.SetupPubTap("123-1"); !errors.Is(err, network.ErrExists) {
		t.Errorf("second SetupPubTap: %v", err)
	}
	if ok, _ := n.PubTapExists("123-1"); !ok {
		t.Errorf("PubTapExists = false")
	}
	if err := n.DisconnectPubTap("123-1"); err != nil {
		t.Errorf("DisconnectPubTap: %v", err)
	}
	if ok, _ := n.PubTapExists("123-1"); !ok {
		t.Errorf("PubTapExists after disconnect = false")
	}
	if err := n.RemovePubTap("123-1"); err != nil {
		t.Errorf("RemovePubTap: %v", err)
	}
	if ok, _ := n.PubTapExists("123-1"); ok {
		t.Errorf("PubTapExists after remove = true")
	}
	if err := n.DisconnectPubTap("123-1"); err != nil {
		t.Errorf("DisconnectPubTap of a missing tap: %v", err)
	}
}

func testZDB(t *testing.T, e Env) {
	n := e.Net
	hw := network.HardwareAddrFromInputBytes([]byte(t.Name()))
	ns, err := n.ZDBPrepare(hw)
	if err != nil {
		t.Fatalf("ZDBPrepare: %v", err)
	}
	if again, err := n.ZDBPrepare(hw); err != nil || again != ns {
		t.Errorf("second ZDBPrepare = %q, %v; want %q", again, err, ns)
	}
	if err := n.ZDBDestroy("not-a-zdb"); !errors.Is(err, network.ErrInvalidName) {
		t.Errorf("ZDBDestroy(not-a-zdb): %v", err)
	}
	if err := n.ZDBDestroy(ns); err != nil {
		t.Errorf("ZDBDestroy: %v", err)
	}
	if err := n.ZDBDestroy(ns); err != nil {
		t.Errorf("second ZDBDestroy: %v", err)
	}
}
