// Package network implements the node's Networker (pkg.Networker): the node
// bootstrap (the zos and br-pub bridges, the public and ndmz namespaces with
// their NAT), user network resources (one namespace per network with its
// bridge, WireGuard device and nftables rules), container and VM attachment,
// 0-db namespaces, public IPv4 taps and the address streams.
//
// # Layout on a node
//
// Every network resource (NR) lives in namespace n-<netid>. Its bridge b-<netid>
// is in the host namespace; containers hang off it with veth pairs and VMs
// with taps t-<netid>. Inside the NR namespace the macvlan n-<netid> carries the
// gateway (<subnet>.1), the WireGuard device w-<netid> carries 100.64.<o2>.<o3>/16
// and a route to the whole network range, and the macvlan "public" on br-ndmz
// leads to the ndmz namespace, which NATs traffic to the internet. Names and
// address derivations follow the original Zero-OS v0.4 node (see
// Convert4to6, HardwareAddrFromInputBytes).
//
// # Simulated nodes
//
// Config.NamePrefix is put in front of every namespace and supervised service
// name, and Config.HostNS names a network namespace that plays the node's host
// namespace. So several nodes run on one machine, each in its own "host"
// namespace, without touching the machine's own interfaces. Link names in the
// host namespace (zos, br-pub, br-ndmz, b-, t-, p-, veth…) are not prefixed:
// they live in HostNS, and the kernel limits them to 15 characters.
//
// # WireGuard
//
// When the kernel has WireGuard, w-<netid> is a kernel device created in the
// host (or public) namespace, so its UDP socket lives there, and moved into the
// NR namespace. Otherwise each device is a userspace wireguard-go device served
// by its own process (cmd/zos-wg, supervised as wg@<netid>), so traffic keeps
// flowing while the agent restarts. Either way the agent configures devices
// with wgctrl; the userspace process also re-reads its configuration file when
// it restarts on its own.
//
// # Beyond the original
//
//   - Every field of a network resource is checked before anything is made
//     (keys, subnets inside the range, peer overlaps, endpoints, name lengths,
//     listen port), with typed errors (errors.Is against the ErrXxx values).
//   - Creation is undone step by step on failure; deletion removes the
//     namespace, bridge, device process, configuration, lease and file.
//   - At start the agent reconciles: network resources in its store are
//     re-applied (idempotently), and namespaces, bridges and WireGuard
//     processes of this node that no stored resource owns are removed.
//   - Each namespace uses a single nftables table ("inet zos") that is replaced
//     atomically, instead of flushing the whole ruleset.
package network
