package network

import (
	"context"
	"fmt"
	"net/netip"

	"sigs.k8s.io/knftables"
)

// nftTable is the one table the module owns in each of its namespaces; it is
// replaced as a whole (flush and refill in one transaction), so rules are
// never half applied and other tables are left alone.
const nftTable = "zos"

// nftRuleset is the desired content of the table: base chains and their
// rules.
type nftRuleset struct {
	sets   []nftSet
	chains []nftChain
}

type nftSet struct {
	name, typ string
	elems     []string
}

type nftChain struct {
	name     string
	kind     knftables.BaseChainType
	hook     knftables.BaseChainHook
	priority knftables.BaseChainPriority
	rules    []string
}

// nrRuleset is the ruleset of a network resource namespace (spec §5): NAT
// out of "public", nothing may start inbound from the ndmz side.
func nrRuleset() nftRuleset {
	return nftRuleset{chains: []nftChain{
		{name: "postrouting", kind: knftables.NATType, hook: knftables.PostroutingHook, priority: knftables.SNATPriority,
			rules: []string{`oifname "public" masquerade fully-random`}},
		{name: "input", kind: knftables.FilterType, hook: knftables.InputHook, priority: knftables.FilterPriority,
			rules: []string{
				"ct state established,related accept",
				"ct state invalid drop",
				"meta l4proto ipv6-icmp accept",
				`iifname "public" counter drop`,
			}},
		{name: "forward", kind: knftables.FilterType, hook: knftables.ForwardHook, priority: knftables.FilterPriority,
			rules: []string{
				"ct state established,related accept",
				"ct state invalid drop",
				`iifname "public" counter drop`,
			}},
	}}
}

// ndmzRuleset is the ruleset of the ndmz namespace (spec §4.2), plus rules
// of ours: network resources (behind tonrs) may ping the ndmz but open no
// connection to it, and may not reach the node's own addresses (nodeAddrs:
// the zos bridge's and the public namespace's), so no workload reaches a
// service of the node.
//
// With yggdrasil (ygg valid: the node's yggdrasil /64), the ndmz forwards
// what hosts of that subnet on the public segment (containers and 0-db
// namespaces) send into the overlay.
func ndmzRuleset(nodeAddrs []netip.Addr, ygg netip.Prefix) nftRuleset {
	var v4, v6 []string
	for _, a := range nodeAddrs {
		if a.Is4() {
			v4 = append(v4, a.String())
		} else {
			v6 = append(v6, a.String())
		}
	}
	fwd := []string{
		"ct state established,related accept",
		"ct state invalid drop",
	}
	if ygg.IsValid() {
		fwd = append(fwd, fmt.Sprintf(`iifname "npub6" oifname "ygg0" ip6 saddr %s accept`, ygg))
	}
	fwd = append(fwd,
		`iifname { "npub6", "npub4" } counter drop`,
		`iifname "tonrs" ip daddr @node4 counter drop`,
		`iifname "tonrs" ip6 daddr @node6 counter drop`,
	)
	return nftRuleset{sets: []nftSet{{"node4", "ipv4_addr", v4}, {"node6", "ipv6_addr", v6}}, chains: []nftChain{
		{name: "postrouting", kind: knftables.NATType, hook: knftables.PostroutingHook, priority: knftables.SNATPriority,
			rules: []string{
				"ip6 saddr 200::/7 accept",
				`oifname "npub4" masquerade fully-random`,
				`oifname "npub6" masquerade fully-random`,
			}},
		{name: "input", kind: knftables.FilterType, hook: knftables.InputHook, priority: knftables.FilterPriority,
			rules: []string{
				"ct state established,related accept",
				"ct state invalid drop",
				"ip6 daddr ff02::/64 accept",
				`iifname "tonrs" meta l4proto { icmp, ipv6-icmp } accept`,
				`iifname "tonrs" counter drop`,
				"tcp dport { 9943, 9944, 9945 } accept",
				"meta l4proto ipv6-icmp accept",
				`iifname { "npub6", "npub4" } counter drop`,
			}},
		{name: "forward", kind: knftables.FilterType, hook: knftables.ForwardHook, priority: knftables.FilterPriority,
			rules: fwd},
	}}
}

// transaction fills tx with the commands that replace the table by rs.
func (rs nftRuleset) transaction(tx *knftables.Transaction) {
	tx.Add(&knftables.Table{})
	tx.Flush(&knftables.Table{})
	for _, st := range rs.sets {
		tx.Add(&knftables.Set{Name: st.name, Type: st.typ})
		tx.Flush(&knftables.Set{Name: st.name, Type: st.typ})
		for _, e := range st.elems {
			tx.Add(&knftables.Element{Set: st.name, Key: []string{e}})
		}
	}
	for _, c := range rs.chains {
		kind, hook, prio := c.kind, c.hook, c.priority
		tx.Add(&knftables.Chain{Name: c.name, Type: &kind, Hook: &hook, Priority: &prio})
		for _, r := range c.rules {
			tx.Add(&knftables.Rule{Chain: c.name, Rule: r})
		}
	}
}

// apply replaces the table in the namespace of the calling thread (callers
// wrap it in netns.Do; knftables runs nft, which inherits the namespace).
func (rs nftRuleset) apply(ctx context.Context) error {
	nft, err := knftables.New(knftables.InetFamily, nftTable)
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	tx := nft.NewTransaction()
	rs.transaction(tx)
	if err := nft.Run(ctx, tx); err != nil {
		return fmt.Errorf("nftables table %s: %w", nftTable, err)
	}
	return nil
}
