package network_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/zos-go/zos/internal/netns"
	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/network"
	"github.com/zos-go/zos/pkg/network/networktest"
)

// waitARPReply sends, from a "VM" with mac and address src on the tap
// opened as f, ARP requests for gw until gw answers to mac with gwMAC.
func waitARPReply(t *testing.T, f *os.File, mac net.HardwareAddr, src, gw net.IP, gwMAC net.HardwareAddr) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, "arp reply from "+gw.String()+" to "+mac.String(), func() error {
		if _, err := f.Write(arpRequest(mac, src, gw)); err != nil {
			return err
		}
		buf := make([]byte, 2048)
		_ = f.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		for {
			n, err := f.Read(buf)
			if err != nil {
				return err
			}
			p := buf[:n]
			if n >= 42 && binary.BigEndian.Uint16(p[12:]) == 0x0806 && binary.BigEndian.Uint16(p[20:]) == 2 &&
				net.IP(p[28:32]).Equal(gw) && bytes.Equal(p[32:38], mac) && net.IP(p[38:42]).Equal(src) &&
				(gwMAC == nil || bytes.Equal(p[22:28], gwMAC)) {
				return nil
			}
		}
	})
}

// vmTapsIn returns the VM taps (tv-…) of namespace ns.
func vmTapsIn(t *testing.T, ns string) []string {
	t.Helper()
	var out []string
	if err := netns.Do(ns, func() error {
		links, err := netlink.LinkList()
		for _, l := range links {
			if strings.HasPrefix(l.Attrs().Name, "tv-") {
				out = append(out, l.Attrs().Name)
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestVMTaps gives two VMs of one network their own taps, checks that each
// reaches the network's gateway, that a tap half made by a crash is
// completed, that a restart removes unrecorded VM taps and re-attaches
// detached ones, and that DeleteNR removes them all.
func TestVMTaps(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t, "ip", "nft")
	nd := newGrid(t, 1).nodes[0]
	nd.start()
	nr := networktest.NR("VMTaps000001", "vmtaps", "10.31.0.0/16", "10.31.4.0/24", 51910, networktest.NewKey(), nil)
	nsName, err := nd.mod.CreateNR(nr)
	if err != nil {
		t.Fatal(err)
	}
	gw := net.ParseIP("10.31.4.1")
	gwMAC := linkIn(t, nsName, "n-"+string(nr.NetID)).Attrs().HardwareAddr
	br := linkIn(t, nd.hostNS, "b-"+string(nr.NetID))
	checkAttached := func(name string) {
		t.Helper()
		l := linkIn(t, nd.hostNS, name)
		if l.Type() != "tuntap" || l.Attrs().MasterIndex != br.Attrs().Index || l.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("tap %s: type %s, master %d (bridge %d), flags %v", name, l.Type(), l.Attrs().MasterIndex, br.Attrs().Index, l.Attrs().Flags)
		}
	}

	// Two VMs on one network, each with its own tap (QEMU opens a tap
	// exclusively), each answered by the gateway on its own tap.
	var taps []string
	for i, vm := range []string{"100-1", "101-1"} {
		name, err := nd.mod.SetupVMTap(nr.NetID, vm)
		if err != nil {
			t.Fatalf("SetupVMTap(%s): %v", vm, err)
		}
		checkAttached(name)
		taps = append(taps, name)
		f := openTap(t, nd.hostNS, name)
		mac := network.HardwareAddrFromInputBytes([]byte(vm))
		waitARPReply(t, f, mac, net.IPv4(10, 31, 4, byte(50+i)).To4(), gw, gwMAC)
	}
	if taps[0] == taps[1] {
		t.Fatalf("both VMs got tap %s", taps[0])
	}

	// A crash between making the tap and attaching it: the next
	// SetupVMTap of that VM completes it.
	half := network.VMTapName(nr.NetID, "102-1")
	run(t, "ip", "-n", nd.hostNS, "tuntap", "add", "mode", "tap", "name", half)
	if name, err := nd.mod.SetupVMTap(nr.NetID, "102-1"); err != nil || name != half {
		t.Fatalf("SetupVMTap over a half made tap = %q, %v", name, err)
	}
	checkAttached(half)

	// Restart: an unrecorded VM tap goes, a detached one is attached again.
	run(t, "ip", "-n", nd.hostNS, "tuntap", "add", "mode", "tap", "name", "tv-orphan")
	run(t, "ip", "-n", nd.hostNS, "link", "set", taps[1], "nomaster")
	nd.halt()
	nd.start()
	if ok, _ := linkExists(nd.hostNS, "tv-orphan"); ok {
		t.Errorf("unrecorded vm tap survived the restart")
	}
	for _, name := range append(taps, half) {
		checkAttached(name)
	}
	if ok, err := nd.mod.VMTapExists(nr.NetID, "101-1"); !ok || err != nil {
		t.Errorf("VMTapExists after restart = %v, %v", ok, err)
	}

	if err := nd.mod.DeleteNR(nr); err != nil {
		t.Fatal(err)
	}
	if left := vmTapsIn(t, nd.hostNS); len(left) != 0 {
		t.Errorf("vm taps left after DeleteNR: %v", left)
	}
	if recs, _ := os.ReadDir(filepath.Join(nd.cfg.StateDir, "vmtaps")); len(recs) != 0 {
		t.Errorf("vm tap records left after DeleteNR: %d", len(recs))
	}
}
