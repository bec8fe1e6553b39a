package network_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/internal/netns"
	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/network"
	"github.com/zos-go/zos/pkg/network/networktest"
)

// linkIn returns link name of namespace ns.
func linkIn(t *testing.T, ns, name string) netlink.Link {
	t.Helper()
	var l netlink.Link
	if err := netns.Do(ns, func() error {
		var err error
		l, err = netlink.LinkByName(name)
		return err
	}); err != nil {
		t.Fatalf("link %s in %s: %v", name, ns, err)
	}
	return l
}

// openTap attaches to an existing persistent tap as a VM would (qemu opens
// the tap the same way) and returns the queue's file.
func openTap(t *testing.T, ns, name string) *os.File {
	t.Helper()
	var f *os.File
	err := netns.Do(ns, func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return err
		}
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(fd)
			return err
		}
		f = os.NewFile(uintptr(fd), name)
		return nil
	})
	if err != nil {
		t.Fatalf("open tap %s: %v", name, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// arpRequest builds an Ethernet ARP request "who has target, tell src".
func arpRequest(mac net.HardwareAddr, src, target net.IP) []byte {
	var b bytes.Buffer
	b.Write([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	b.Write(mac)
	_ = binary.Write(&b, binary.BigEndian, uint16(0x0806))
	_ = binary.Write(&b, binary.BigEndian, []uint16{1, 0x0800})
	b.Write([]byte{6, 4})
	_ = binary.Write(&b, binary.BigEndian, uint16(1))
	b.Write(mac)
	b.Write(src.To4())
	b.Write(make([]byte, 6))
	b.Write(target.To4())
	return b.Bytes()
}

func TestTapsAndZDB(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t, "ip", "nft")
	nd := newGrid(t, 1).nodes[0]
	nd.start()
	nr := networktest.NR("Taps00000001", "taps", "10.30.0.0/16", "10.30.4.0/24", 51900, networktest.NewKey(), nil)
	if _, err := nd.mod.CreateNR(nr); err != nil {
		t.Fatal(err)
	}
	t.Run("VMTapReachesGateway", func(t *testing.T) {
		name, err := nd.mod.SetupTap(nr.NetID)
		if err != nil {
			t.Fatal(err)
		}
		defer nd.mod.RemoveTap(nr.NetID)
		tap := linkIn(t, nd.hostNS, name)
		br := linkIn(t, nd.hostNS, "b-"+string(nr.NetID))
		if tap.Type() != "tuntap" || tap.Attrs().MasterIndex != br.Attrs().Index || tap.Attrs().MTU != 1500 {
			t.Errorf("tap %s: type %s master %d (bridge %d) mtu %d", name, tap.Type(), tap.Attrs().MasterIndex, br.Attrs().Index, tap.Attrs().MTU)
		}
		// A "VM" on the tap asks for the gateway's MAC and gets the answer.
		f := openTap(t, nd.hostNS, name)
		vmMAC := network.HardwareAddrFromInputBytes([]byte("vm"))
		waitARPReply(t, f, vmMAC, net.ParseIP("10.30.4.9"), net.ParseIP("10.30.4.1"), nil)
		if _, err := nd.mod.SetupTap(nr.NetID); !errors.Is(err, network.ErrExists) {
			t.Errorf("second SetupTap: %v", err)
		}
	})
	t.Run("PublicTap", func(t *testing.T) {
		name, err := nd.mod.SetupPubTap("77-1")
		if err != nil {
			t.Fatal(err)
		}
		pub := linkIn(t, nd.hostNS, nd.cfg.PublicBridge)
		if l := linkIn(t, nd.hostNS, name); l.Attrs().MasterIndex != pub.Attrs().Index {
			t.Errorf("public tap not on %s", nd.cfg.PublicBridge)
		}
		if err := nd.mod.DisconnectPubTap("77-1"); err != nil {
			t.Fatal(err)
		}
		if l := linkIn(t, nd.hostNS, name); l.Attrs().MasterIndex != 0 {
			t.Errorf("public tap still attached after DisconnectPubTap")
		}
		if err := nd.mod.RemovePubTap("77-1"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := linkExists(nd.hostNS, name); ok {
			t.Errorf("public tap left")
		}
	})
	t.Run("ZDB", func(t *testing.T) {
		hw := network.HardwareAddrFromInputBytes([]byte("zdb-volume-1"))
		ns, err := nd.mod.ZDBPrepare(hw)
		if err != nil {
			t.Fatal(err)
		}
		l := linkIn(t, ns, "zdb0")
		pub := linkIn(t, nd.hostNS, nd.cfg.PublicBridge)
		if l.Attrs().HardwareAddr.String() != hw.String() || l.Type() != "macvlan" || l.Attrs().ParentIndex != pub.Attrs().Index || l.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("zdb0: type %s mac %s parent %d (br-pub %d) flags %v", l.Type(), l.Attrs().HardwareAddr, l.Attrs().ParentIndex, pub.Attrs().Index, l.Attrs().Flags)
		}
		if err := nd.mod.ZDBDestroy(ns); err != nil {
			t.Fatal(err)
		}
		if netns.Exists(ns) {
			t.Errorf("zdb namespace left")
		}
	})
	t.Run("PublicIPv6", func(t *testing.T) {
		if _, err := nd.mod.GetPublicIPv6Subnet(); !errors.Is(err, network.ErrNoPublicIPv6) {
			t.Errorf("GetPublicIPv6Subnet on an IPv4-only node: %v", err)
		}
		if _, err := nd.mod.Join(nr.NetID, "v6c", pkg.ContainerNetworkConfig{IPs: []string{"10.30.4.7"}, PublicIP6: true}); !errors.Is(err, network.ErrIPv4Only) {
			t.Errorf("PublicIP6 on an IPv4-only node: %v", err)
		}
		m, err := nd.mod.Join(nr.NetID, "v4c", pkg.ContainerNetworkConfig{IPs: []string{"10.30.4.7"}})
		if err != nil {
			t.Fatal(err)
		}
		if m.IPv6 != nil {
			t.Errorf("IPv6 %s on an IPv4-only node", m.IPv6)
		}
		_ = nd.mod.Leave(nr.NetID, "v4c")
		// What SLAAC would give npub6.
		ndmz := nd.cfg.NamePrefix + "ndmz"
		run(t, "ip", "-n", ndmz, "addr", "add", "2001:db8:7::5/64", "dev", "npub6", "nodad")
		sub, err := nd.mod.GetPublicIPv6Subnet()
		if err != nil || sub.String() != "2001:db8:7::/64" {
			t.Errorf("GetPublicIPv6Subnet = %v, %v", sub.String(), err)
		}
		m, err = nd.mod.Join(nr.NetID, "v6c", pkg.ContainerNetworkConfig{IPs: []string{"10.30.4.8"}})
		if err != nil {
			t.Fatal(err)
		}
		defer nd.mod.Leave(nr.NetID, "v6c")
		want := network.Convert4to6(nr.NetID, net.ParseIP("10.30.4.8"))
		if !m.IPv6.Equal(want) {
			t.Errorf("member IPv6 = %s; want %s", m.IPv6, want)
		}
		ips, _ := nd.mod.Addrs("eth0", m.Namespace)
		if !slices.ContainsFunc(ips, func(ip net.IP) bool { return ip.Equal(want) }) {
			t.Errorf("eth0 addresses %v lack %s", ips, want)
		}
		// The IPv6 gateway answers inside the network resource.
		testutil.WaitFor(t, 10*time.Second, "ping6 gateway", func() error {
			return exec.Command("ip", "netns", "exec", m.Namespace, "ping", "-6", "-c", "1", "-W", "1", "fd"+gw6Suffix(nr)).Run()
		})
		p, err := nd.mod.Join(nr.NetID, "pubc", pkg.ContainerNetworkConfig{IPs: []string{"10.30.4.9"}, PublicIP6: true})
		if err != nil {
			t.Fatal(err)
		}
		defer nd.mod.Leave(nr.NetID, "pubc")
		pl := linkIn(t, p.Namespace, "pub")
		if pl.Type() != "macvlan" || pl.Attrs().HardwareAddr.String() != network.HardwareAddrFromInputBytes([]byte("pubc")).String() {
			t.Errorf("pub: %s %s", pl.Type(), pl.Attrs().HardwareAddr)
		}
	})
}

// gw6Suffix returns the IPv6 gateway of nr without its "fd" (keeps the
// derivation visible in the test).
func gw6Suffix(nr pkg.NetResource) string {
	_, gw6 := network.GatewayIPs(nr)
	return gw6.String()[2:]
}

func TestAddressStreams(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t, "ip", "nft")
	nd := newGrid(t, 1).nodes[0]
	nd.cfg.Public = &network.PublicConfig{IPv4: mustPrefix("198.18.0.201/24"), GW4: mustAddr(inetGW)}
	nd.start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	has := func(as pkg.NetlinkAddresses, ip string) bool {
		return slices.ContainsFunc(as, func(a pkg.NetlinkAddress) bool { return a.IP.Equal(net.ParseIP(ip)) })
	}
	zos := nd.mod.ZOSAddresses(ctx)
	if first := <-zos; !has(first, "198.18.0.11") {
		t.Errorf("zos addresses %v lack 198.18.0.11", first)
	}
	start := time.Now()
	run(t, "ip", "-n", nd.hostNS, "addr", "add", "198.18.0.99/24", "dev", "zos")
	for a := range zos {
		if has(a, "198.18.0.99") {
			break
		}
	}
	t.Logf("new zos address streamed after %v", time.Since(start))
	if a := <-nd.mod.DMZAddresses(ctx); !has(a, "198.18.0.111") {
		t.Errorf("dmz addresses %v lack npub4's 198.18.0.111", a)
	}
	if a := <-nd.mod.PublicAddresses(ctx); !has(a, "198.18.0.201") {
		t.Errorf("public addresses %v lack 198.18.0.201", a)
	}
	if a := <-nd.mod.YggAddresses(ctx); len(a) != 0 {
		t.Errorf("ygg addresses without yggdrasil: %v", a)
	}
	// The public namespace reaches the internet with its static address.
	if err := ping(nd.cfg.NamePrefix+"public", inetGW, 1, 2*time.Second); err != nil {
		t.Error(err)
	}
}

// TestDHCPNdmz: without a static address npub4 gets its IPv4 and default
// route from a DHCP server on the internet segment through the supervised
// udhcpc, and a network resource reaches the internet through it.
func TestDHCPNdmz(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t, "ip", "nft", "ping", "busybox", "udhcpc")
	g := newGrid(t, 1)
	nd := g.nodes[0]
	dir := testutil.TempDir(t)
	conf := filepath.Join(dir, "udhcpd.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("start 198.18.0.160\nend 198.18.0.170\ninterface inet\nlease_file %s/leases\npidfile %s/pid\noption subnet 255.255.255.0\noption router %s\n", dir, dir, inetGW)), 0o600); err != nil {
		t.Fatal(err)
	}
	testutil.StartProcess(t, nil, "ip", "netns", "exec", g.inet, "busybox", "udhcpd", "-f", conf)
	nd.cfg.NDMZ4Address = netip.Prefix{}
	nd.cfg.NDMZ4Gateway = netip.Addr{}
	nd.cfg.DHCP = true
	nd.cfg.DHCPCommand = "udhcpc"
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(nd.sup.Dir, nd.cfg.NamePrefix+"dhcp-npub4.log"))
			t.Logf("udhcpc log:\n%s", b)
		}
	})
	nd.start()
	ips, err := nd.mod.Addrs("npub4", nd.cfg.NamePrefix+"ndmz")
	if err != nil || !slices.ContainsFunc(ips, func(ip net.IP) bool { return ip.To4() != nil && ip.To4()[3] >= 160 && ip.To4()[3] <= 170 }) {
		t.Fatalf("npub4 addresses %v, %v; want one of the DHCP pool", ips, err)
	}
	nr := networktest.NR("Dhcp00000001", "dhcp", "10.60.0.0/16", "10.60.1.0/24", 52201, networktest.NewKey(), nil)
	if _, err := nd.mod.CreateNR(nr); err != nil {
		t.Fatal(err)
	}
	m, err := nd.mod.Join(nr.NetID, "c", pkg.ContainerNetworkConfig{IPs: []string{"10.60.1.5"}})
	if err != nil {
		t.Fatal(err)
	}
	defer nd.mod.Leave(nr.NetID, "c")
	if err := ping(m.Namespace, inetGW, 2, 2*time.Second); err != nil {
		t.Error(err)
	}
}
