package identity

import (
	"testing"
)

// BenchmarkOpenBox measures Manager.Decrypt of a 64-byte sealed secret (a
// WireGuard key or a password), the node's hot path when provisioning.
func BenchmarkOpenBox(b *testing.B) {
	node := vectorKeyPair(b)
	ct, err := SealBox(node.PublicKey(), make([]byte, 64))
	if err != nil {
		b.Fatal(err)
	}
	sk := node.PrivateKey()
	n := 0
	for b.Loop() {
		if _, err := OpenBox(sk, ct); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "decrypts/s")
}

// BenchmarkDecryptECDH measures DecryptECDH of a 64-byte secret, key
// derivation included (nothing is cached between workloads).
func BenchmarkDecryptECDH(b *testing.B) {
	node, user := vectorKeyPair(b), userKeyPair()
	ct, err := EncryptECDH(user.PrivateKey(), node.PublicKey(), make([]byte, 64))
	if err != nil {
		b.Fatal(err)
	}
	sk, peer := node.PrivateKey(), user.PublicKey()
	n := 0
	for b.Loop() {
		if _, err := DecryptECDH(sk, peer, ct); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "decrypts/s")
}
