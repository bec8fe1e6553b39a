package network_test

import (
	"net"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/netns"
	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/network/networktest"
)

// TestIsolation checks every isolation rule with a listener behind each
// target, so a refused connection means the firewall or the layout, not a
// closed port: positive controls first, then what must fail.
func TestIsolation(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t, "ip", "nft", "ping", "timeout", "bash")
	g := newGrid(t, 1)
	nd := g.nodes[0]
	nd.start()
	x := networktest.NR("IsolX0000001", "userx", "10.40.0.0/16", "10.40.1.0/24", 52001, networktest.NewKey(), nil)
	y := networktest.NR("IsolY0000001", "usery", "10.41.0.0/16", "10.41.1.0/24", 52002, networktest.NewKey(), nil)
	for _, nr := range []pkg.NetResource{x, y} {
		if _, err := nd.mod.CreateNR(nr); err != nil {
			t.Fatal(err)
		}
	}
	join := func(nr pkg.NetResource, id, ip string) string {
		m, err := nd.mod.Join(nr.NetID, id, pkg.ContainerNetworkConfig{IPs: []string{ip}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = nd.mod.Leave(nr.NetID, id) })
		listen(t, m.Namespace, ":8080")
		return m.Namespace
	}
	x1 := join(x, "x1", "10.40.1.5")
	x2 := join(x, "x2", "10.40.1.6")
	y1 := join(y, "y1", "10.41.1.5")
	ndmz := nd.cfg.NamePrefix + "ndmz"
	listen(t, ndmz, ":9943")
	listen(t, nd.hostNS, ":9943")
	listen(t, g.inet, ":80")
	ips, err := nd.mod.Addrs("public", nd.cfg.NamePrefix+"n-"+string(y.NetID))
	if err != nil || len(ips) == 0 {
		t.Fatalf("public address of y: %v %v", ips, err)
	}
	yPublic := ips[0].String()
	listen(t, nd.cfg.NamePrefix+"n-"+string(y.NetID), ":8081")

	// Controls: the listeners answer where they should.
	if !canConnect(x1, "10.40.1.6", 8080) {
		t.Fatalf("x1 cannot reach x2 in its own network")
	}
	if !canConnect(x1, inetGW, 80) {
		t.Fatalf("x1 cannot reach the internet")
	}
	if !canConnect(ndmz, "127.0.0.1", 9943) || !canConnect(nd.hostNS, "127.0.0.1", 9943) || !canConnect(y1, "127.0.0.1", 8080) {
		t.Fatalf("a listener does not answer locally")
	}
	if !canConnect(nd.cfg.NamePrefix+"n-"+string(y.NetID), yPublic, 8081) {
		t.Fatalf("y's resource namespace listener does not answer locally")
	}

	cases := []struct {
		name, from, to string
		port           int
	}{
		{"another user's container", x1, "10.41.1.5", 8080},
		{"another user's resource namespace", x1, yPublic, 8081},
		{"the ndmz (node services)", x1, "100.127.0.1", 9943},
		{"the node's public ipv4 (npub4)", x1, "198.18.0.111", 9943},
		{"the node's host address", x1, "198.18.0.11", 9943},
		{"the internet into a container", g.inet, "10.40.1.5", 8080},
		{"the ndmz into a container", ndmz, "10.40.1.5", 8080},
		{"the host into a container", nd.hostNS, "10.40.1.5", 8080},
	}
	// The internet routes the network's range to the node, as a hostile
	// neighbour on the segment could.
	run(t, "ip", "-n", g.inet, "route", "add", "10.40.0.0/16", "via", "198.18.0.111")
	run(t, "ip", "-n", ndmz, "route", "add", "10.40.0.0/16", "via", "100.127.0.2")
	for _, c := range cases {
		if canConnect(c.from, c.to, c.port) {
			t.Errorf("%s: %s:%d reachable; want isolation", c.name, c.to, c.port)
		}
	}
	if err := ping(x1, "10.41.1.5", 1, time.Second); err == nil {
		t.Errorf("x1 pings another user's container")
	}
	if err := ping(x2, "10.40.1.5", 1, time.Second); err != nil {
		t.Errorf("x2 cannot ping x1: %v", err)
	}
	// Outbound traffic is NATed: the internet sees npub4's address.
	if src := remoteOf(t, g.inet, x1); src != "198.18.0.111" {
		t.Errorf("the internet saw %s; want npub4's 198.18.0.111", src)
	}
	// A new node address is protected as soon as it appears.
	run(t, "ip", "-n", nd.hostNS, "addr", "add", "198.18.0.77/24", "dev", "zos")
	time.Sleep(500 * time.Millisecond)
	if canConnect(x1, "198.18.0.77", 9943) {
		t.Errorf("a new node address is reachable from a network")
	}
}

// remoteOf returns the source address the namespace srv sees when client
// connects to it.
func remoteOf(t *testing.T, srv, client string) string {
	t.Helper()
	var l net.Listener
	if err := netns.Do(srv, func() error {
		var err error
		l, err = net.Listen("tcp", ":81")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		got <- c.RemoteAddr().(*net.TCPAddr).IP.String()
		c.Close()
	}()
	canConnect(client, inetGW, 81)
	select {
	case s := <-got:
		return s
	case <-time.After(5 * time.Second):
		return "nothing"
	}
}
