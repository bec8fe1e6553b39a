package network

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// WireGuard modes of Config.WireGuard.
const (
	// WGAuto uses the kernel's WireGuard when it has it, userspace otherwise.
	WGAuto = "auto"
	// WGKernel requires the kernel's WireGuard.
	WGKernel = "kernel"
	// WGUserspace always runs wireguard-go devices in supervised processes.
	WGUserspace = "userspace"
)

// Fixed interface names and sizes of the node layout (spec §2, §4).
const (
	ndmzBridgeIface = "tonrs"
	npub4Iface      = "npub4"
	npub6Iface      = "npub6"
	nrPublicIface   = "public"
	publicIface     = "public"
	yggIface        = "ygg0"
	zdbIface        = "zdb0"
	containerIface  = "eth0"
	wgMTU           = 1420
	bridgeMTU       = 1500
	maxIfaceLen     = 15
	wgKeepalive     = 20 * time.Second
)

// PublicConfig is the farmer's public configuration of a node: a dedicated
// public namespace with static addresses.
type PublicConfig struct {
	// Master is the NIC (in the host namespace) to enslave to br-pub; empty
	// joins br-pub to the zos bridge with the veth pair tozos.
	Master string
	// IPv4 and GW4 are the static public IPv4 address and its gateway.
	IPv4 netip.Prefix
	GW4  netip.Addr
	// IPv6 and GW6 are the static public IPv6 address and its gateway
	// (optional).
	IPv6 netip.Prefix
	GW6  netip.Addr
}

// Config configures the network module of one node.
type Config struct {
	// NodeID is the node's identity (public key text); MACs derive from it.
	NodeID string
	// NamePrefix is put in front of every network namespace and supervised
	// service name of this node. Empty on a real node; tests and the
	// development grid set it so several nodes share one machine.
	NamePrefix string
	// HostNS is the named network namespace that plays this node's host
	// namespace; empty means the namespace this process runs in.
	HostNS string
	// StateDir keeps the network resource files, ndmz leases and WireGuard
	// device configurations (spec: /var/run/cache/networkd).
	StateDir string

	// ZOSBridge, PublicBridge and NDMZBridge name the node's bridges in the
	// host namespace.
	ZOSBridge    string
	PublicBridge string
	NDMZBridge   string
	// Uplink is the NIC (in HostNS) to enslave to the zos bridge; empty when
	// the bridge already has its port (made by the boot daemon).
	Uplink string
	// ZOSAddress and ZOSGateway give the zos bridge a static IPv4 and default
	// route. When ZOSAddress is not set and DHCP is on, a supervised udhcpc
	// (service dhcp-zos) configures the bridge.
	ZOSAddress netip.Prefix
	ZOSGateway netip.Addr
	// NDMZ4Address and NDMZ4Gateway give npub4 (in ndmz) a static IPv4 and
	// default route. When NDMZ4Address is not set and DHCP is on, a
	// supervised udhcpc (service dhcp-npub4) runs in ndmz.
	NDMZ4Address netip.Prefix
	NDMZ4Gateway netip.Addr
	// DHCP enables the udhcpc services when no static address is given.
	DHCP bool
	// DHCPCommand is the DHCP client (udhcpc compatible).
	DHCPCommand string
	// Public is the farmer's public configuration; nil when there is none.
	Public *PublicConfig
	// Yggdrasil enables the yggdrasil overlay; nil disables it.
	Yggdrasil *YggdrasilConfig

	// WireGuard selects the WireGuard implementation: WGAuto, WGKernel or
	// WGUserspace.
	WireGuard string
	// WGCommand is the program (and leading arguments) that serves one
	// userspace WireGuard device (cmd/zos-wg).
	WGCommand []string
	// ReservedPorts are UDP ports no network resource may listen on.
	ReservedPorts []uint16

	// OpTimeout bounds each seed method call.
	OpTimeout time.Duration
	// FastInterval is the period of the ZOSAddresses stream, SlowInterval of
	// the other address streams.
	FastInterval time.Duration
	SlowInterval time.Duration
}

// DefaultConfig returns the configuration of a real node: no prefix, the
// process's own namespace as host, the original's state directory.
func DefaultConfig() Config {
	return Config{
		StateDir:      "/var/run/cache/networkd",
		ZOSBridge:     "zos",
		PublicBridge:  "br-pub",
		NDMZBridge:    "br-ndmz",
		DHCP:          true,
		DHCPCommand:   "/sbin/udhcpc",
		WireGuard:     WGAuto,
		WGCommand:     []string{"zos-wg"},
		ReservedPorts: []uint16{9943, 9944, 9945},
		OpTimeout:     2 * time.Minute,
		FastInterval:  2 * time.Second,
		SlowInterval:  30 * time.Second,
	}
}

// ErrInvalidConfig is wrapped by every Config.Validate error.
var ErrInvalidConfig = errors.New("invalid network config")

// Validate checks the configuration.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("network config: %s: %w", fmt.Sprintf(format, a...), ErrInvalidConfig)
	}
	if c.NodeID == "" {
		return bad("NodeID is required")
	}
	if c.StateDir == "" {
		return bad("StateDir is required")
	}
	for _, n := range []struct{ field, name string }{
		{"ZOSBridge", c.ZOSBridge}, {"PublicBridge", c.PublicBridge}, {"NDMZBridge", c.NDMZBridge},
	} {
		if n.name == "" || len(n.name) > maxIfaceLen {
			return bad("%s %q must be 1 to %d characters", n.field, n.name, maxIfaceLen)
		}
	}
	if len(c.NamePrefix) > 32 {
		return bad("NamePrefix longer than 32 characters")
	}
	for _, r := range c.NamePrefix {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return bad("NamePrefix %q: only letters, digits, - and _", c.NamePrefix)
		}
	}
	switch c.WireGuard {
	case WGAuto, WGKernel, WGUserspace:
	default:
		return bad("WireGuard %q: want %s, %s or %s", c.WireGuard, WGAuto, WGKernel, WGUserspace)
	}
	if c.WireGuard != WGKernel && len(c.WGCommand) == 0 {
		return bad("WGCommand is required for userspace WireGuard")
	}
	if c.ZOSAddress.IsValid() && !c.ZOSAddress.Addr().Is4() {
		return bad("ZOSAddress must be IPv4")
	}
	if c.NDMZ4Address.IsValid() && !c.NDMZ4Address.Addr().Is4() {
		return bad("NDMZ4Address must be IPv4")
	}
	if c.DHCP && c.DHCPCommand == "" {
		return bad("DHCPCommand is required with DHCP")
	}
	if p := c.Public; p != nil {
		if !p.IPv4.IsValid() || !p.IPv4.Addr().Is4() || !p.GW4.Is4() {
			return bad("Public needs an IPv4 address and gateway")
		}
		if p.IPv6.IsValid() && (!p.IPv6.Addr().Is6() || !p.GW6.Is6()) {
			return bad("Public IPv6 needs an IPv6 address and gateway")
		}
	}
	if y := c.Yggdrasil; y != nil && (y.Command == "" || len(y.PrivateKey) != 64) {
		return bad("Yggdrasil needs a command and an ed25519 private key")
	}
	if c.OpTimeout <= 0 || c.FastInterval <= 0 || c.SlowInterval <= 0 {
		return bad("OpTimeout, FastInterval and SlowInterval must be positive")
	}
	return nil
}

// names gives the global names of this node's objects.
type names struct{ prefix string }

func (n names) nrNS(id string) string         { return n.prefix + "n-" + id }
func (n names) ndmzNS() string                { return n.prefix + "ndmz" }
func (n names) publicNS() string              { return n.prefix + "public" }
func (n names) zdbNSPrefix() string           { return n.prefix + "zdb-ns-" }
func (n names) containerNS(id string) string  { return n.prefix + id }
func (n names) wgService(id string) string    { return n.prefix + "wg@" + id }
func (n names) wgUAPIName(id string) string   { return n.prefix + "w-" + id }
func (n names) dhcpService(dev string) string { return n.prefix + "dhcp-" + dev }
func (n names) yggService() string            { return n.prefix + "yggdrasil" }

func nrIface(id string) string      { return "n-" + id }
func nrBridge(id string) string     { return "b-" + id }
func wgIface(id string) string      { return "w-" + id }
func tapIface(id string) string     { return "t-" + id }
func pubTapIface(res string) string { return "p-" + res }
