package primitives

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"sigs.k8s.io/knftables"

	"github.com/zos-go/zos/internal/netns"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/network"
	"github.com/zos-go/zos/pkg/provision"
)

// ErrNoPublicIPv4 is returned for a public_ip workload on a node that
// cannot route public IPv4 to VMs (Networker.PublicIPv4Support is false).
var ErrNoPublicIPv4 = errors.New("node has no public IPv4 support")

// PubIPFilter installs and removes the anti-spoofing filter of a public IP:
// what a VM sends through the tap of the public IP may only carry that IP
// and its MAC. Both methods are idempotent.
type PubIPFilter interface {
	Apply(ctx context.Context, r PubIPRules) error
	// Remove removes the filter of the public IP workload name; nil when
	// there is none.
	Remove(ctx context.Context, name string) error
}

// PubIPRules describes the filter of one public IP.
type PubIPRules struct {
	// Name is the working name of the public_ip workload; the VM's tap is
	// p-<Name> (Networker.SetupPubTap(Name)).
	Name string
	IP   netip.Addr
	MAC  net.HardwareAddr
	// IPv6 is the SLAAC address the VM gets in the node's public IPv6
	// prefix; invalid when the node has none.
	IPv6 netip.Addr
}

// Tap is the name of the public tap of r.
func (r PubIPRules) Tap() string { return "p-" + r.Name }

// PublicIPMAC is the MAC of the public interface of a VM holding ip, as the
// original derived it (from the 4 bytes of the address). The VM's NIC must
// use it: the filter drops any other.
func PublicIPMAC(ip netip.Addr) net.HardwareAddr {
	b := ip.Unmap().As4()
	return network.HardwareAddrFromInputBytes(b[:])
}

// eui64 is the address of mac in prefix by SLAAC's EUI-64.
func eui64(prefix netip.Prefix, mac net.HardwareAddr) netip.Addr {
	a := prefix.Masked().Addr().As16()
	a[8], a[9], a[10] = mac[0]^0x02, mac[1], mac[2]
	a[11], a[12] = 0xff, 0xfe
	a[13], a[14], a[15] = mac[3], mac[4], mac[5]
	return netip.AddrFrom16(a)
}

// PublicIP provisions public_ip workloads: one of the farm's IPv4
// addresses for a VM. The tap is the VM's (its provisioner creates it with
// SetupPubTap and removes it with RemovePubTap); this provisioner installs
// the filter that pins the tap to the IP and its MAC, and on decommission
// detaches the tap from the public bridge and removes the filter.
type PublicIP struct {
	Networker pkg.Networker
	Filter    PubIPFilter
}

var _ provision.Provisioner = PublicIP{}

// Rules returns the filter of the public IP workload name holding ip.
func (p PublicIP) Rules(name string, ip netip.Addr) PubIPRules {
	r := PubIPRules{Name: name, IP: ip.Unmap(), MAC: PublicIPMAC(ip)}
	if sub, err := p.Networker.GetPublicIPv6Subnet(); err == nil {
		if pfx, ok := netip.AddrFromSlice(sub.IP); ok && pfx.Unmap().Is6() && !pfx.Unmap().Is4In6() {
			r.IPv6 = eui64(netip.PrefixFrom(pfx.Unmap(), 64), r.MAC)
		}
	}
	return r
}

// Provision implements provision.Provisioner.
func (p PublicIP) Provision(ctx context.Context, d *provision.Deployment) (any, error) {
	w, ok := d.Workload.(*gridtypes.PublicIP)
	if !ok {
		return nil, fmt.Errorf("public_ip %s: workload is a %T", d.Name, d.Workload)
	}
	pfx, err := netip.ParsePrefix(w.IPAddress)
	if err != nil || !pfx.Addr().Is4() {
		return nil, fmt.Errorf("ipaddress: %q is not an IPv4 address with its prefix", w.IPAddress)
	}
	if !p.Networker.PublicIPv4Support() {
		return nil, fmt.Errorf("ipaddress %s: %w", w.IPAddress, ErrNoPublicIPv4)
	}
	if err := network.CheckPubTapID(d.Name); err != nil {
		return nil, fmt.Errorf("public_ip %s: %w", d.Name, err)
	}
	if err := p.Filter.Apply(ctx, p.Rules(d.Name, pfx.Addr())); err != nil {
		return nil, fmt.Errorf("public_ip %s: filter: %w: %w", d.Name, provision.ErrTemporary, err)
	}
	return gridtypes.PublicIPResult{ID: d.Name, IP: pfx.String()}, nil
}

// Decommission implements provision.Provisioner: the VM's tap, if any, is
// detached first, then the filter removed.
func (p PublicIP) Decommission(ctx context.Context, d *provision.Deployment) error {
	if network.CheckPubTapID(d.Name) != nil {
		return nil // never provisioned
	}
	exists, err := p.Networker.PubTapExists(d.Name)
	if err != nil {
		return fmt.Errorf("public_ip %s: %w: %w", d.Name, provision.ErrTemporary, err)
	}
	if exists {
		if err := p.Networker.DisconnectPubTap(d.Name); err != nil && !notFound(err) {
			return fmt.Errorf("public_ip %s: disconnect tap: %w: %w", d.Name, provision.ErrTemporary, err)
		}
	}
	if err := p.Filter.Remove(ctx, d.Name); err != nil {
		return fmt.Errorf("public_ip %s: filter: %w: %w", d.Name, provision.ErrTemporary, err)
	}
	return nil
}

// NFTFilter is the PubIPFilter of a node: one nftables table of the bridge
// family per public IP, "r-<name>", in the namespace where br-pub lives.
// Its base chains hook bridge forward and input and send what comes in
// through the tap to a check chain that drops frames of another MAC or
// ether type, ARP of another sender, IPv4 of another source, IPv6 of
// another source than the predicted SLAAC, link-local or unspecified
// address, router advertisements and DHCP/DHCPv6 server replies.
//
// The original put chains r-<name> into shared "arp filter" and "bridge
// filter" tables; a table per IP is replaced or deleted atomically without
// touching any other, and filtering bridged ARP in the bridge family also
// catches ARP that is forwarded to other hosts (the arp family only sees
// ARP for the node itself).
type NFTFilter struct {
	// NetNS is the named network namespace of br-pub (network.Config.HostNS);
	// empty: this process's namespace.
	NetNS string
}

var _ PubIPFilter = NFTFilter{}

// pubIPTable is the nftables table of the public IP workload name.
func pubIPTable(name string) string { return "r-" + name }

// transaction fills tx with the commands that replace the filter of r.
func (r PubIPRules) transaction(tx *knftables.Transaction) {
	tx.Add(&knftables.Table{})
	tx.Flush(&knftables.Table{})
	tx.Add(&knftables.Chain{Name: "check"})
	typ, prio := knftables.FilterType, knftables.FilterPriority
	for _, hook := range []knftables.BaseChainHook{knftables.ForwardHook, knftables.InputHook} {
		tx.Add(&knftables.Chain{Name: string(hook), Type: &typ, Hook: &hook, Priority: &prio})
		tx.Add(&knftables.Rule{Chain: string(hook), Rule: knftables.Concat("iifname", `"`+r.Tap()+`"`, "jump check")})
	}
	mac := r.MAC.String()
	v6 := "::, fe80::/64"
	if r.IPv6.IsValid() {
		v6 += ", " + r.IPv6.String()
	}
	for _, rule := range []string{
		"ether type != { arp, ip, ip6 } counter drop",
		"ether saddr != " + mac + " counter drop",
		"arp saddr ether != " + mac + " counter drop",
		"arp saddr ip != { 0.0.0.0, " + r.IP.String() + " } counter drop",
		"ip saddr != " + r.IP.String() + " counter drop",
		"ip protocol udp udp sport 67 counter drop",
		"meta l4proto udp udp sport 547 counter drop",
		"icmpv6 type nd-router-advert counter drop",
		"ip6 saddr != { " + v6 + " } counter drop",
	} {
		tx.Add(&knftables.Rule{Chain: "check", Rule: rule})
	}
}

// Apply implements PubIPFilter: the table is replaced in one transaction.
func (f NFTFilter) Apply(ctx context.Context, r PubIPRules) error {
	if !r.IP.Is4() || len(r.MAC) != 6 {
		return fmt.Errorf("filter %s: ip %s mac %s: %w", r.Name, r.IP, r.MAC, network.ErrInvalidAddress)
	}
	return netns.Do(f.NetNS, func() error {
		nft, err := knftables.New(knftables.BridgeFamily, pubIPTable(r.Name))
		if err != nil {
			return fmt.Errorf("nftables: %w", err)
		}
		tx := nft.NewTransaction()
		r.transaction(tx)
		if err := nft.Run(ctx, tx); err != nil {
			return fmt.Errorf("nftables table bridge %s: %w", pubIPTable(r.Name), err)
		}
		return nil
	})
}

// Remove implements PubIPFilter.
func (f NFTFilter) Remove(ctx context.Context, name string) error {
	return netns.Do(f.NetNS, func() error {
		nft, err := knftables.New(knftables.BridgeFamily, pubIPTable(name), knftables.EmulateDestroy)
		if err != nil {
			return fmt.Errorf("nftables: %w", err)
		}
		tx := nft.NewTransaction()
		tx.Destroy(&knftables.Table{})
		if err := nft.Run(ctx, tx); err != nil {
			return fmt.Errorf("nftables table bridge %s: %w", pubIPTable(name), err)
		}
		return nil
	})
}
