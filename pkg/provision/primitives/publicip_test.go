package primitives

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/knftables"

	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/network/networktest"
	"github.com/zos-go/zos/pkg/provision"
)

// fakeFilter keeps the filters applied, by workload name.
type fakeFilter struct {
	mu    sync.Mutex
	rules map[string]PubIPRules
	fail  error
}

func (f *fakeFilter) Apply(_ context.Context, r PubIPRules) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.rules[r.Name] = r
	return nil
}

func (f *fakeFilter) Remove(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.rules, name)
	return nil
}

// noIPv4 is a node without public IPv4 support.
type noIPv4 struct{ *networktest.Fake }

func (noIPv4) PublicIPv4Support() bool { return false }

func TestPublicIPProvision(t *testing.T) {
	net := networktest.NewFake()
	filter := &fakeFilter{rules: map[string]PubIPRules{}}
	p := PublicIP{Networker: net, Filter: filter}
	ctx := t.Context()
	d := deployment(t, 7, &gridtypes.PublicIP{IPAddress: "185.69.166.7/24"})

	res, err := p.Provision(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if res != (gridtypes.PublicIPResult{ID: "7-1", IP: "185.69.166.7/24"}) {
		t.Fatalf("result %+v", res)
	}
	r := filter.rules["7-1"]
	mac := PublicIPMAC(netip.MustParseAddr("185.69.166.7"))
	if r.IP != netip.MustParseAddr("185.69.166.7") || r.MAC.String() != mac.String() || r.Tap() != "p-7-1" {
		t.Fatalf("rules %+v", r)
	}
	// the SLAAC address of the MAC in the fake's 2001:db8:1::/64
	m := mac
	want := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, m[0] ^ 2, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]})
	if r.IPv6 != want {
		t.Fatalf("ipv6 %s, want %s", r.IPv6, want)
	}
	if mac[0]&1 != 0 || mac[0]&2 == 0 {
		t.Fatalf("mac %s is not unicast, locally administered", mac)
	}

	// the VM's tap, made by the VM's provisioner, is detached on decommission
	if _, err := net.SetupPubTap("7-1"); err != nil {
		t.Fatal(err)
	}
	if err := p.Decommission(ctx, d); err != nil {
		t.Fatal(err)
	}
	if net.PubTapAttached("7-1") {
		t.Fatal("tap still attached")
	}
	if _, ok := filter.rules["7-1"]; ok {
		t.Fatal("filter left")
	}
	if err := p.Decommission(ctx, d); err != nil {
		t.Fatalf("second decommission: %v", err)
	}
}

func TestPublicIPRefused(t *testing.T) {
	filter := &fakeFilter{rules: map[string]PubIPRules{}}
	p := PublicIP{Networker: noIPv4{networktest.NewFake()}, Filter: filter}
	_, err := p.Provision(t.Context(), deployment(t, 7, &gridtypes.PublicIP{IPAddress: "185.69.166.7/24"}))
	if !errors.Is(err, ErrNoPublicIPv4) || errors.Is(err, provision.ErrTemporary) {
		t.Fatalf("no ipv4 support: %v", err)
	}
	p.Networker = networktest.NewFake()
	for _, ip := range []string{"2001:db8::1/64", "185.69.166.7", ""} {
		if _, err := p.Provision(t.Context(), deployment(t, 7, &gridtypes.PublicIP{IPAddress: ip})); err == nil || !strings.HasPrefix(err.Error(), "ipaddress") {
			t.Errorf("%q: %v", ip, err)
		}
	}
	// a name too long for a tap
	d := deployment(t, 1234567890123, &gridtypes.PublicIP{IPAddress: "185.69.166.7/24"})
	if _, err := p.Provision(t.Context(), d); err == nil {
		t.Error("long name accepted")
	}
	if len(filter.rules) != 0 {
		t.Fatalf("filters applied: %v", filter.rules)
	}
	filter.fail = errors.New("nft exploded")
	_, err = p.Provision(t.Context(), deployment(t, 7, &gridtypes.PublicIP{IPAddress: "185.69.166.7/24"}))
	if !errors.Is(err, provision.ErrTemporary) {
		t.Fatalf("filter failure: %v", err)
	}
}

func TestPubIPRuleset(t *testing.T) {
	ip := netip.MustParseAddr("185.69.166.7")
	r := PubIPRules{Name: "7-1", IP: ip, MAC: PublicIPMAC(ip), IPv6: netip.MustParseAddr("2001:db8:1::1")}
	nft := knftables.NewFake(knftables.BridgeFamily, pubIPTable(r.Name))
	for range 2 { // applying twice gives the same table
		tx := nft.NewTransaction()
		r.transaction(tx)
		if err := nft.Run(t.Context(), tx); err != nil {
			t.Fatal(err)
		}
	}
	mac := r.MAC.String()
	want := `add table bridge r-7-1
add chain bridge r-7-1 check
add chain bridge r-7-1 forward { type filter hook forward priority -200 ; }
add chain bridge r-7-1 input { type filter hook input priority -200 ; }
add rule bridge r-7-1 check ether type != { arp, ip, ip6 } counter drop
add rule bridge r-7-1 check ether saddr != ` + mac + ` counter drop
add rule bridge r-7-1 check arp saddr ether != ` + mac + ` counter drop
add rule bridge r-7-1 check arp saddr ip != { 0.0.0.0, 185.69.166.7 } counter drop
add rule bridge r-7-1 check ip saddr != 185.69.166.7 counter drop
add rule bridge r-7-1 check ip protocol udp udp sport 67 counter drop
add rule bridge r-7-1 check meta l4proto udp udp sport 547 counter drop
add rule bridge r-7-1 check icmpv6 type nd-router-advert counter drop
add rule bridge r-7-1 check ip6 saddr != { ::, fe80::/64, 2001:db8:1::1 } counter drop
add rule bridge r-7-1 forward iifname "p-7-1" jump check
add rule bridge r-7-1 input iifname "p-7-1" jump check
`
	if got := nft.Dump(); got != want {
		t.Fatalf("ruleset:\n%s\nwant:\n%s", got, want)
	}
}
