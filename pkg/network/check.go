package network

import (
	"encoding/hex"
	"fmt"
	"net"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/zos-go/zos/pkg"
)

// CheckJoin checks the addresses of a Join against the resource: each must
// be an IPv4 of the resource's subnet other than its network, gateway (.1)
// and broadcast addresses, and there must be at least one. It also checks
// the container id (a namespace name: letters, digits, - and _, at most 64
// characters). It returns the parsed addresses.
func CheckJoin(nr pkg.NetResource, containerID string, cfg pkg.ContainerNetworkConfig) ([]net.IP, error) {
	if err := checkResID(containerID, 64); err != nil {
		return nil, fmt.Errorf("container %q: %w", containerID, err)
	}
	if len(cfg.IPs) == 0 {
		return nil, fmt.Errorf("container %s: no ip: %w", containerID, ErrInvalidAddress)
	}
	sub, _ := prefixOf(nr.Subnet.IPNet)
	gw := gatewayOf(nr.Subnet.IPNet)
	var ips []net.IP
	for _, s := range cfg.IPs {
		ip := net.ParseIP(s).To4()
		if ip == nil {
			return nil, fmt.Errorf("container %s: %q is not ipv4: %w", containerID, s, ErrInvalidAddress)
		}
		p, _ := prefixOf(net.IPNet{IP: ip, Mask: net.CIDRMask(32, 32)})
		if !sub.Contains(p.Addr()) || ip.Equal(gw) || ip[3] == 0 || ip[3] == 255 {
			return nil, fmt.Errorf("container %s: %s is not a host address of %s: %w", containerID, s, sub, ErrInvalidAddress)
		}
		ips = append(ips, ip)
	}
	return ips, nil
}

// nrInfo holds the derived addresses of a network resource.
type nrInfo struct {
	subnet net.IPNet
	rng    net.IPNet
	gw4    net.IP
	gw6    net.IP
}

func infoOf(nr pkg.NetResource) nrInfo {
	sub, _ := prefixOf(nr.Subnet.IPNet)
	rng, _ := prefixOf(nr.NetworkIPRange.IPNet)
	gw := gatewayOf(ipNetOf(sub))
	return nrInfo{subnet: ipNetOf(sub), rng: ipNetOf(rng), gw4: gw, gw6: Convert4to6(nr.NetID, gw)}
}

// IPv6From4 is GetIPv6From4 for a known resource: Convert4to6(netID, ip)/64.
func IPv6From4(netID pkg.NetID, ip net.IP) (net.IPNet, error) {
	v6 := Convert4to6(netID, ip)
	if v6 == nil {
		return net.IPNet{}, fmt.Errorf("%s is not ipv4: %w", ip, ErrInvalidAddress)
	}
	return net.IPNet{IP: v6, Mask: net.CIDRMask(64, 128)}, nil
}

// GatewayIPs returns the IPv4 and IPv6 default gateways of a resource.
func GatewayIPs(nr pkg.NetResource) (net.IP, net.IP) {
	i := infoOf(nr)
	return i.gw4, i.gw6
}

// Subnet and Range return the resource's (masked) subnet and network range.
func Subnet(nr pkg.NetResource) net.IPNet { return infoOf(nr).subnet }

// Range returns the (masked) network range of a resource.
func Range(nr pkg.NetResource) net.IPNet { return infoOf(nr).rng }

// sameNetwork reports whether two resources with the same net id belong to
// the same network (name and range).
func sameNetwork(a, b pkg.NetResource) bool {
	ra, rb := Range(a), Range(b)
	return a.Name == b.Name && ra.String() == rb.String()
}

// CheckUpdate checks a resource against the one stored with the same net id
// (if any) and the listen ports used by the others: it returns an error
// wrapping ErrNetIDConflict when the id belongs to another network and
// ErrPortInUse when another resource listens on the port.
func CheckUpdate(nr pkg.NetResource, stored *pkg.NetResource, ports map[uint16]pkg.NetID) error {
	if stored != nil && !sameNetwork(nr, *stored) {
		return &pkg.FieldError{Object: "network resource " + string(nr.NetID), Field: "NetID",
			Err: fmt.Errorf("network %q exists with that id: %w", stored.Name, ErrNetIDConflict)}
	}
	if owner, ok := ports[nr.WGListenPort]; ok && owner != nr.NetID {
		return fmt.Errorf("network %s: port %d used by %s: %w", nr.NetID, nr.WGListenPort, owner, ErrPortInUse)
	}
	return nil
}

// CheckPubTapID checks a public IP reservation id ("123-1"): p-<id> must be a
// valid interface name.
func CheckPubTapID(res string) error {
	if err := checkResID(res, maxIfaceLen-2); err != nil {
		return fmt.Errorf("public tap %q: %w", res, err)
	}
	return nil
}

// Decrypter decrypts data sealed to the node identity (pkg.IdentityManager
// satisfies it).
type Decrypter interface {
	Decrypt(msg []byte) ([]byte, error)
}

// PrivateKey decrypts the resource's WireGuard private key (hex of the
// sealed base64 key) and checks that it matches WGPublicKey. Errors wrap
// ErrInvalidKey and are *pkg.FieldError values.
func PrivateKey(dec Decrypter, nr pkg.NetResource) (wgtypes.Key, error) {
	bad := func(reason string) error {
		return &pkg.FieldError{Object: "network resource " + string(nr.NetID), Field: "WGPrivateKey",
			Err: fmt.Errorf("%s: %w", reason, ErrInvalidKey)}
	}
	sealed, err := hex.DecodeString(nr.WGPrivateKey)
	if err != nil {
		return wgtypes.Key{}, bad("not hex")
	}
	plain, err := dec.Decrypt(sealed)
	if err != nil {
		return wgtypes.Key{}, bad("cannot decrypt")
	}
	k, err := wgtypes.ParseKey(string(plain))
	if err != nil {
		return wgtypes.Key{}, bad("not a wireguard key")
	}
	if k.PublicKey().String() != nr.WGPublicKey {
		return wgtypes.Key{}, bad("does not match WGPublicKey")
	}
	return k, nil
}
