package types

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// ErrInvalidIPNet is wrapped by every error about text that is not an IP
// network in CIDR notation, or about an IPNet that cannot be encoded.
var ErrInvalidIPNet = errors.New("invalid ip network")

// IPNet is a net.IPNet whose text form is CIDR notation, e.g. "10.1.0.0/16"
// or "10.1.3.5/24". The address keeps its host bits: "10.1.3.5/24" stays
// "10.1.3.5/24". The zero IPNet means "not set" and encodes as "".
//
// An IPv4 network parsed from dotted text holds a 4-byte IP and mask; an
// IPv6 network (including IPv4-mapped "::ffff:a.b.c.d/n") holds 16 bytes,
// so that parsing the text of a value gives the same value back.
type IPNet struct{ net.IPNet }

// NewIPNet wraps n. The IP and mask slices are shared, not copied.
func NewIPNet(n net.IPNet) IPNet {
	return IPNet{IPNet: n}
}

// ParseIPNet parses CIDR text such as "10.1.0.0/16" or "fd00::1/64".
// The empty string gives the zero IPNet and no error. Any other text that
// is not an address, a slash and a prefix length gives an error wrapping
// ErrInvalidIPNet. Zones ("fe80::1%eth0/64") are refused.
func ParseIPNet(s string) (IPNet, error) {
	if s == "" {
		return IPNet{}, nil
	}
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		return IPNet{}, fmt.Errorf("ip network %q: %w", s, ErrInvalidIPNet)
	}
	if len(n.Mask) == net.IPv4len {
		ip = ip.To4()
	}
	return IPNet{net.IPNet{IP: ip, Mask: n.Mask}}, nil
}

// MustParseIPNet is ParseIPNet for constants in code and tests: it panics
// when s is not valid.
func MustParseIPNet(s string) IPNet {
	n, err := ParseIPNet(s)
	if err != nil {
		panic(err)
	}
	return n
}

// Nil reports whether the IPNet is unset (no address and no mask).
func (n IPNet) Nil() bool {
	return len(n.IP) == 0 && len(n.Mask) == 0
}

// valid reports whether n can be written as CIDR text: the address is 4 or
// 16 bytes and the mask is a canonical prefix mask of 4 or 16 bytes.
func (n IPNet) valid() bool {
	if len(n.IP) != net.IPv4len && len(n.IP) != net.IPv6len {
		return false
	}
	_, bits := n.Mask.Size()
	if bits == 0 {
		return false
	}
	// a 16-byte mask needs a 16-byte address; a 4-byte mask needs an
	// address that has an IPv4 form.
	if bits == 8*net.IPv6len {
		return len(n.IP) == net.IPv6len
	}
	return n.IP.To4() != nil
}

// String returns the CIDR text of n, "" when n is unset. A value that is
// neither unset nor valid CIDR (for instance a mask that is not a prefix)
// falls back to net.IPNet's own formatting.
func (n IPNet) String() string {
	if n.Nil() {
		return ""
	}
	if n.valid() {
		ones, bits := n.Mask.Size()
		if bits == 8*net.IPv6len {
			// keep IPv4-mapped addresses in IPv6 form: net.IPNet would
			// print them as IPv4 and truncate the mask.
			addr, _ := netip.AddrFromSlice(n.IP)
			return netip.PrefixFrom(addr, ones).String()
		}
	}
	return n.IPNet.String()
}

// MarshalText implements encoding.TextMarshaler. The zero IPNet encodes as
// empty text; a value that is not valid CIDR gives an error wrapping
// ErrInvalidIPNet instead of text that could not be read back.
func (n IPNet) MarshalText() ([]byte, error) {
	if n.Nil() {
		return []byte{}, nil
	}
	if !n.valid() {
		return nil, fmt.Errorf("ip network %v/%v: %w", n.IP, n.Mask, ErrInvalidIPNet)
	}
	return []byte(n.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseIPNet. Empty
// text gives the zero IPNet. On error n is left unchanged.
func (n *IPNet) UnmarshalText(text []byte) error {
	v, err := ParseIPNet(string(text))
	if err != nil {
		return err
	}
	*n = v
	return nil
}
