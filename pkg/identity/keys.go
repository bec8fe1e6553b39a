package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"filippo.io/edwards25519"
	bip39 "github.com/cosmos/go-bip39"
	"github.com/mr-tron/base58"
)

// SeedSize is the length of a seed in bytes.
const SeedSize = ed25519.SeedSize

// MnemonicWords is the number of BIP-39 words of a 32-byte seed.
const MnemonicWords = 24

// Seed is the 32-byte secret an identity is derived from. It redacts itself
// when printed with fmt or logged with log/slog.
type Seed [SeedSize]byte

// Format implements fmt.Formatter: every verb prints a redacted placeholder.
func (Seed) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, "identity.Seed(REDACTED)") }

// LogValue implements slog.LogValuer with a redacted placeholder.
func (Seed) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// GenerateSeed returns a new random seed from crypto/rand.
func GenerateSeed() (Seed, error) {
	var s Seed
	if _, err := io.ReadFull(rand.Reader, s[:]); err != nil {
		return Seed{}, fmt.Errorf("generate seed: %w", err)
	}
	return s, nil
}

// SeedFromBytes copies a 32-byte slice into a Seed; other lengths are
// ErrSeedLength.
func SeedFromBytes(b []byte) (Seed, error) {
	var s Seed
	if len(b) != SeedSize {
		return s, fmt.Errorf("seed of %d bytes, want %d: %w", len(b), SeedSize, ErrSeedLength)
	}
	copy(s[:], b)
	return s, nil
}

// SeedFromMnemonic returns the seed a 24-word BIP-39 mnemonic encodes: its
// entropy (not the PBKDF2 BIP-39 seed), as the original tfuser/zos did. Words
// may be separated by any white space. An unknown word, a bad checksum or
// another word count is ErrMnemonic.
func SeedFromMnemonic(mnemonic string) (Seed, error) {
	words := strings.Fields(mnemonic)
	if len(words) != MnemonicWords {
		return Seed{}, fmt.Errorf("mnemonic of %d words, want %d: %w", len(words), MnemonicWords, ErrMnemonic)
	}
	b, err := bip39.MnemonicToByteArray(strings.Join(words, " "))
	if err != nil {
		// The library's message may quote a word of the mnemonic: keep it out.
		return Seed{}, fmt.Errorf("mnemonic word list or checksum: %w", ErrMnemonic)
	}
	// b is the 32 bytes of entropy followed by the 8-bit checksum.
	if len(b) != SeedSize+1 {
		return Seed{}, fmt.Errorf("mnemonic decodes to %d bytes: %w", len(b), ErrMnemonic)
	}
	return SeedFromBytes(b[:SeedSize])
}

// Mnemonic returns the 24-word BIP-39 mnemonic whose entropy is the seed.
func (s Seed) Mnemonic() string {
	m, err := bip39.NewMnemonic(s[:])
	if err != nil { // 256-bit entropy is always valid
		panic(fmt.Sprintf("identity: bip39 of a 32-byte seed: %v", err))
	}
	return m
}

// KeyPair is an ed25519 key pair derived from a Seed. The zero value is not
// usable; build it with NewKeyPair. It redacts itself when printed with fmt
// (only the id shows) or logged with log/slog. It is safe for concurrent use.
type KeyPair struct {
	priv ed25519.PrivateKey
}

// NewKeyPair derives the key pair of a seed: ed25519.NewKeyFromSeed.
func NewKeyPair(seed Seed) KeyPair {
	return KeyPair{priv: ed25519.NewKeyFromSeed(seed[:])}
}

// KeyPairFromPrivateKey wraps a 64-byte ed25519 private key; other lengths,
// or a key whose public half does not match its seed, are ErrInvalidPrivateKey.
func KeyPairFromPrivateKey(sk ed25519.PrivateKey) (KeyPair, error) {
	if len(sk) != ed25519.PrivateKeySize {
		return KeyPair{}, fmt.Errorf("private key of %d bytes: %w", len(sk), ErrInvalidPrivateKey)
	}
	kp := ed25519.NewKeyFromSeed(sk.Seed())
	if !kp.Equal(sk) {
		return KeyPair{}, fmt.Errorf("private key public half does not match: %w", ErrInvalidPrivateKey)
	}
	return KeyPair{priv: kp}, nil
}

// PublicKey returns a copy of the 32-byte ed25519 public key.
func (k KeyPair) PublicKey() ed25519.PublicKey {
	return append(ed25519.PublicKey(nil), k.priv[SeedSize:]...)
}

// PrivateKey returns a copy of the 64-byte ed25519 private key (seed ‖ public key).
func (k KeyPair) PrivateKey() ed25519.PrivateKey {
	return append(ed25519.PrivateKey(nil), k.priv...)
}

// ID returns the base58 id of the public key (the node id for a node).
func (k KeyPair) ID() string { return base58.Encode(k.priv[SeedSize:]) }

// Sign signs message with pure ed25519 (RFC 8032, no pre-hash): 64 bytes.
func (k KeyPair) Sign(message []byte) []byte { return ed25519.Sign(k.priv, message) }

// Format implements fmt.Formatter: every verb prints the id, never the key.
func (k KeyPair) Format(f fmt.State, _ rune) {
	id := "<nil>"
	if len(k.priv) == ed25519.PrivateKeySize {
		id = k.ID()
	}
	_, _ = io.WriteString(f, "identity.KeyPair("+id+")")
}

// LogValue implements slog.LogValuer: the id only.
func (k KeyPair) LogValue() slog.Value {
	if len(k.priv) != ed25519.PrivateKeySize {
		return slog.StringValue("<nil>")
	}
	return slog.StringValue(k.ID())
}

// IDFromKey returns the base58 (Bitcoin alphabet) id of an ed25519 public key.
func IDFromKey(pk ed25519.PublicKey) string { return base58.Encode(pk) }

// KeyFromID decodes a base58 node (or user) id into its 32-byte ed25519
// public key. Bad base58 or another length is ErrInvalidPublicKey.
func KeyFromID(id string) (ed25519.PublicKey, error) {
	// 32 bytes take 32 ("1"×32) to 44 base58 characters; bound the input
	// before the quadratic decoder sees it.
	if len(id) < 32 || len(id) > 44 {
		return nil, fmt.Errorf("id of %d characters: %w", len(id), ErrInvalidPublicKey)
	}
	b, err := base58.Decode(id)
	if err != nil {
		return nil, fmt.Errorf("id %q: base58: %w", id, ErrInvalidPublicKey)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("id %q decodes to %d bytes: %w", id, len(b), ErrInvalidPublicKey)
	}
	return ed25519.PublicKey(b), nil
}

// PublicKeyToCurve25519 converts an ed25519 public key to the X25519
// (Montgomery u) public key, u = (1 + y)/(1 − y), like libsodium's
// crypto_sign_ed25519_pk_to_curve25519. Like libsodium it rejects keys that
// are not 32 bytes, do not decode to a curve point, have small order or lie
// outside the prime-order subgroup (ErrInvalidPublicKey).
func PublicKeyToCurve25519(pk ed25519.PublicKey) ([32]byte, error) {
	var u [32]byte
	if len(pk) != ed25519.PublicKeySize {
		return u, fmt.Errorf("public key of %d bytes: %w", len(pk), ErrInvalidPublicKey)
	}
	p, err := new(edwards25519.Point).SetBytes(pk)
	if err != nil {
		return u, fmt.Errorf("public key is not a curve point: %w", ErrInvalidPublicKey)
	}
	identity := edwards25519.NewIdentityPoint()
	if new(edwards25519.Point).MultByCofactor(p).Equal(identity) == 1 {
		return u, fmt.Errorf("public key has small order: %w", ErrInvalidPublicKey)
	}
	// p is in the prime-order subgroup iff ℓ·p = O, i.e. (ℓ−1)·p + p = O.
	lp := new(edwards25519.Point).ScalarMult(scalarLMinus1, p)
	if lp.Add(lp, p).Equal(identity) != 1 {
		return u, fmt.Errorf("public key has a torsion component: %w", ErrInvalidPublicKey)
	}
	copy(u[:], p.BytesMontgomery())
	return u, nil
}

// scalarLMinus1 is ℓ − 1, ℓ = 2^252 + 27742317777372353535851937790883648493
// the order of the prime-order subgroup, as a canonical little-endian scalar.
var scalarLMinus1 = func() *edwards25519.Scalar {
	b := [32]byte{
		0xec, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58,
		0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
		0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0x10,
	}
	s, err := edwards25519.NewScalar().SetCanonicalBytes(b[:])
	if err != nil {
		panic("identity: ℓ−1 scalar: " + err.Error())
	}
	return s
}()

// PrivateKeyToCurve25519 converts an ed25519 private key to its X25519 private
// key: the first 32 bytes of SHA-512(seed), clamped, like libsodium's
// crypto_sign_ed25519_sk_to_curve25519. A key that is not 64 bytes is
// ErrInvalidPrivateKey.
func PrivateKeyToCurve25519(sk ed25519.PrivateKey) ([32]byte, error) {
	var x [32]byte
	if len(sk) != ed25519.PrivateKeySize {
		return x, fmt.Errorf("private key of %d bytes: %w", len(sk), ErrInvalidPrivateKey)
	}
	h := sha512.Sum512(sk.Seed())
	copy(x[:], h[:32])
	x[0] &= 248
	x[31] &= 127
	x[31] |= 64
	return x, nil
}
