package network

import (
	"fmt"
	"net/netip"
	"strings"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/types"
)

// AccessKeepalive is the persistent keepalive of a user's access peer, so
// that a machine behind NAT stays reachable.
const AccessKeepalive = 25

// Access is a WireGuard configuration that lets a user's machine join a
// network as a peer of one network resource (the original's "access
// point"). Add Peer to that resource's peers (CreateNR), then give Config to
// the user: it is a plain wg-quick file (WGQuick) or, for `wg setconf`, the
// same without the interface addresses (WG).
type Access struct {
	// Peer is the entry to add to the network resource's peers.
	Peer pkg.Peer
	// Addresses are the user machine's interface addresses: the first
	// host of its subnet and its 100.64 WireGuard address.
	Addresses []netip.Prefix
	// Routes are the prefixes the user reaches through the tunnel: the
	// network range and 100.64.0.0/16.
	Routes     []netip.Prefix
	privateKey wgtypes.Key
	nodeKey    string
	endpoint   string
}

// NewAccess builds the access configuration for a user machine with private
// key userKey and subnet (an IPv4 /24 of the network range not used by a
// resource) that connects to the resource nr of a node reachable at
// endpoint (ip:port of the node's WireGuard socket for nr).
func NewAccess(nr pkg.NetResource, endpoint string, userKey wgtypes.Key, subnet netip.Prefix) (Access, error) {
	rng, ok := prefixOf(nr.NetworkIPRange.IPNet)
	if !ok || !rng.Addr().Is4() || rng.Bits() != 16 {
		return Access{}, fmt.Errorf("access: network range %s: %w", nr.NetworkIPRange, ErrInvalidSubnet)
	}
	subnet = subnet.Masked()
	if !subnet.Addr().Is4() || subnet.Bits() != 24 {
		return Access{}, fmt.Errorf("access: subnet %s is not an IPv4 /24: %w", subnet, ErrInvalidSubnet)
	}
	if !inside(subnet, rng) {
		return Access{}, fmt.Errorf("access: subnet %s not in %s: %w", subnet, rng, ErrSubnetOutsideRange)
	}
	if own, ok := prefixOf(nr.Subnet.IPNet); ok && own.Overlaps(subnet) {
		return Access{}, fmt.Errorf("access: subnet %s is the resource's: %w", subnet, ErrSubnetOverlap)
	}
	if _, err := parseEndpoint(endpoint); err != nil {
		return Access{}, fmt.Errorf("access: %w", err)
	}
	if _, err := wgtypes.ParseKey(nr.WGPublicKey); err != nil {
		return Access{}, fmt.Errorf("access: resource key: %w", ErrInvalidKey)
	}
	wg := wgAddrOf(ipNetOf(subnet))
	wg32 := netip.PrefixFrom(wg.Addr(), 32)
	host := subnet.Addr().Next()
	return Access{
		Peer: pkg.Peer{
			Subnet:      types.NewIPNet(ipNetOf(subnet)),
			WGPublicKey: userKey.PublicKey().String(),
			AllowedIPs:  []types.IPNet{types.NewIPNet(ipNetOf(subnet)), types.NewIPNet(ipNetOf(wg32))},
		},
		Addresses:  []netip.Prefix{netip.PrefixFrom(host, 24), wg32},
		Routes:     []netip.Prefix{rng, netip.MustParsePrefix("100.64.0.0/16")},
		privateKey: userKey,
		nodeKey:    nr.WGPublicKey,
		endpoint:   endpoint,
	}, nil
}

// WG returns the configuration in `wg setconf` form (no addresses).
func (a Access) WG() string {
	var routes []string
	for _, r := range a.Routes {
		routes = append(routes, r.String())
	}
	return fmt.Sprintf("[Interface]\nPrivateKey = %s\n\n[Peer]\nPublicKey = %s\nAllowedIPs = %s\nEndpoint = %s\nPersistentKeepalive = %d\n",
		a.privateKey, a.nodeKey, strings.Join(routes, ", "), a.endpoint, AccessKeepalive)
}

// WGQuick returns the configuration as a wg-quick file (with Address).
func (a Access) WGQuick() string {
	var addrs []string
	for _, p := range a.Addresses {
		addrs = append(addrs, p.String())
	}
	return strings.Replace(a.WG(), "[Interface]\n", "[Interface]\nAddress = "+strings.Join(addrs, ", ")+"\n", 1)
}
