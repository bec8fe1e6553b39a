package network

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/zos-go/zos/pkg"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// CheckNetResource checks a network resource beyond pkg.NetResource.Valid:
// net id characters and length (n-<netid> ≤ 15 characters), an IPv4 /16
// range, an IPv4 /24 subnet inside it, WireGuard keys (base64 of 32 bytes;
// the private key must be hex), a listen port outside reserved, and for
// every peer a key, a subnet inside the range that overlaps neither the
// resource's subnet nor another peer's, allowed IPs that do not overlap those
// of another peer or the resource's subnet, and an endpoint that is empty or
// ip:port. It returns nil or an error wrapping ErrInvalidNetResource, a
// *pkg.FieldError naming the field, and the specific ErrInvalidXxx reason.
// The private key is not decrypted here.
func CheckNetResource(nr pkg.NetResource, reserved ...uint16) error {
	if err := nr.Valid(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidNetResource, err)
	}
	bad := func(field string, reason error) error {
		return &pkg.FieldError{Object: "network resource " + string(nr.NetID), Field: field, Err: reason}
	}
	if err := checkName(string(nr.NetID), "n-"); err != nil {
		return bad("NetID", err)
	}
	rng, ok := prefixOf(nr.NetworkIPRange.IPNet)
	if !ok || !rng.Addr().Is4() || rng.Bits() != 16 {
		return bad("NetworkIPRange", fmt.Errorf("%s is not an IPv4 /16: %w", nr.NetworkIPRange, ErrInvalidSubnet))
	}
	sub, ok := prefixOf(nr.Subnet.IPNet)
	if !ok || !sub.Addr().Is4() || sub.Bits() != 24 {
		return bad("Subnet", fmt.Errorf("%s is not an IPv4 /24: %w", nr.Subnet, ErrInvalidSubnet))
	}
	if !inside(sub, rng) {
		return bad("Subnet", fmt.Errorf("%s not in %s: %w", sub, rng, ErrSubnetOutsideRange))
	}
	if _, err := hex.DecodeString(nr.WGPrivateKey); err != nil {
		return bad("WGPrivateKey", fmt.Errorf("not hex: %w", ErrInvalidKey))
	}
	own, err := wgtypes.ParseKey(nr.WGPublicKey)
	if err != nil {
		return bad("WGPublicKey", fmt.Errorf("%w", ErrInvalidKey))
	}
	if slices.Contains(reserved, nr.WGListenPort) {
		return bad("WGListenPort", fmt.Errorf("port %d is reserved: %w", nr.WGListenPort, ErrInvalidPort))
	}
	keys := map[wgtypes.Key]int{own: -1}
	type owned struct {
		p    netip.Prefix
		peer int
	}
	var allowed []owned
	var subnets []netip.Prefix
	for i, p := range nr.Peers {
		f := func(s string) string { return fmt.Sprintf("Peers[%d].%s", i, s) }
		k, err := wgtypes.ParseKey(p.WGPublicKey)
		if err != nil {
			return bad(f("WGPublicKey"), fmt.Errorf("%w", ErrInvalidKey))
		}
		if j, dup := keys[k]; dup {
			if j < 0 {
				return bad(f("WGPublicKey"), fmt.Errorf("the resource's own key: %w", ErrDuplicatePeer))
			}
			return bad(f("WGPublicKey"), fmt.Errorf("same key as Peers[%d]: %w", j, ErrDuplicatePeer))
		}
		keys[k] = i
		ps, ok := prefixOf(p.Subnet.IPNet)
		if !ok || !ps.Addr().Is4() {
			return bad(f("Subnet"), fmt.Errorf("%s is not an IPv4 subnet: %w", p.Subnet, ErrInvalidSubnet))
		}
		if !inside(ps, rng) {
			return bad(f("Subnet"), fmt.Errorf("%s not in %s: %w", ps, rng, ErrSubnetOutsideRange))
		}
		if ps.Overlaps(sub) {
			return bad(f("Subnet"), fmt.Errorf("%s overlaps the resource's %s: %w", ps, sub, ErrSubnetOverlap))
		}
		for _, o := range subnets {
			if o.Overlaps(ps) {
				return bad(f("Subnet"), fmt.Errorf("%s overlaps %s: %w", ps, o, ErrSubnetOverlap))
			}
		}
		subnets = append(subnets, ps)
		for j, a := range p.AllowedIPs {
			ap, ok := prefixOf(a.IPNet)
			if !ok {
				return bad(f(fmt.Sprintf("AllowedIPs[%d]", j)), fmt.Errorf("%s: %w", a, ErrInvalidSubnet))
			}
			if ap.Addr().Is4() && ap.Overlaps(sub) {
				return bad(f(fmt.Sprintf("AllowedIPs[%d]", j)), fmt.Errorf("%s overlaps the resource's %s: %w", ap, sub, ErrSubnetOverlap))
			}
			for _, o := range allowed {
				if o.peer != i && o.p.Overlaps(ap) {
					return bad(f(fmt.Sprintf("AllowedIPs[%d]", j)), fmt.Errorf("%s overlaps %s of Peers[%d]: %w", ap, o.p, o.peer, ErrSubnetOverlap))
				}
			}
			allowed = append(allowed, owned{ap, i})
		}
		if p.Endpoint != "" {
			if _, err := parseEndpoint(p.Endpoint); err != nil {
				return bad(f("Endpoint"), err)
			}
		}
	}
	return nil
}

// parseEndpoint parses "ip:port" or "[ipv6]:port".
func parseEndpoint(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 || !ap.Addr().IsValid() || ap.Addr().Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("%q is not ip:port: %w", s, ErrInvalidEndpoint)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// checkName checks that id can be used in interface names with the given
// prefix: letters and digits only, and prefix+id within 15 characters.
func checkName(id, prefix string) error {
	if id == "" {
		return fmt.Errorf("empty: %w", ErrInvalidName)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return fmt.Errorf("%q has characters other than letters and digits: %w", id, ErrInvalidName)
		}
	}
	if len(prefix)+len(id) > maxIfaceLen {
		return fmt.Errorf("%s%s is over %d characters: %w", prefix, id, maxIfaceLen, ErrNameTooLong)
	}
	return nil
}

// checkResID checks an id used in a namespace or interface name (container
// ids, public IP reservation ids like "123-1"): letters, digits, - and _, and
// within max characters.
func checkResID(id string, max int) error {
	if id == "" {
		return fmt.Errorf("empty id: %w", ErrInvalidName)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("%q has characters other than letters, digits, - and _: %w", id, ErrInvalidName)
		}
	}
	if len(id) > max {
		return fmt.Errorf("%q is over %d characters: %w", id, max, ErrNameTooLong)
	}
	return nil
}

// prefixOf converts a net.IPNet to a masked netip.Prefix (IPv4 in 4-byte form).
func prefixOf(n net.IPNet) (netip.Prefix, bool) {
	if len(n.IP) == 0 || len(n.Mask) == 0 {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	if bits == 0 {
		return netip.Prefix{}, false
	}
	ip := n.IP
	if bits == 32 {
		ip = ip.To4()
		if ip == nil {
			return netip.Prefix{}, false
		}
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Prefix{}, false
	}
	if bits == 128 && a.Is4In6() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, ones).Masked(), true
}

// inside reports whether the prefix p lies within r.
func inside(p, r netip.Prefix) bool {
	return p.Bits() >= r.Bits() && r.Contains(p.Addr())
}

// ipNetOf converts a prefix back to net.IPNet.
func ipNetOf(p netip.Prefix) net.IPNet {
	return net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
