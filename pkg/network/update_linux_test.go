package network_test

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/network/networktest"
)

// peerState returns the peer of key on the node's device.
func peerState(t *testing.T, nd *node, id pkg.NetID, key string) (wgtypes.Peer, bool) {
	t.Helper()
	c, err := wgctrl.New()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d, err := c.Device(nd.cfg.NamePrefix + "w-" + string(id))
	if err != nil {
		t.Fatalf("device: %v", err)
	}
	for _, p := range d.Peers {
		if p.PublicKey.String() == key {
			return p, true
		}
	}
	return wgtypes.Peer{}, false
}

// pinger runs ping -i 0.1 for the given duration in the background and
// returns a function that waits and returns (sent, received).
func pinger(t *testing.T, ns, target string, d time.Duration) func() (int, int) {
	n := int(d / (100 * time.Millisecond))
	cmd := exec.Command("ip", "netns", "exec", ns, "ping", "-n", "-q", "-i", "0.1", "-W", "1", "-c", strconv.Itoa(n), target)
	out := make(chan string, 1)
	go func() { b, _ := cmd.CombinedOutput(); out <- string(b) }()
	return func() (int, int) {
		s := <-out
		m := regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`).FindStringSubmatch(s)
		if m == nil {
			t.Fatalf("ping output: %s", s)
		}
		sent, _ := strconv.Atoi(m[1])
		recv, _ := strconv.Atoi(m[2])
		return sent, recv
	}
}

func TestUpdateInPlace(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t, "ip", "nft", "ping")
	g := newGrid(t, 3)
	a, b, c := g.nodes[0], g.nodes[1], g.nodes[2]
	for _, nd := range g.nodes {
		nd.start()
	}
	id := pkg.NetID("Update000001")
	ra, rb := pair(a, b, id)
	rc := networktest.NR(id, "net", "10.20.0.0/16", "10.20.3.0/24", 51823, networktest.NewKey(), nil)
	rc.Peers = []pkg.Peer{networktest.PeerOf(ra, a.endpoint(ra.WGListenPort))}
	for _, x := range []struct {
		nd *node
		nr pkg.NetResource
		ip string
	}{{a, ra, "10.20.1.5"}, {b, rb, "10.20.2.5"}, {c, rc, "10.20.3.5"}} {
		if _, err := x.nd.mod.CreateNR(x.nr); err != nil {
			t.Fatalf("CreateNR node %d: %v", x.nd.i, err)
		}
		if _, err := x.nd.mod.Join(id, "c", pkg.ContainerNetworkConfig{IPs: []string{x.ip}}); err != nil {
			t.Fatalf("Join node %d: %v", x.nd.i, err)
		}
		t.Cleanup(func() { _ = x.nd.mod.Leave(id, "c") })
	}
	nsA := a.cfg.NamePrefix + "c"
	testutil.WaitFor(t, 20*time.Second, "a→b", func() error { return ping(nsA, "10.20.2.5", 1, time.Second) })
	before, ok := peerState(t, a, id, rb.WGPublicKey)
	if !ok || before.LastHandshakeTime.IsZero() {
		t.Fatalf("peer b on a: %+v", before)
	}

	// Add c to a's peers while a pings b: b's session must not notice.
	wait := pinger(t, nsA, "10.20.2.5", 3*time.Second)
	time.Sleep(500 * time.Millisecond)
	ra.Peers = append(ra.Peers, networktest.PeerOf(rc, c.endpoint(rc.WGListenPort)))
	if _, err := a.mod.CreateNR(ra); err != nil {
		t.Fatalf("add peer: %v", err)
	}
	testutil.WaitFor(t, 20*time.Second, "a→c", func() error { return ping(nsA, "10.20.3.5", 1, time.Second) })
	if sent, recv := wait(); recv != sent {
		t.Errorf("a→b while adding c: %d/%d answered", recv, sent)
	}
	after, _ := peerState(t, a, id, rb.WGPublicKey)
	if !after.LastHandshakeTime.Equal(before.LastHandshakeTime) {
		t.Errorf("b's session was reset: handshake %v → %v", before.LastHandshakeTime, after.LastHandshakeTime)
	}

	// Remove c again: c unreachable, b untouched.
	wait = pinger(t, nsA, "10.20.2.5", 2*time.Second)
	ra.Peers = ra.Peers[:1]
	if _, err := a.mod.CreateNR(ra); err != nil {
		t.Fatalf("remove peer: %v", err)
	}
	if _, ok := peerState(t, a, id, rc.WGPublicKey); ok {
		t.Errorf("removed peer still configured")
	}
	if err := ping(nsA, "10.20.3.5", 2, time.Second); err == nil {
		t.Errorf("a still reaches c after removing the peer")
	}
	if sent, recv := wait(); recv != sent {
		t.Errorf("a→b while removing c: %d/%d answered", recv, sent)
	}

	// Endpoint change: b moves to another port; a learns the new endpoint.
	rb.WGListenPort = 51832
	if _, err := b.mod.CreateNR(rb); err != nil {
		t.Fatalf("b new port: %v", err)
	}
	ra.Peers[0].Endpoint = b.endpoint(rb.WGListenPort)
	start := time.Now()
	if _, err := a.mod.CreateNR(ra); err != nil {
		t.Fatalf("a new endpoint: %v", err)
	}
	testutil.WaitFor(t, 30*time.Second, "a→b after endpoint change", func() error { return ping(nsA, "10.20.2.5", 1, time.Second) })
	t.Logf("re-converged in %v", time.Since(start).Round(10*time.Millisecond))
	if p, _ := peerState(t, a, id, rb.WGPublicKey); p.Endpoint == nil || p.Endpoint.String() != fmt.Sprintf("198.18.0.12:%d", rb.WGListenPort) {
		t.Errorf("endpoint = %v", p.Endpoint)
	}
}
