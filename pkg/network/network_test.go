package network

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
	"sigs.k8s.io/knftables"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/types"
)

func TestConvert4to6(t *testing.T) {
	for _, tc := range []struct {
		id   pkg.NetID
		ip   string
		want string
	}{
		{"ABCDEabc12345", "10.1.3.5", "fd41:4243:4445:3::5"},
		{"ABCDE", "10.1.0.1", "fd41:4243:4445:0::1"},
		{"zzzzz", "10.1.255.254", "fd7a:7a7a:7a7a:ff::fe"},
		// shorter than 5 bytes: the rest comes from MD5("") = d41d8cd9…
		{"AB", "10.1.3.5", "fd41:42d4:1d8c:3::5"},
	} {
		got := Convert4to6(tc.id, net.ParseIP(tc.ip))
		if !got.Equal(net.ParseIP(tc.want)) {
			t.Errorf("Convert4to6(%s, %s) = %s; want %s", tc.id, tc.ip, got, tc.want)
		}
	}
	if Convert4to6("ABCDE", net.ParseIP("fd00::1")) != nil {
		t.Errorf("IPv6 input accepted")
	}
}

func TestDerivations(t *testing.T) {
	sub := ipNetOf(netip.MustParsePrefix("10.3.1.0/24"))
	if got := gatewayOf(sub).String(); got != "10.3.1.1" {
		t.Errorf("gateway = %s", got)
	}
	if got := wgAddrOf(sub).String(); got != "100.64.3.1/16" {
		t.Errorf("wireguard address = %s", got)
	}
	if got := ndmz6Of(netip.MustParseAddr("100.127.1.10")).String(); got != "fd00::10a/64" {
		t.Errorf("ndmz ipv6 = %s", got)
	}
}

func TestHardwareAddrFromInputBytes(t *testing.T) {
	seen := map[string]bool{}
	for _, in := range []string{"node-ndmz4", "node-ndmz6", "node-public", "container1", "", "\x01\x02\x03\x04"} {
		mac := HardwareAddrFromInputBytes([]byte(in))
		if len(mac) != 6 || mac[0]&1 != 0 || mac[0]&2 == 0 || !macAllowed(mac) {
			t.Errorf("%q → %s: not a locally administered unicast MAC in range", in, mac)
		}
		if again := HardwareAddrFromInputBytes([]byte(in)); again.String() != mac.String() {
			t.Errorf("%q not stable", in)
		}
		seen[mac.String()] = true
	}
	if len(seen) != 6 {
		t.Errorf("collisions: %v", seen)
	}
	if macAllowed(net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}) || macAllowed(net.HardwareAddr{0x90, 0x01, 0, 0, 0, 0}) || macAllowed(net.HardwareAddr{0, 0x52, 0, 0, 0, 0}) {
		t.Errorf("excluded range accepted")
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.NodeID = "n"
	if err := ok.Validate(); err != nil {
		t.Fatalf("default: %v", err)
	}
	for name, mod := range map[string]func(*Config){
		"no node id":      func(c *Config) { c.NodeID = "" },
		"no state dir":    func(c *Config) { c.StateDir = "" },
		"long bridge":     func(c *Config) { c.ZOSBridge = "a-very-long-bridge" },
		"bad prefix":      func(c *Config) { c.NamePrefix = "a/b" },
		"bad wireguard":   func(c *Config) { c.WireGuard = "maybe" },
		"no wg command":   func(c *Config) { c.WGCommand = nil },
		"ipv6 zos":        func(c *Config) { c.ZOSAddress = netip.MustParsePrefix("fd00::1/64") },
		"public no gw":    func(c *Config) { c.Public = &PublicConfig{IPv4: netip.MustParsePrefix("1.2.3.4/24")} },
		"zero op timeout": func(c *Config) { c.OpTimeout = 0 },
	} {
		c := ok
		mod(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestStoreRoundTripAndVersions(t *testing.T) {
	s := nrStore{dir: t.TempDir(), nodeID: "node1"}
	nr := pkg.NetResource{Name: "n", NetID: "ABC", NetworkIPRange: types.MustParseIPNet("10.1.0.0/16"), NodeID: "node1",
		Subnet: types.MustParseIPNet("10.1.3.0/24"), WGPrivateKey: "00", WGPublicKey: "k", WGListenPort: 1,
		Peers: []pkg.Peer{{Subnet: types.MustParseIPNet("10.1.4.0/24"), WGPublicKey: "p", AllowedIPs: []types.IPNet{types.MustParseIPNet("10.1.4.0/24")}, Endpoint: "1.2.3.4:5"}}}
	if err := s.Put(nr); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(s.dir, "ABC"))
	if !strings.HasPrefix(string(b), `"2.0.0"`) {
		t.Errorf("file does not start with the version: %.20s", b)
	}
	got, err := s.Get("ABC")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(nr.Subnet.String(), got.Subnet.String()); diff != "" || got.Peers[0].Endpoint != "1.2.3.4:5" {
		t.Errorf("round trip: %s %+v", diff, got)
	}
	// v1: a whole network, of which this node's resource is taken.
	v1 := `"1.0.0"{"name":"net","net_id":"ABC","ip_range":"10.1.0.0/16","net_resources":[{"node_id":"other","subnet":"10.1.9.0/24"},{"node_id":"node1","subnet":"10.1.3.0/24","wg_listen_port":7}]}`
	r, err := DecodeNetResource([]byte(v1), "node1")
	if err != nil || r.WGListenPort != 7 || r.NetID != "ABC" || r.Name != "net" || r.NetworkIPRange.String() != "10.1.0.0/16" {
		t.Errorf("v1 = %+v, %v", r, err)
	}
	if _, err := DecodeNetResource([]byte(v1), "node9"); !errors.Is(err, ErrBadNetworkFile) {
		t.Errorf("v1 without this node: %v", err)
	}
	// unversioned (0.0.0)
	if r, err := DecodeNetResource([]byte(`{"net_id":"X","wg_listen_port":3}`), "n"); err != nil || r.WGListenPort != 3 {
		t.Errorf("unversioned = %+v, %v", r, err)
	}
	for _, bad := range []string{`"9.0.0"{}`, `"x"{}`, `{`, `"2.0.0"{}{}`, `"2.0.0"`} {
		if _, err := DecodeNetResource([]byte(bad), "n"); !errors.Is(err, ErrBadNetworkFile) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if ids, _ := s.List(); len(ids) != 1 || ids[0] != "ABC" {
		t.Errorf("List = %v", ids)
	}
	if err := s.Delete("ABC"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("ABC"); !errors.Is(err, ErrUnknownNetwork) {
		t.Errorf("after delete: %v", err)
	}
	if _, err := s.Get("../etc"); !errors.Is(err, ErrUnknownNetwork) {
		t.Errorf("path traversal: %v", err)
	}
}

func FuzzDecodeNetResource(f *testing.F) {
	f.Add([]byte(`"2.0.0"{"net_id":"A","subnet":"10.1.3.0/24","peers":[{"allowed_ips":["10.1.4.0/24"]}]}`))
	f.Add([]byte(`"1.0.0"{"net_id":"A","net_resources":[{"node_id":"n"}]}`))
	f.Add([]byte(`{"net_id":"A"}`))
	f.Add([]byte(`"2.0.0"`))
	f.Fuzz(func(t *testing.T, b []byte) {
		nr, err := DecodeNetResource(b, "n")
		if err != nil {
			return
		}
		enc, err := EncodeNetResource(nr)
		if err != nil {
			return // e.g. an IPNet that cannot be written back
		}
		again, err := DecodeNetResource(enc, "n")
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if diff := cmp.Diff(string(mustJSON(t, nr)), string(mustJSON(t, again))); diff != "" {
			t.Fatalf("round trip: %s", diff)
		}
	})
}

func mustJSON(t *testing.T, nr pkg.NetResource) []byte {
	b, err := EncodeNetResource(nr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLeases(t *testing.T) {
	s := leaseStore{dir: t.TempDir()}
	a, err := s.Acquire("A")
	if err != nil || a.String() != "100.127.0.2" {
		t.Fatalf("A = %s, %v", a, err)
	}
	b, _ := s.Acquire("B")
	if again, _ := s.Acquire("A"); again != a || b.String() != "100.127.0.3" {
		t.Errorf("A again = %s, B = %s", again, b)
	}
	if err := s.Release("A"); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Acquire("C"); c != a {
		t.Errorf("freed address not reused: %s", c)
	}
	// A crash between create and write leaves an empty file: ignored.
	if err := os.WriteFile(filepath.Join(s.dir, "100.127.0.9"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	held, _ := s.all()
	if len(held) != 2 {
		t.Errorf("held = %v", held)
	}
}

// TestRulesets compares the nftables transactions with the spec's rules, as
// nft would receive them (golden text through knftables' fake).
func TestRulesets(t *testing.T) {
	fake := knftables.NewFake(knftables.InetFamily, nftTable)
	tx := fake.NewTransaction()
	ndmzRuleset([]netip.Addr{netip.MustParseAddr("198.18.0.11")}, netip.MustParsePrefix("301:1:2:3::/64")).transaction(tx)
	if err := fake.Run(t.Context(), tx); err != nil {
		t.Fatal(err)
	}
	dump := fake.Dump()
	for _, want := range []string{
		"add chain inet zos postrouting { type nat hook postrouting priority 100 ; }",
		`add rule inet zos postrouting oifname "npub4" masquerade fully-random`,
		`add rule inet zos input iifname { "npub6", "npub4" } counter drop`,
		`add rule inet zos forward iifname "tonrs" ip daddr @node4 counter drop`,
		"add element inet zos node4 { 198.18.0.11 }",
		"add rule inet zos input tcp dport { 9943, 9944, 9945 } accept",
		`add rule inet zos forward iifname "npub6" oifname "ygg0" ip6 saddr 301:1:2:3::/64 accept`,
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("ndmz ruleset lacks %q:\n%s", want, dump)
		}
	}
	fake = knftables.NewFake(knftables.InetFamily, nftTable)
	tx = fake.NewTransaction()
	nrRuleset().transaction(tx)
	if err := fake.Run(t.Context(), tx); err != nil {
		t.Fatal(err)
	}
	dump = fake.Dump()
	for _, want := range []string{
		`add rule inet zos postrouting oifname "public" masquerade fully-random`,
		`add rule inet zos input iifname "public" counter drop`,
		`add rule inet zos forward iifname "public" counter drop`,
		"add rule inet zos input ct state established,related accept",
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("resource ruleset lacks %q:\n%s", want, dump)
		}
	}
}

func TestDiffConfigKeepsUnchangedPeers(t *testing.T) {
	k := func() wgtypes.Key { x, _ := wgtypes.GeneratePrivateKey(); return x.PublicKey() }
	priv, _ := wgtypes.GeneratePrivateKey()
	keep := 20 * time.Second
	same, changed, gone, added := k(), k(), k(), k()
	cidr := func(s string) net.IPNet { _, n, _ := net.ParseCIDR(s); return *n }
	ep := &net.UDPAddr{IP: net.ParseIP("198.18.0.12"), Port: 1}
	cur := &wgtypes.Device{PrivateKey: priv, ListenPort: 7, Peers: []wgtypes.Peer{
		{PublicKey: same, AllowedIPs: []net.IPNet{cidr("10.1.2.0/24")}, Endpoint: ep, PersistentKeepaliveInterval: keep},
		{PublicKey: changed, AllowedIPs: []net.IPNet{cidr("10.1.3.0/24")}, PersistentKeepaliveInterval: keep},
		{PublicKey: gone, AllowedIPs: []net.IPNet{cidr("10.1.4.0/24")}, PersistentKeepaliveInterval: keep},
	}}
	s := wgSpec{key: priv, port: 7, peers: []wgtypes.PeerConfig{
		{PublicKey: same, AllowedIPs: []net.IPNet{cidr("10.1.2.0/24")}, Endpoint: ep, PersistentKeepaliveInterval: &keep},
		{PublicKey: changed, AllowedIPs: []net.IPNet{cidr("10.1.3.0/24"), cidr("100.64.1.3/32")}, PersistentKeepaliveInterval: &keep},
		{PublicKey: added, AllowedIPs: []net.IPNet{cidr("10.1.5.0/24")}, PersistentKeepaliveInterval: &keep},
	}}
	cfg := diffConfig(cur, s)
	if cfg.PrivateKey != nil || cfg.ListenPort != nil {
		t.Errorf("key or port reset")
	}
	got := map[wgtypes.Key]string{}
	for _, p := range cfg.Peers {
		got[p.PublicKey] = map[bool]string{true: "remove", false: "set"}[p.Remove]
	}
	want := map[wgtypes.Key]string{changed: "set", added: "set", gone: "remove"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("peers (-want +got):\n%s", diff)
	}
	full := uapiConfig(s)
	if !strings.Contains(full, "replace_peers=true") || strings.Count(full, "public_key=") != 3 || !strings.Contains(full, "endpoint=198.18.0.12:1") {
		t.Errorf("uapi config:\n%s", full)
	}
}

func TestAccessConfig(t *testing.T) {
	node, _ := wgtypes.GeneratePrivateKey()
	user, _ := wgtypes.GeneratePrivateKey()
	nr := pkg.NetResource{NetworkIPRange: types.MustParseIPNet("10.20.0.0/16"), Subnet: types.MustParseIPNet("10.20.1.0/24"), WGPublicKey: node.PublicKey().String()}
	a, err := NewAccess(nr, "198.18.0.11:51821", user, netip.MustParsePrefix("10.20.254.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	want := "[Interface]\nAddress = 10.20.254.1/24, 100.64.20.254/32\nPrivateKey = " + user.String() +
		"\n\n[Peer]\nPublicKey = " + node.PublicKey().String() + "\nAllowedIPs = 10.20.0.0/16, 100.64.0.0/16\nEndpoint = 198.18.0.11:51821\nPersistentKeepalive = 25\n"
	if diff := cmp.Diff(want, a.WGQuick()); diff != "" {
		t.Errorf("wg-quick (-want +got):\n%s", diff)
	}
	if a.Peer.WGPublicKey != user.PublicKey().String() || len(a.Peer.AllowedIPs) != 2 || a.Peer.AllowedIPs[1].String() != "100.64.20.254/32" {
		t.Errorf("peer = %+v", a.Peer)
	}
	if _, err := NewAccess(nr, "198.18.0.11:51821", user, netip.MustParsePrefix("10.21.0.0/24")); !errors.Is(err, ErrSubnetOutsideRange) {
		t.Errorf("outside: %v", err)
	}
	if _, err := NewAccess(nr, "198.18.0.11:51821", user, netip.MustParsePrefix("10.20.1.0/24")); !errors.Is(err, ErrSubnetOverlap) {
		t.Errorf("overlap: %v", err)
	}
	if _, err := NewAccess(nr, "nohost", user, netip.MustParsePrefix("10.20.254.0/24")); !errors.Is(err, ErrInvalidEndpoint) {
		t.Errorf("endpoint: %v", err)
	}
}
