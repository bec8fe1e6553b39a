package network

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/zos-go/zos/pkg"
)

// Convert4to6 derives the IPv6 address of the IPv4 address ip in network
// netID, as the original node does (spec §2): the bytes b are the ASCII bytes
// of the net id followed by MD5(""), and the address is
// fd<b0>:<b1><b2>:<b3><b4>:<ip3>::<ip4>, each byte in unpadded hex. For
// example ("ABCDE…", 10.1.3.5) gives fd41:4243:4445:3::5. It returns nil
// when ip is not IPv4.
func Convert4to6(netID pkg.NetID, ip net.IP) net.IP {
	v4 := ip.To4()
	if v4 == nil {
		return nil
	}
	h := md5.New()
	b := h.Sum([]byte(netID)) // the original's quirk: netID ‖ MD5("")
	s := fmt.Sprintf("fd%x:%x%x:%x%x:%x::%x", b[0], b[1], b[2], b[3], b[4], v4[2], v4[3])
	return net.ParseIP(s)
}

// gatewayOf returns <a.b.c>.1 of a /24 subnet.
func gatewayOf(subnet net.IPNet) net.IP {
	ip := subnet.IP.To4()
	if ip == nil {
		return nil
	}
	return net.IPv4(ip[0], ip[1], ip[2], 1).To4()
}

// wgAddrOf returns 100.64.<o2>.<o3>/16 for a subnet a.o2.o3.0/24.
func wgAddrOf(subnet net.IPNet) netip.Prefix {
	ip := subnet.IP.To4()
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 64, ip[1], ip[2]}), 16)
}

// ndmz6Of returns fd00::<o3 %02x><o4 %02x>/64 for an ndmz IPv4 lease.
func ndmz6Of(v4 netip.Addr) netip.Prefix {
	b := v4.As4()
	a := netip.MustParseAddr(fmt.Sprintf("fd00::%02x%02x", b[2], b[3]))
	return netip.PrefixFrom(a, 64)
}

// HardwareAddrFromInputBytes derives a stable, locally administered unicast
// MAC address from input (spec §2): h = MD5(input); take 6 bytes at offset 0,
// set the locally administered bit and clear the multicast bit; while the
// address falls outside the allowed ranges try the next offset (up to 10),
// and when every offset fails hash h again.
func HardwareAddrFromInputBytes(input []byte) net.HardwareAddr {
	h := md5.Sum(input)
	for {
		for off := 0; off <= 10; off++ {
			mac := make(net.HardwareAddr, 6)
			copy(mac, h[off:off+6])
			mac[0] = (mac[0] | 2) & 0xfe
			if macAllowed(mac) {
				return mac
			}
		}
		h = md5.Sum(h[:])
	}
}

// macAllowed reports whether mac lies in the ranges the original accepts:
// 00:03:… to 00:51:ff:…, 00:54:… to 90:00:ff:… except 33:33:…, and 90:02:…
// to ff:ff:ff:ff:ff:fe.
func macAllowed(mac net.HardwareAddr) bool {
	var b [8]byte
	copy(b[2:], mac)
	v := binary.BigEndian.Uint64(b[:])
	in := func(lo, hi uint64) bool { return v >= lo && v <= hi }
	switch {
	case in(0x000300000000, 0x0051ffffffff):
		return true
	case in(0x005400000000, 0x9000ffffffff):
		return !(mac[0] == 0x33 && mac[1] == 0x33)
	case in(0x900200000000, 0xfffffffffffe):
		return true
	}
	return false
}
