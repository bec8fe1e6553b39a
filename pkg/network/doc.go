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
// with taps: the seed's single tap t-<netid> per network, or one tap per VM
// (VMTaps: tv-<hash of net id and VM name>). Inside the NR namespace the macvlan n-<netid> carries the
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
// it restarts on its own. The agent diffs the device's current state against
// the resource and sends only what changed: a restarted agent sends nothing
// to an unchanged device, so its sessions continue (wireguard-go still
// re-handshakes on its own timers; zos-wg --verbose logs them).
//
// # Lifecycle and state
//
// New validates the Config and starts nothing; Run bootstraps the node (zos
// bridge with the configured uplink and static address, br-pub, the public
// namespace, ndmz with its NAT and DHCP client, yggdrasil when configured),
// reconciles, marks the module ready and keeps the ndmz's list of node
// addresses current until its context ends. Teardown removes everything
// (tests and the development grid). Network resources are kept as versioned
// JSON files under Config.StateDir/networks, ndmz leases under
// StateDir/ndmz-lease, userspace device configurations under StateDir/wg
// (0600; they hold the private key), yggdrasil's under StateDir.
//
// # Helper processes
//
// Long-lived helpers run under a Supervisor (zinit on a node;
// ProcessSupervisor in tests and development): wg@<netid> (cmd/zos-wg),
// dhcp-npub4 (udhcpc with the module's own event script, which never touches
// the machine's resolv.conf) and yggdrasil (Debian's, in ndmz).
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
//   - Updates apply peers in place: only new, changed or removed peers are
//     touched, so sessions of the others continue.
//   - Workloads can neither open connections to the ndmz nor reach the
//     node's own addresses (a set in the ndmz ruleset follows the zos
//     bridge's addresses through netlink events).
//   - SetupVMTap, VMTapExists and RemoveVMTap (VMTaps, not in the seed
//     interface) give each VM of a network its own tap, so a node runs any
//     number of VMs per network; a record under StateDir/vmtaps is written
//     before each tap is made, so DeleteNR and the start-up reconcile find
//     every tap a crash may have left.
//   - SetupPubIPFilter (not in the seed interface; the original did it in
//     provisiond) keeps a VM on a public tap to its reserved IP and MAC.
//   - NewAccess builds the WireGuard configuration of a user's machine (the
//     original's access point) as a plain wg-quick / wg setconf file.
package network
