package gridtypes

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/netip"
	"strconv"
	"unicode/utf8"

	"github.com/mr-tron/base58"
)

// Size limits of the schema. A document or field beyond them is refused
// with an error wrapping ErrTooLarge.
const (
	// MaxReservationSize is the largest reservation JSON document accepted.
	MaxReservationSize = 64 << 10
	// MaxStringLen is the longest free-text field (flist URL, entrypoint,
	// environment value, kernel args, ssh key...).
	MaxStringLen = 4096
	// MaxMetadataLen bounds description and metadata, as the original.
	MaxMetadataLen = 1024
	// MaxListLen is the largest number of items in any list or map field.
	MaxListLen = 256
)

func checkStr(field, s string, limit int, required bool) error {
	if required && s == "" {
		return fieldErr(field, "is required")
	}
	if len(s) > limit {
		return &FieldError{Field: field, Reason: "longer than " + strconv.Itoa(limit) + " bytes", Err: ErrTooLarge}
	}
	if !utf8.ValidString(s) {
		return fieldErr(field, "is not valid utf-8")
	}
	return nil
}

func checkLen(field string, n int) error {
	if n > MaxListLen {
		return &FieldError{Field: field, Reason: "more than " + strconv.Itoa(MaxListLen) + " items", Err: ErrTooLarge}
	}
	return nil
}

func checkStrs(field string, l []string, required bool) error {
	if err := checkLen(field, len(l)); err != nil {
		return err
	}
	for i, s := range l {
		if err := checkStr(field+"["+strconv.Itoa(i)+"]", s, MaxStringLen, required); err != nil {
			return err
		}
	}
	return nil
}

func checkMap(field string, m map[string]string) error {
	if err := checkLen(field, len(m)); err != nil {
		return err
	}
	for k, v := range m {
		if err := checkStr(field+" key", k, MaxStringLen, true); err != nil {
			return err
		}
		if err := checkStr(field+"."+k, v, MaxStringLen, false); err != nil {
			return err
		}
	}
	return nil
}

// checkHex checks an optional hex-encoded ciphertext field.
func checkHex(field, s string) error {
	if err := checkStr(field, s, MaxStringLen, false); err != nil {
		return err
	}
	if _, err := hex.DecodeString(s); err != nil {
		return fieldErr(field, "is not hex")
	}
	return nil
}

func parseIPv4(field, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fieldErr(field, "%q is not an ipv4 address", s)
	}
	return a, nil
}

func checkIP(field, s string) error {
	if _, err := netip.ParseAddr(s); err != nil {
		return fieldErr(field, "%q is not an ip address", s)
	}
	return nil
}

// parsePrefix parses CIDR text keeping host bits ("10.1.3.5/24").
func parsePrefix(field, s string, ipv4 bool) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || (ipv4 && !p.Addr().Is4()) {
		kind := "cidr"
		if ipv4 {
			kind = "ipv4 cidr"
		}
		return netip.Prefix{}, fieldErr(field, "%q is not an %s", s, kind)
	}
	return p, nil
}

func checkEndpoint(field, s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fieldErr(field, "%q is not host:port", s)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fieldErr(field, "%q has no valid port", s)
	}
	if host == "" {
		return fieldErr(field, "%q has no host", s)
	}
	return nil
}

// checkWGKey checks a base64 WireGuard (curve25519) public key.
func checkWGKey(field, s string) error {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 32 {
		return fieldErr(field, "is not a base64 32-byte wireguard key")
	}
	return nil
}

// ParseNodeID decodes a node id (base58 of the node's ed25519 public key).
func ParseNodeID(id string) (ed25519.PublicKey, error) {
	if len(id) == 0 || len(id) > 64 {
		return nil, fieldErr("node_id", "%q is not a node id", id)
	}
	b, err := base58.Decode(id)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fieldErr("node_id", "%q is not a node id", id)
	}
	return ed25519.PublicKey(b), nil
}

// NodeIDFromKey is the node id of a public key: its base58 encoding.
func NodeIDFromKey(pk ed25519.PublicKey) string { return base58.Encode(pk) }

// ParsePublicKeyHex decodes a hex ed25519 public key (a user's key).
func ParsePublicKeyHex(field, s string) (ed25519.PublicKey, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fieldErr(field, "is not a hex 32-byte ed25519 public key")
	}
	return ed25519.PublicKey(b), nil
}

func decodeSig(s string) ([]byte, error) {
	if s == "" {
		return nil, ErrUnsigned
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != ed25519.SignatureSize {
		return nil, ErrBadSignature
	}
	return b, nil
}

func verifyHex(pk ed25519.PublicKey, digest [32]byte, sig string) error {
	b, err := decodeSig(sig)
	if err != nil {
		return err
	}
	if len(pk) != ed25519.PublicKeySize || !ed25519.Verify(pk, digest[:], b) {
		return ErrBadSignature
	}
	return nil
}

func signHex(sk ed25519.PrivateKey, digest [32]byte) string {
	return hex.EncodeToString(ed25519.Sign(sk, digest[:]))
}
