package primitives

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/network/networktest"
)

// TestPublicIPFilterReal builds, in namespaces of its own, a "host" with a
// public bridge, a "VM" behind the tap p-7-1 and an "internet" on another
// port of the bridge, and checks with real traffic that the filter lets
// the VM's own address and MAC through and stops spoofed ones.
func TestPublicIPFilterReal(t *testing.T) {
	testutil.RequireRoot(t, "ip", "nft", "ping")
	testutil.CheckLeaks(t)
	host, vm, inet := testutil.NetNS(t), testutil.NetNS(t), testutil.NetNS(t)
	ip := netip.MustParseAddr("185.69.166.7")
	mac := PublicIPMAC(ip).String()
	run := func(ns string, args ...string) {
		t.Helper()
		if out, err := testutil.InNetNS(t, ns, args[0], args[1:]...); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run(host, "ip", "link", "add", "br0", "type", "bridge")
	run(host, "ip", "link", "add", "p-7-1", "type", "veth", "peer", "name", "eth0", "netns", vm)
	run(host, "ip", "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", inet)
	for _, l := range []string{"br0", "p-7-1", "up0"} {
		if l != "br0" {
			run(host, "ip", "link", "set", l, "master", "br0")
		}
		run(host, "ip", "link", "set", l, "up")
	}
	run(vm, "ip", "link", "set", "eth0", "address", mac)
	run(vm, "ip", "addr", "add", "185.69.166.7/24", "dev", "eth0")
	run(vm, "ip", "link", "set", "eth0", "up")
	run(inet, "ip", "addr", "add", "185.69.166.1/24", "dev", "eth0")
	run(inet, "ip", "link", "set", "eth0", "up")

	ping := func(args ...string) bool {
		t.Helper()
		_, err := testutil.InNetNS(t, vm, "ping", append([]string{"-c", "1", "-W", "1"}, args...)...)
		return err == nil
	}
	flush := func() {
		t.Helper()
		run(vm, "ip", "neigh", "flush", "all")
		run(inet, "ip", "neigh", "flush", "all")
	}

	net := networktest.NewFake()
	p := PublicIP{Networker: net, Filter: NFTFilter{NetNS: host}}
	d := deployment(t, 7, &gridtypes.PublicIP{IPAddress: "185.69.166.7/24"})
	for range 2 { // idempotent
		if _, err := p.Provision(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 10*time.Second, "ping from the VM's own address", func() error {
		if !ping("185.69.166.1") {
			return errAnswer
		}
		return nil
	})

	// another source address
	run(vm, "ip", "addr", "add", "185.69.166.8/24", "dev", "eth0")
	flush()
	if ping("-I", "185.69.166.8", "185.69.166.1") {
		t.Fatal("spoofed source address got through")
	}
	run(vm, "ip", "addr", "del", "185.69.166.8/24", "dev", "eth0")
	// another MAC
	run(vm, "ip", "link", "set", "eth0", "address", "02:00:00:00:00:99")
	flush()
	if ping("185.69.166.1") {
		t.Fatal("spoofed MAC got through")
	}
	run(vm, "ip", "link", "set", "eth0", "address", mac)
	flush()
	if !ping("185.69.166.1") {
		t.Fatal("own address and MAC refused after the spoofing attempts")
	}

	if err := p.Decommission(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	out, err := testutil.InNetNS(t, host, "nft", "list", "tables")
	if err != nil || strings.Contains(out, "r-7-1") {
		t.Fatalf("tables after decommission: %v %s", err, out)
	}
	// without the filter the spoofed address passes: the filter was what
	// stopped it
	run(vm, "ip", "addr", "add", "185.69.166.8/24", "dev", "eth0")
	flush()
	if !ping("-I", "185.69.166.8", "185.69.166.1") {
		t.Fatal("no traffic without the filter: the test network is broken")
	}
	if err := p.Decommission(t.Context(), d); err != nil {
		t.Fatalf("second decommission: %v", err)
	}
}

var errAnswer = errors.New("no answer")
