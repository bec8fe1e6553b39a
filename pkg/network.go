package pkg

import (
	"context"
	"net"

	"github.com/zos-go/zos/pkg/types"
)

// NetID is the ID of a user network.
type NetID string

// Version of the network workloads kept in cache by networkd.
var (
	NetworkSchemaV1 = types.MustParseVersion("1.0.0")
	NetworkSchemaV2 = types.MustParseVersion("2.0.0")
	// NetworkSchemaLatestVersion network object latest version
	NetworkSchemaLatestVersion = NetworkSchemaV2
)

// Member holds information about the network namespace of a container that
// joined a network.
type Member struct {
	Namespace   string
	IPv6        net.IP
	IPv4        net.IP
	YggdrasilIP net.IP
}

// ContainerNetworkConfig defines how to construct the network namespace of a
// container.
type ContainerNetworkConfig struct {
	// IPs to give the container in the network resource's subnet.
	IPs []string
	// PublicIP6 adds an interface with a public IPv6 (SLAAC).
	PublicIP6 bool
	// YggdrasilIP adds an interface with an address in the node's
	// yggdrasil subnet.
	YggdrasilIP bool
}

// Networker is the interface for the network module.
type Networker interface {
	// Ready returns nil once networkd is ready to operate; other daemons
	// use it to wait for networkd to finish booting.
	Ready() error

	// CreateNR creates (or updates) a network resource and returns the
	// name of its namespace.
	CreateNR(NetResource) (string, error)
	// DeleteNR deletes a network resource.
	DeleteNR(NetResource) error

	// Join creates an isolated namespace for containerID, hooked to the
	// bridge of network networkdID with a veth pair and given the IPs of
	// cfg. containerID must be unique.
	Join(networkdID NetID, containerID string, cfg ContainerNetworkConfig) (join Member, err error)
	// Leave deletes the namespace created by Join.
	Leave(networkdID NetID, containerID string) (err error)

	// ZDBPrepare creates a network namespace with a macvlan interface in
	// it, so a 0-db container is publicly reachable, and returns the
	// namespace name. hw, when set, is the interface's hardware address.
	ZDBPrepare(hw net.HardwareAddr) (string, error)
	// ZDBDestroy undoes ZDBPrepare; ns is the name it returned.
	ZDBDestroy(ns string) error

	// SetupTap creates a tap device hooked to the bridge of networkID and
	// returns its name.
	SetupTap(networkID NetID) (string, error)
	// TapExists checks if the tap device exists already.
	TapExists(networkID NetID) (bool, error)
	// RemoveTap removes the tap device of networkID.
	RemoveTap(networkID NetID) error

	// PublicIPv4Support reports whether this node supports public IPv4
	// reservations.
	PublicIPv4Support() bool
	// SetupPubTap creates a tap device in the host namespace for the public
	// IP reservation, hooked to the public bridge, and returns its name.
	SetupPubTap(PubIPReservationID string) (string, error)
	// PubTapExists checks if the public tap device exists already.
	PubTapExists(PubIPReservationID string) (bool, error)
	// RemovePubTap removes the public tap device from the host namespace.
	RemovePubTap(PubIPReservationID string) error
	// DisconnectPubTap detaches the public tap from the public bridge; the
	// interface itself stays and must be removed later.
	DisconnectPubTap(PubIPReservationID string) error

	// GetSubnet returns the subnet of network networkID on this node.
	GetSubnet(networkID NetID) (net.IPNet, error)
	// GetNet returns the full IP range of the network.
	GetNet(networkID NetID) (net.IPNet, error)
	// GetPublicIPv6Subnet returns the IPv6 prefix of the host's public
	// subnet.
	GetPublicIPv6Subnet() (net.IPNet, error)
	// GetDefaultGwIP returns the IPv4 and IPv6 default gateways inside the
	// network resource of networkID on this node.
	GetDefaultGwIP(networkID NetID) (net.IP, net.IP, error)
	// GetIPv6From4 derives the IPv6 address of an IPv4 address of the
	// network resource.
	GetIPv6From4(networkID NetID, ip net.IP) (net.IPNet, error)

	// Addrs returns the IP addresses of iface, inside netns when netns is
	// not empty.
	Addrs(iface string, netns string) ([]net.IP, error)

	// ZOSAddresses streams the addresses of the zos bridge.
	ZOSAddresses(ctx context.Context) <-chan NetlinkAddresses
	// DMZAddresses streams the addresses of the dmz public interfaces.
	DMZAddresses(ctx context.Context) <-chan NetlinkAddresses
	// YggAddresses streams the addresses of the yggdrasil interface.
	YggAddresses(ctx context.Context) <-chan NetlinkAddresses
	// PublicAddresses streams the addresses of the public interface.
	PublicAddresses(ctx context.Context) <-chan NetlinkAddresses
}

// Network represents the description of a user private network.
type Network struct {
	Name string `json:"name"`
	// NetID is the network's unique id (see NetResource.NetID).
	NetID NetID `json:"net_id"`
	// IPRange of the network, must be an IPv4 /16
	IPRange types.IPNet `json:"ip_range"`

	NetResources []NetResource `json:"net_resources"`
}

// NetResource is the description of a part of a network local to a
// specific node.
type NetResource struct {
	// Name has no JSON tag in the seed, so its key is "Name".
	Name string
	// NetID is the network's unique id.
	NetID NetID `json:"net_id"`
	// NetworkIPRange of the network, must be an IPv4 /16
	NetworkIPRange types.IPNet `json:"ip_range"`

	NodeID string `json:"node_id"`
	// Subnet is the IPv4 subnet of this network resource.
	Subnet types.IPNet `json:"subnet"`

	WGPrivateKey string `json:"wg_private_key"`
	WGPublicKey  string `json:"wg_public_key"`
	WGListenPort uint16 `json:"wg_listen_port"`

	Peers []Peer `json:"peers"`
}

// Peer is the description of a peer of a NetResource.
type Peer struct {
	// Subnet is the IPv4 subnet of the peer's network resource.
	Subnet types.IPNet `json:"subnet"`

	WGPublicKey string        `json:"wg_public_key"`
	AllowedIPs  []types.IPNet `json:"allowed_ips"`
	Endpoint    string        `json:"endpoint"`
}
