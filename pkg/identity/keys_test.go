package identity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"filippo.io/edwards25519"
)

func TestNodeIDVector(t *testing.T) {
	kp := vectorKeyPair(t)
	if got := kp.ID(); got != vectorNodeID {
		t.Fatalf("id = %s, want %s", got, vectorNodeID)
	}
	if got := hex.EncodeToString(kp.PublicKey()); got != vectorNodePK {
		t.Fatalf("public key = %s, want %s", got, vectorNodePK)
	}
	pk, err := KeyFromID(vectorNodeID)
	if err != nil {
		t.Fatal(err)
	}
	if !pk.Equal(kp.PublicKey()) {
		t.Fatalf("KeyFromID = %x", pk)
	}
	if IDFromKey(pk) != vectorNodeID {
		t.Fatal("IDFromKey does not reverse KeyFromID")
	}
}

func TestNodeIDRoundTrip(t *testing.T) {
	for range 50 {
		kp := newKeyPair(t)
		id := kp.ID()
		if len(id) < 43 || len(id) > 44 {
			t.Fatalf("id %q has %d characters", id, len(id))
		}
		pk, err := KeyFromID(id)
		if err != nil || !pk.Equal(kp.PublicKey()) {
			t.Fatalf("KeyFromID(%s) = %x, %v", id, pk, err)
		}
	}
}

func TestKeyFromIDErrors(t *testing.T) {
	for name, id := range map[string]string{
		"empty":        "",
		"bad alphabet": "0OIl" + vectorNodeID[4:],
		"too short":    vectorNodeID[:20],
		"too long":     vectorNodeID + "zz",
		"spaces":       " " + vectorNodeID,
		"huge":         strings.Repeat("z", 1<<20),
		"31 ones":      strings.Repeat("1", 31),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := KeyFromID(id); !errors.Is(err, ErrInvalidPublicKey) {
				t.Fatalf("KeyFromID(%q) err = %v, want ErrInvalidPublicKey", id, err)
			}
		})
	}
}

func TestCurveConversionVectors(t *testing.T) {
	kp := vectorKeyPair(t)
	cpk, err := PublicKeyToCurve25519(kp.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(cpk[:]); got != vectorNodeCurve {
		t.Errorf("curve public = %s, want %s", got, vectorNodeCurve)
	}
	csk, err := PrivateKeyToCurve25519(kp.PrivateKey())
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(csk[:]); got != vectorNodeCSK {
		t.Errorf("curve private = %s, want %s", got, vectorNodeCSK)
	}
	// libsodium.js vector (crypto_sign_ed25519_pk_to_curve25519).
	cpk, err = PublicKeyToCurve25519(unhex(t, "3bf918ffc2c955dc895bf145f566fb96623c1cadbe040091175764b5fde322c0"))
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(cpk[:]); got != "efc6c9d0738e9ea18d738ad4a2653631558931b0f1fde4dd58c436d19686dc28" {
		t.Errorf("libsodium vector: %s", got)
	}
}

// badPublicKeys are ed25519 public keys libsodium refuses to convert.
func badPublicKeys(t testing.TB) map[string][]byte {
	t.Helper()
	lowOrder := unhex(t, "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
	identity := make([]byte, 32)
	identity[0] = 1
	// A valid key plus a point of order 8: on the curve, not in the subgroup.
	p, err := new(edwards25519.Point).SetBytes(unhex(t, vectorNodePK))
	if err != nil {
		t.Fatal(err)
	}
	q, err := new(edwards25519.Point).SetBytes(lowOrder)
	if err != nil {
		t.Fatal(err)
	}
	torsion := new(edwards25519.Point).Add(p, q).Bytes()
	// The first y that is not the y of a curve point.
	var notPoint []byte
	for y := byte(2); notPoint == nil; y++ {
		b := make([]byte, 32)
		b[0] = y
		if _, err := new(edwards25519.Point).SetBytes(b); err != nil {
			notPoint = b
		}
	}
	return map[string][]byte{
		"empty":     nil,
		"short":     unhex(t, vectorNodePK)[:31],
		"long":      append(unhex(t, vectorNodePK), 0),
		"identity":  identity,
		"low order": lowOrder,
		"torsion":   torsion,
		"not point": notPoint,
	}
}

func TestPublicKeyToCurve25519Rejects(t *testing.T) {
	for name, pk := range badPublicKeys(t) {
		t.Run(name, func(t *testing.T) {
			if _, err := PublicKeyToCurve25519(pk); !errors.Is(err, ErrInvalidPublicKey) {
				t.Fatalf("err = %v, want ErrInvalidPublicKey", err)
			}
			if _, err := SealBox(pk, []byte("x")); !errors.Is(err, ErrInvalidPublicKey) {
				t.Fatalf("SealBox err = %v", err)
			}
			if _, err := EncryptECDH(userKeyPair().PrivateKey(), pk, []byte("x")); !errors.Is(err, ErrInvalidPublicKey) {
				t.Fatalf("EncryptECDH err = %v", err)
			}
		})
	}
}

func TestPrivateKeyErrors(t *testing.T) {
	for _, n := range []int{0, 32, 63, 65} {
		if _, err := PrivateKeyToCurve25519(make([]byte, n)); !errors.Is(err, ErrInvalidPrivateKey) {
			t.Errorf("%d bytes: err = %v", n, err)
		}
		if _, err := KeyPairFromPrivateKey(make([]byte, n)); !errors.Is(err, ErrInvalidPrivateKey) {
			t.Errorf("KeyPairFromPrivateKey %d bytes: err = %v", n, err)
		}
	}
	sk := vectorKeyPair(t).PrivateKey()
	sk[40] ^= 1 // public half no longer matches the seed
	if _, err := KeyPairFromPrivateKey(sk); !errors.Is(err, ErrInvalidPrivateKey) {
		t.Errorf("mismatched halves: err = %v", err)
	}
	kp, err := KeyPairFromPrivateKey(vectorKeyPair(t).PrivateKey())
	if err != nil || kp.ID() != vectorNodeID {
		t.Errorf("KeyPairFromPrivateKey = %v, %v", kp.ID(), err)
	}
}

func TestPrivateKeyIsACopy(t *testing.T) {
	kp := vectorKeyPair(t)
	sk := kp.PrivateKey()
	sk[0] ^= 0xff
	pk := kp.PublicKey()
	pk[0] ^= 0xff
	if kp.ID() != vectorNodeID || !bytes.Equal(kp.PrivateKey()[:32], []byte(vectorSeed)) {
		t.Fatal("mutating returned keys changed the key pair")
	}
}

func TestMnemonic(t *testing.T) {
	s, err := SeedFromBytes([]byte(vectorSeed))
	if err != nil {
		t.Fatal(err)
	}
	m := s.Mnemonic()
	if n := len(strings.Fields(m)); n != MnemonicWords {
		t.Fatalf("mnemonic has %d words", n)
	}
	back, err := SeedFromMnemonic("  " + strings.ReplaceAll(m, " ", " \t\n ") + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if back != s {
		t.Fatal("mnemonic round trip changed the seed")
	}
	// BIP-39 reference vector (trezor): entropy 00…00 (32 bytes).
	zero := strings.Repeat("abandon ", 23) + "art"
	z, err := SeedFromMnemonic(zero)
	if err != nil || z != (Seed{}) {
		t.Fatalf("all-zero vector: %v", err)
	}
	if (Seed{}).Mnemonic() != zero {
		t.Fatal("Mnemonic of zero seed differs from the BIP-39 vector")
	}
}

func TestSeedFromMnemonicErrors(t *testing.T) {
	s, _ := SeedFromBytes([]byte(vectorSeed))
	words := strings.Fields(s.Mnemonic())
	badChecksum := append([]string(nil), words...)
	// Changing the last word changes the checksum bits.
	if badChecksum[23] == "zoo" {
		badChecksum[23] = "abandon"
	} else {
		badChecksum[23] = "zoo"
	}
	unknown := append([]string(nil), words...)
	unknown[3] = "notaword"
	for name, m := range map[string]string{
		"empty":        "",
		"12 words":     strings.Repeat("abandon ", 11) + "about",
		"23 words":     strings.Join(words[:23], " "),
		"25 words":     strings.Join(append(words, "abandon"), " "),
		"bad checksum": strings.Join(badChecksum, " "),
		"unknown word": strings.Join(unknown, " "),
		"upper case":   strings.ToUpper(strings.Join(words, " ")),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := SeedFromMnemonic(m)
			if !errors.Is(err, ErrMnemonic) || !errors.Is(err, ErrInvalidSeed) {
				t.Fatalf("err = %v, want ErrMnemonic", err)
			}
			if strings.Contains(err.Error(), "notaword") {
				t.Fatalf("error quotes the mnemonic: %v", err)
			}
		})
	}
}

func TestSecretsRedacted(t *testing.T) {
	kp := vectorKeyPair(t)
	s, _ := SeedFromBytes([]byte(vectorSeed))
	var logged bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logged, nil))
	log.Info("x", "seed", s, "kp", kp)
	var printed bytes.Buffer
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
		fmt.Fprintf(&printed, verb+"\n", s)
		fmt.Fprintf(&printed, verb+"\n", kp)
		fmt.Fprintf(&printed, verb+"\n", &kp)
	}
	out := logged.String() + printed.String()
	seedHex := hex.EncodeToString([]byte(vectorSeed))
	for _, secret := range []string{vectorSeed, seedHex, strings.ToUpper(seedHex), "104 101 108 108 111", "[104"} {
		if strings.Contains(out, secret) {
			t.Fatalf("output leaks the seed (%q):\n%s", secret, out)
		}
	}
	if !strings.Contains(out, vectorNodeID) {
		t.Fatalf("key pair output should show its id:\n%s", out)
	}
}

func TestSignVector(t *testing.T) {
	kp := vectorKeyPair(t)
	sig := kp.Sign([]byte("message"))
	if got := hex.EncodeToString(sig); got != vectorSig {
		t.Fatalf("signature = %s, want PyNaCl's %s", got, vectorSig)
	}
	if err := Verify(kp.PublicKey(), []byte("message"), sig); err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(kp.PublicKey(), []byte("message"), sig) {
		t.Fatal("stdlib rejects the signature")
	}
}
