package pkg_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/types"
)

// validNR returns a network resource with every field set.
func validNR() pkg.NetResource {
	return pkg.NetResource{
		Name:           "net1",
		NetID:          "ABCDEFGHJKLMN",
		NetworkIPRange: types.MustParseIPNet("10.1.0.0/16"),
		NodeID:         "3Xy6Pj1yM2SuzbmEnrA9C2NdMKxx7GAZLTjZkT8d3g5j",
		Subnet:         types.MustParseIPNet("10.1.3.0/24"),
		WGPrivateKey:   "6465616462656566",
		WGPublicKey:    "x/pub+key=",
		WGListenPort:   6380,
		Peers: []pkg.Peer{
			{
				Subnet:      types.MustParseIPNet("10.1.4.0/24"),
				WGPublicKey: "peer1key=",
				AllowedIPs:  []types.IPNet{types.MustParseIPNet("10.1.4.0/24"), types.MustParseIPNet("100.64.1.4/32")},
				Endpoint:    "[2001:db8::1]:6380",
			},
			{
				Subnet:      types.MustParseIPNet("10.1.5.0/24"),
				WGPublicKey: "peer2key=",
				AllowedIPs:  []types.IPNet{types.MustParseIPNet("10.1.5.0/24")},
				Endpoint:    "", // a peer without endpoint is allowed (it dials us)
			},
		},
	}
}

func TestNetResourceValid(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(nr *pkg.NetResource)
		field string // "" means valid
	}{
		{"complete", func(nr *pkg.NetResource) {}, ""},
		{"no peers", func(nr *pkg.NetResource) { nr.Peers = nil }, ""},
		{"net id", func(nr *pkg.NetResource) { nr.NetID = "" }, "NetID"},
		{"name", func(nr *pkg.NetResource) { nr.Name = "" }, "Name"},
		{"ip range", func(nr *pkg.NetResource) { nr.NetworkIPRange = types.IPNet{} }, "NetworkIPRange"},
		{"ip range without mask", func(nr *pkg.NetResource) { nr.NetworkIPRange.Mask = nil }, "NetworkIPRange"},
		{"node id", func(nr *pkg.NetResource) { nr.NodeID = "" }, "NodeID"},
		{"subnet", func(nr *pkg.NetResource) { nr.Subnet = types.IPNet{} }, "Subnet"},
		{"subnet without ip", func(nr *pkg.NetResource) { nr.Subnet.IP = nil }, "Subnet"},
		{"private key", func(nr *pkg.NetResource) { nr.WGPrivateKey = "" }, "WGPrivateKey"},
		{"public key", func(nr *pkg.NetResource) { nr.WGPublicKey = "" }, "WGPublicKey"},
		{"listen port", func(nr *pkg.NetResource) { nr.WGListenPort = 0 }, "WGListenPort"},
		{"peer key", func(nr *pkg.NetResource) { nr.Peers[1].WGPublicKey = "" }, "Peers[1].WGPublicKey"},
		{"peer subnet", func(nr *pkg.NetResource) { nr.Peers[0].Subnet = types.IPNet{} }, "Peers[0].Subnet"},
		{"peer allowed ips nil", func(nr *pkg.NetResource) { nr.Peers[0].AllowedIPs = nil }, "Peers[0].AllowedIPs"},
		{"peer allowed ips empty", func(nr *pkg.NetResource) { nr.Peers[1].AllowedIPs = []types.IPNet{} }, "Peers[1].AllowedIPs"},
		{"peer allowed ip unset", func(nr *pkg.NetResource) { nr.Peers[0].AllowedIPs[1] = types.IPNet{} }, "Peers[0].AllowedIPs[1]"},
		{"zero peer", func(nr *pkg.NetResource) { nr.Peers = append(nr.Peers, pkg.Peer{}) }, "Peers[2].WGPublicKey"},
		// the first missing field is reported, in the documented order
		{"several missing", func(nr *pkg.NetResource) { nr.WGListenPort = 0; nr.Name = ""; nr.Subnet = types.IPNet{} }, "Name"},
		{"top level before peers", func(nr *pkg.NetResource) { nr.Peers[0].WGPublicKey = ""; nr.WGPublicKey = "" }, "WGPublicKey"},
		{"zero value", func(nr *pkg.NetResource) { *nr = pkg.NetResource{} }, "NetID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nr := validNR()
			tt.edit(&nr)
			err := nr.Valid()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Valid() = %v, want nil", err)
				}
				return
			}
			fe, ok := errors.AsType[*pkg.FieldError](err)
			if !ok {
				t.Fatalf("Valid() = %v (%T), want *pkg.FieldError", err, err)
			}
			if fe.Field != tt.field || fe.Object != "network resource" {
				t.Errorf("FieldError = %q %q, want network resource %q", fe.Object, fe.Field, tt.field)
			}
			if !errors.Is(err, pkg.ErrFieldRequired) {
				t.Errorf("Valid() = %v, does not wrap ErrFieldRequired", err)
			}
			if want := "network resource " + tt.field + ": required"; err.Error() != want {
				t.Errorf("message %q, want %q", err.Error(), want)
			}
		})
	}
}

func TestNetResourceValidDoesNotModify(t *testing.T) {
	nr := validNR()
	nr.Peers[0].AllowedIPs = nil
	_ = nr.Valid()
	want := validNR()
	want.Peers[0].AllowedIPs = nil
	a, _ := json.Marshal(nr)
	b, _ := json.Marshal(want)
	if string(a) != string(b) {
		t.Errorf("Valid changed the resource:\n%s\n%s", a, b)
	}
}

// TestNetResourceJSON decodes a resource as provisiond receives it and checks
// that the text networks come out usable and encode back the same way.
func TestNetResourceJSON(t *testing.T) {
	in := `{"Name":"net1","net_id":"ABCDEFGHJKLMN","ip_range":"10.1.0.0/16","node_id":"node",` +
		`"subnet":"10.1.3.0/24","wg_private_key":"aa","wg_public_key":"bb","wg_listen_port":6380,` +
		`"peers":[{"subnet":"10.1.4.0/24","wg_public_key":"cc","allowed_ips":["10.1.4.0/24","100.64.1.4/32"],"endpoint":"1.2.3.4:6380"}]}`
	var nr pkg.NetResource
	if err := json.Unmarshal([]byte(in), &nr); err != nil {
		t.Fatal(err)
	}
	if err := nr.Valid(); err != nil {
		t.Fatalf("decoded resource invalid: %v", err)
	}
	if ones, bits := nr.Subnet.Mask.Size(); ones != 24 || bits != 32 || nr.Subnet.IP.To4()[2] != 3 {
		t.Errorf("subnet decoded as %v", nr.Subnet)
	}
	if !nr.NetworkIPRange.Contains(nr.Subnet.IP) || nr.NetworkIPRange.Contains(nr.Peers[0].AllowedIPs[1].IP) {
		t.Errorf("ip range %v decoded wrong: contains %v but not %v?", nr.NetworkIPRange, nr.Peers[0].AllowedIPs[1].IP, nr.Subnet.IP)
	}
	if nr.WGListenPort != 6380 || nr.Peers[0].AllowedIPs[1].String() != "100.64.1.4/32" {
		t.Errorf("decoded %+v", nr)
	}
	out, err := json.Marshal(nr)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Errorf("re-encoded:\n got %s\nwant %s", out, in)
	}
}

func TestNetworkSchemaVersions(t *testing.T) {
	if got := pkg.NetworkSchemaV1.String(); got != "1.0.0" {
		t.Errorf("NetworkSchemaV1 = %s", got)
	}
	if got := pkg.NetworkSchemaV2.String(); got != "2.0.0" {
		t.Errorf("NetworkSchemaV2 = %s", got)
	}
	if pkg.NetworkSchemaLatestVersion != pkg.NetworkSchemaV2 {
		t.Errorf("latest = %s, want V2", pkg.NetworkSchemaLatestVersion)
	}
	if !pkg.NetworkSchemaV1.LessThan(pkg.NetworkSchemaV2) {
		t.Error("V1 not older than V2")
	}
	// an unversioned cache file counts as 0.0.0, older than both
	if (types.Version{}).Compare(pkg.NetworkSchemaV1) >= 0 {
		t.Error("0.0.0 not older than V1")
	}
	// the cache file starts with the version as a JSON string
	b, err := json.Marshal(pkg.NetworkSchemaLatestVersion)
	if err != nil || string(b) != `"2.0.0"` {
		t.Errorf("latest version JSON = %s, %v", b, err)
	}
}
