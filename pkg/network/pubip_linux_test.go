package network_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/network"
)

// arpAnswered sends "who has target, tell src (mac)" on the tap and reports
// whether a reply for mac comes back within wait.
func arpAnswered(t *testing.T, f *os.File, mac net.HardwareAddr, src, target string, wait time.Duration) bool {
	t.Helper()
	if _, err := f.Write(arpRequest(mac, net.ParseIP(src), net.ParseIP(target))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(wait)
	buf := make([]byte, 2048)
	for time.Now().Before(deadline) {
		_ = f.SetReadDeadline(deadline)
		n, err := f.Read(buf)
		if err != nil {
			return false
		}
		p := buf[:n]
		if n >= 42 && binary.BigEndian.Uint16(p[12:]) == 0x0806 && binary.BigEndian.Uint16(p[20:]) == 2 &&
			net.IP(p[28:32]).Equal(net.ParseIP(target)) && bytes.Equal(p[32:38], mac) && net.IP(p[38:42]).Equal(net.ParseIP(src)) {
			return true
		}
	}
	return false
}

// TestPublicIPFilter: a VM on a public tap can only use the IP (and MAC) it
// reserved; another VM claiming it gets nothing from the internet.
func TestPublicIPFilter(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t, "ip", "nft")
	nd := newGrid(t, 1).nodes[0]
	nd.start()
	ip1, ip2 := netip.MustParseAddr("198.18.0.150"), netip.MustParseAddr("198.18.0.151")
	for res, ip := range map[string]netip.Addr{"1-1": ip1, "2-1": ip2} {
		if _, err := nd.mod.SetupPubTap(res); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = nd.mod.RemovePubTap(res) })
		if err := nd.mod.SetupPubIPFilter(t.Context(), res, ip); err != nil {
			t.Fatal(err)
		}
		if err := nd.mod.SetupPubIPFilter(t.Context(), res, ip); err != nil {
			t.Fatalf("second SetupPubIPFilter: %v", err)
		}
	}
	vm2 := openTap(t, nd.hostNS, "p-2-1")
	mac1, mac2 := network.PubIPMAC(ip1), network.PubIPMAC(ip2)
	testutil.WaitFor(t, 10*time.Second, "vm2 reaches the gateway with its own address", func() error {
		if !arpAnswered(t, vm2, mac2, ip2.String(), inetGW, 300*time.Millisecond) {
			return os.ErrDeadlineExceeded
		}
		return nil
	})
	if arpAnswered(t, vm2, mac2, ip1.String(), inetGW, time.Second) {
		t.Errorf("vm2 claimed vm1's address and got an answer")
	}
	if arpAnswered(t, vm2, mac1, ip2.String(), inetGW, time.Second) {
		t.Errorf("vm2 used vm1's MAC and got an answer")
	}
	// Control: without the filter the same spoof gets through.
	if err := nd.mod.RemovePubIPFilter(t.Context(), "2-1"); err != nil {
		t.Fatal(err)
	}
	if !arpAnswered(t, vm2, mac2, ip1.String(), inetGW, 2*time.Second) {
		t.Errorf("without the filter the spoofed request got no answer either: the test proves nothing")
	}
	if err := nd.mod.RemovePubIPFilter(t.Context(), "2-1"); err != nil {
		t.Errorf("second RemovePubIPFilter: %v", err)
	}
}
