package network

import (
	"context"
	"fmt"

	"sigs.k8s.io/knftables"
)

// nftTable is the one table the module owns in each of its namespaces; it is
// replaced as a whole (flush and refill in one transaction), so rules are
// never half applied and other tables are left alone.
const nftTable = "zos"

// nftRuleset is the desired content of the table: base chains and their
// rules.
type nftRuleset struct {
	chains []nftChain
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

// ndmzRuleset is the ruleset of the ndmz namespace (spec §4.2), plus one
// rule of ours: network resources (behind tonrs) may ping the ndmz but open
// no connection to it, so no workload reaches a service of the node.
func ndmzRuleset() nftRuleset {
	return nftRuleset{chains: []nftChain{
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
			rules: []string{
				"ct state established,related accept",
				"ct state invalid drop",
				`iifname { "npub6", "npub4" } counter drop`,
			}},
	}}
}

// transaction fills tx with the commands that replace the table by rs.
func (rs nftRuleset) transaction(tx *knftables.Transaction) {
	tx.Add(&knftables.Table{})
	tx.Flush(&knftables.Table{})
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
