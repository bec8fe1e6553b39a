package network

import (
	"errors"
	"fmt"

	"github.com/containerd/errdefs"
)

// Errors of the network module. Validation errors of a network resource are
// *pkg.FieldError values naming the field, whose reason wraps one of the
// ErrInvalidXxx sentinels below; each of those wraps ErrInvalidNetResource.
var (
	// ErrInvalidNetResource is wrapped by every validation error of a
	// network resource, Join config, tap or reservation id.
	ErrInvalidNetResource = errors.New("invalid network resource")
	// ErrInvalidKey: a WireGuard key that is not base64 of 32 bytes, a
	// private key that cannot be decrypted, or a public key that does not
	// match the private key.
	ErrInvalidKey = fmt.Errorf("invalid wireguard key: %w", ErrInvalidNetResource)
	// ErrInvalidSubnet: a subnet or range of the wrong family or size.
	ErrInvalidSubnet = fmt.Errorf("invalid subnet: %w", ErrInvalidNetResource)
	// ErrSubnetOutsideRange: a subnet outside the network's IP range.
	ErrSubnetOutsideRange = fmt.Errorf("subnet outside the network range: %w", ErrInvalidNetResource)
	// ErrSubnetOverlap: two subnets (or allowed IPs of two peers) overlap.
	ErrSubnetOverlap = fmt.Errorf("overlapping subnets: %w", ErrInvalidNetResource)
	// ErrInvalidEndpoint: a peer endpoint that is not ip:port.
	ErrInvalidEndpoint = fmt.Errorf("invalid endpoint: %w", ErrInvalidNetResource)
	// ErrNameTooLong: a derived interface name over 15 characters.
	ErrNameTooLong = fmt.Errorf("name too long: %w", ErrInvalidNetResource)
	// ErrInvalidName: a net id, container id or reservation id with
	// characters that cannot be part of an interface or namespace name.
	ErrInvalidName = fmt.Errorf("invalid name: %w", ErrInvalidNetResource)
	// ErrDuplicatePeer: two peers with the same public key.
	ErrDuplicatePeer = fmt.Errorf("duplicate peer: %w", ErrInvalidNetResource)
	// ErrNetIDConflict: a net id already used on this node by a network
	// resource of another network (other name or IP range).
	ErrNetIDConflict = fmt.Errorf("net id used by another network: %w", ErrInvalidNetResource)
	// ErrInvalidPort: a listen port that is reserved.
	ErrInvalidPort = fmt.Errorf("invalid listen port: %w", ErrInvalidNetResource)

	// ErrPortInUse: another network resource listens on the port.
	ErrPortInUse = errors.New("wireguard listen port already in use")
	// ErrUnknownNetwork: no network resource with that net id on this node.
	ErrUnknownNetwork = errors.New("unknown network resource")
	// ErrExists: the tap or namespace to create exists already.
	ErrExists = errors.New("already exists")
	// ErrNotReady: the module has not finished starting (or has stopped).
	ErrNotReady = fmt.Errorf("network module not ready: %w", errdefs.ErrUnavailable)
	// ErrIPv4Only: public IPv6 asked for on a node without public IPv6.
	ErrIPv4Only = errors.New("node has no public ipv6")
	// ErrNoPublicIPv6: the node has no public IPv6 subnet.
	ErrNoPublicIPv6 = errors.New("no public ipv6 subnet")
)

// ErrInvalidAddress: a Join address that is not an IPv4 of the resource's
// subnet (or is its gateway), or a bad hardware address.
var ErrInvalidAddress = fmt.Errorf("invalid address: %w", ErrInvalidNetResource)

// ErrUnknownInterface: Addrs of an interface (or namespace) that does not exist.
var ErrUnknownInterface = errors.New("unknown interface")
