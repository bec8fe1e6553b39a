package identity

import (
	"encoding/hex"
	"log/slog"
	"testing"
)

// Golden values computed with PyNaCl 1.5.0 (libsodium) for the seed of the
// original's test vector and a user seed 00 01 … 1f.
const (
	vectorSeed      = "helloworldhelloworldhelloworld12"
	vectorNodeID    = "FkUfMueBVSK6V1DCHVAtzzaqPqCPVzGguDzCQxq7Ep85"
	vectorNodePK    = "db26de5be5a0bd95b775170db6d80f0461d2f7c33742726fd9c6c35d39eeb9de"
	vectorNodeCurve = "49baa131d79bd1b0841c4642a58aa1af4a2aa676c3e5967e9bc85303eb6edb7c"
	vectorNodeCSK   = "70ee05189d2f67146ad63dce82699606c8b80b583a4a49b5a564da1e524ccb73"
	vectorUserPK    = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
	// SealedBox(node curve pk).encrypt(b"sealed by pynacl")
	vectorSealed = "e7adc6f0d3522d219f3235edbbd2436849d4c177d125039b6df22eb2226dc1218c5ccc79336ae53e92835b815cc798ef9ec2f82fcd20b26db2766d47150a3c35"
	// blake2b(crypto_scalarmult(user csk, node cpk), digest_size=32)
	vectorSharedKey = "a36caf78e19716ee5287285c7aca934836e0fd4582f096ac610b94331ac2576e"
	// SecretBox(key).encrypt(b"ecdh by pynacl", nonce=bytes(24))
	vectorECDH = "00000000000000000000000000000000000000000000000065d48873747ed61af04cd4388c1f9161a6689c33efbbc0b2254d7a5877a2"
	// node.sign(b"message").signature
	vectorSig = "e1c63ec290b71dd5a08a8160f63725073e0113ed74c1ffe248fcdd0d8c5225626d401355238a55a54ff9b49bbef2556a4275ead8d06e1b14c270b342b7029a04"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func vectorKeyPair(t testing.TB) KeyPair {
	t.Helper()
	s, err := SeedFromBytes([]byte(vectorSeed))
	if err != nil {
		t.Fatal(err)
	}
	return NewKeyPair(s)
}

func userKeyPair() KeyPair {
	var s Seed
	for i := range s {
		s[i] = byte(i)
	}
	return NewKeyPair(s)
}

func newKeyPair(t testing.TB) KeyPair {
	t.Helper()
	s, err := GenerateSeed()
	if err != nil {
		t.Fatal(err)
	}
	return NewKeyPair(s)
}
