package network

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"sigs.k8s.io/knftables"
)

// PubIPMAC is the MAC address a VM's public interface gets for the public
// IPv4 ip (spec §8: derived from the 4 address bytes).
func PubIPMAC(ip netip.Addr) net.HardwareAddr {
	b := ip.As4()
	return HardwareAddrFromInputBytes(b[:])
}

// pubChain names the per-reservation chain.
func pubChain(res string) string { return "r-" + res }

// SetupPubIPFilter makes sure the public tap of reservation res can only
// speak as ip with PubIPMAC(ip): frames from the tap with another source MAC,
// ARP with another sender address, IPv4 with another source, router
// advertisements and DHCP server replies are dropped on br-pub (spec §8, in
// the bridge family of the host namespace). So a public IP reaches only the
// workload that reserved it. It is idempotent; the filter stays in the
// kernel across agent restarts until RemovePubIPFilter.
func (m *Module) SetupPubIPFilter(ctx context.Context, res string, ip netip.Addr) error {
	if err := CheckPubTapID(res); err != nil {
		return err
	}
	if !ip.Is4() {
		return fmt.Errorf("public ip %s: %w", ip, ErrInvalidAddress)
	}
	mac := PubIPMAC(ip)
	tap := pubTapIface(res)
	chain := pubChain(res)
	return m.inHost(func() error {
		nft, err := knftables.New(knftables.BridgeFamily, nftTable, knftables.EmulateDestroy)
		if err != nil {
			return fmt.Errorf("nftables: %w", err)
		}
		tx := nft.NewTransaction()
		kind, hook, prio := knftables.FilterType, knftables.ForwardHook, knftables.FilterPriority
		tx.Add(&knftables.Table{})
		tx.Add(&knftables.Chain{Name: "forward", Type: &kind, Hook: &hook, Priority: &prio})
		tx.Add(&knftables.Chain{Name: chain})
		tx.Flush(&knftables.Chain{Name: chain})
		for _, r := range []string{
			"ether saddr != " + mac.String() + " counter drop",
			"ether type arp arp saddr ip != " + ip.String() + " counter drop",
			"ether type arp arp saddr ether != " + mac.String() + " counter drop",
			"ether type ip ip saddr != " + ip.String() + " counter drop",
			"icmpv6 type nd-router-advert drop",
			"udp sport { 67, 547 } drop",
		} {
			tx.Add(&knftables.Rule{Chain: chain, Rule: r})
		}
		rules, err := nft.ListRules(ctx, "forward")
		if err != nil && !knftables.IsNotFound(err) {
			return fmt.Errorf("nftables: %w", err)
		}
		for _, r := range rules {
			if r.Comment != nil && *r.Comment == res {
				tx.Delete(&knftables.Rule{Chain: "forward", Handle: r.Handle})
			}
		}
		comment := res
		tx.Add(&knftables.Rule{Chain: "forward", Rule: fmt.Sprintf("iifname %q jump %s", tap, chain), Comment: &comment})
		if err := nft.Run(ctx, tx); err != nil {
			return fmt.Errorf("public ip filter %s: %w", res, err)
		}
		return nil
	})
}

// RemovePubIPFilter removes the filter of reservation res (nil when there
// is none).
func (m *Module) RemovePubIPFilter(ctx context.Context, res string) error {
	if err := CheckPubTapID(res); err != nil {
		return err
	}
	return m.inHost(func() error {
		nft, err := knftables.New(knftables.BridgeFamily, nftTable, knftables.EmulateDestroy)
		if err != nil {
			return fmt.Errorf("nftables: %w", err)
		}
		rules, err := nft.ListRules(ctx, "forward")
		if knftables.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("nftables: %w", err)
		}
		tx := nft.NewTransaction()
		for _, r := range rules {
			if r.Comment != nil && *r.Comment == res {
				tx.Delete(&knftables.Rule{Chain: "forward", Handle: r.Handle})
			}
		}
		tx.Destroy(&knftables.Chain{Name: pubChain(res)})
		if err := nft.Run(ctx, tx); err != nil && !knftables.IsNotFound(err) {
			return fmt.Errorf("public ip filter %s: %w", res, err)
		}
		return nil
	})
}
