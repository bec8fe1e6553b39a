package vm

import (
	"net"
	"strconv"
	"strings"

	"github.com/zos-go/zos/pkg"
)

// KernelArgs returns the kernel command line of v: its KernelArgs (or
// DefaultKernelArgs when empty), then, when a disk is the root device,
// "root=/dev/vda rw|ro" (it is attached first, as Firecracker did), then the
// network arguments (NetworkArgs).
func KernelArgs(v pkg.VM) string {
	args := v.KernelArgs
	if strings.TrimSpace(args) == "" {
		args = DefaultKernelArgs
	}
	for _, d := range v.Disks {
		if d.Root {
			mode := "rw"
			if d.ReadOnly {
				mode = "ro"
			}
			args += " root=/dev/vda " + mode
			break
		}
	}
	if n := NetworkArgs(v.Network); n != "" {
		args += " " + n
	}
	return args
}

// NetworkArgs returns the kernel arguments that hand the network
// configuration to the guest (spec §2.3).
//
// Old style (NewStyle false): only the first interface, as the kernel's
// "ip=" autoconfiguration: ip=<ip4>::<gw4>:<netmask>:::off:<dns0>:<dns1>:
//
// New style: one "net_eth<i>=<ip4 cidr>,<gw4>[,<ip4 net>],<ip6 cidr>,<gw6>,
// <public|priv>" per interface, where the two IPv6 fields become the word
// "slaac" when the interface has no IPv6 address, then
// "net_dns=<ns1>,<ns2>,…". An init script in the guest reads them.
func NetworkArgs(n pkg.VMNetworkInfo) string {
	if len(n.Ifaces) == 0 {
		return ""
	}
	dns := make([]string, 0, len(n.Nameservers))
	for _, ip := range n.Nameservers {
		if ip != nil {
			dns = append(dns, ip.String())
		}
	}
	if !n.NewStyle {
		nic := n.Ifaces[0]
		if !ipNetSet(nic.IP4AddressCIDR) {
			return ""
		}
		var d0, d1 string
		if len(dns) > 0 {
			d0 = dns[0]
		}
		if len(dns) > 1 {
			d1 = dns[1]
		}
		return "ip=" + nic.IP4AddressCIDR.IP.String() + "::" + ipString(nic.IP4GatewayIP) + ":" +
			net.IP(nic.IP4AddressCIDR.Mask).String() + ":::off:" + d0 + ":" + d1 + ":"
	}
	var parts []string
	for i, nic := range n.Ifaces {
		f := []string{netString(nic.IP4AddressCIDR), ipString(nic.IP4GatewayIP)}
		if ipNetSet(nic.IP4Net) {
			f = append(f, nic.IP4Net.String())
		}
		if ipNetSet(nic.IP6AddressCIDR) {
			f = append(f, nic.IP6AddressCIDR.String(), ipString(nic.IP6GatewayIP))
		} else {
			f = append(f, "slaac")
		}
		if nic.Public {
			f = append(f, "public")
		} else {
			f = append(f, "priv")
		}
		parts = append(parts, "net_eth"+strconv.Itoa(i)+"="+strings.Join(f, ","))
	}
	if len(dns) > 0 {
		parts = append(parts, "net_dns="+strings.Join(dns, ","))
	}
	return strings.Join(parts, " ")
}

func ipNetSet(n net.IPNet) bool { return len(n.IP) > 0 && len(n.Mask) > 0 }

func netString(n net.IPNet) string {
	if !ipNetSet(n) {
		return ""
	}
	return n.String()
}

func ipString(ip net.IP) string {
	if ip == nil {
		return ""
	}
	return ip.String()
}
