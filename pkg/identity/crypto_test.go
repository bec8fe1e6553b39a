package identity

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func TestOpenBoxPyNaClVector(t *testing.T) {
	kp := vectorKeyPair(t)
	msg, err := OpenBox(kp.PrivateKey(), unhex(t, vectorSealed))
	if err != nil {
		t.Fatal(err)
	}
	if string(msg) != "sealed by pynacl" {
		t.Fatalf("plaintext = %q", msg)
	}
}

func TestECDHPyNaClVector(t *testing.T) {
	node, user := vectorKeyPair(t), userKeyPair()
	if got := hex.EncodeToString(user.PublicKey()); got != vectorUserPK {
		t.Fatalf("user pk = %s", got)
	}
	for name, f := range map[string]func() ([32]byte, error){
		"node side": func() ([32]byte, error) { return SharedKey(node.PrivateKey(), user.PublicKey()) },
		"user side": func() ([32]byte, error) { return SharedKey(user.PrivateKey(), node.PublicKey()) },
	} {
		key, err := f()
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(key[:]); got != vectorSharedKey {
			t.Fatalf("%s shared key = %s, want %s", name, got, vectorSharedKey)
		}
	}
	msg, err := DecryptECDH(node.PrivateKey(), user.PublicKey(), unhex(t, vectorECDH))
	if err != nil {
		t.Fatal(err)
	}
	if string(msg) != "ecdh by pynacl" {
		t.Fatalf("plaintext = %q", msg)
	}
}

func TestSealBoxRoundTrip(t *testing.T) {
	node := newKeyPair(t)
	for _, msg := range [][]byte{nil, {}, []byte("x"), bytes.Repeat([]byte("secret"), 10000)} {
		ct, err := SealBox(node.PublicKey(), msg)
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != len(msg)+SealOverhead {
			t.Fatalf("ciphertext of %d bytes for %d", len(ct), len(msg))
		}
		ct2, _ := SealBox(node.PublicKey(), msg)
		if bytes.Equal(ct, ct2) {
			t.Fatal("two seals of one message are equal: ephemeral key reused")
		}
		got, err := OpenBox(node.PrivateKey(), ct)
		if err != nil {
			t.Fatal(err)
		}
		if got == nil || !bytes.Equal(got, msg) {
			t.Fatalf("round trip: %d bytes, want %d", len(got), len(msg))
		}
	}
	// By node id, as the CLI does.
	ct, err := SealToNode(node.ID(), []byte("wg key"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := OpenBox(node.PrivateKey(), ct); err != nil || string(got) != "wg key" {
		t.Fatalf("SealToNode: %q, %v", got, err)
	}
	if _, err := SealToNode("not-an-id", []byte("x")); !errors.Is(err, ErrInvalidPublicKey) {
		t.Fatalf("SealToNode bad id: %v", err)
	}
}

func TestECDHRoundTrip(t *testing.T) {
	node, user := newKeyPair(t), newKeyPair(t)
	for _, msg := range [][]byte{nil, []byte("zdb password"), bytes.Repeat([]byte{7}, 1<<16)} {
		ct, err := EncryptECDH(user.PrivateKey(), node.PublicKey(), msg)
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != len(msg)+ECDHOverhead {
			t.Fatalf("ciphertext of %d bytes for %d", len(ct), len(msg))
		}
		got, err := DecryptECDH(node.PrivateKey(), user.PublicKey(), ct)
		if err != nil || !bytes.Equal(got, msg) || got == nil {
			t.Fatalf("user→node: %v", err)
		}
		// And back: node → user.
		ct, err = EncryptECDH(node.PrivateKey(), user.PublicKey(), msg)
		if err != nil {
			t.Fatal(err)
		}
		got, err = DecryptECDH(user.PrivateKey(), node.PublicKey(), ct)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("node→user: %v", err)
		}
	}
	ct, err := EncryptECDHToNode(user.PrivateKey(), node.ID(), []byte("by id"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecryptECDH(node.PrivateKey(), user.PublicKey(), ct); err != nil || string(got) != "by id" {
		t.Fatalf("EncryptECDHToNode: %q %v", got, err)
	}
}

func TestDecryptErrors(t *testing.T) {
	node, user, other := newKeyPair(t), newKeyPair(t), newKeyPair(t)
	sealed, err := SealBox(node.PublicKey(), []byte("secret message"))
	if err != nil {
		t.Fatal(err)
	}
	ecdh, err := EncryptECDH(user.PrivateKey(), node.PublicKey(), []byte("secret message"))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		return c
	}
	open := func(k KeyPair) func([]byte) ([]byte, error) {
		return func(ct []byte) ([]byte, error) { return OpenBox(k.PrivateKey(), ct) }
	}
	decrypt := func(k KeyPair, peer KeyPair) func([]byte) ([]byte, error) {
		return func(ct []byte) ([]byte, error) { return DecryptECDH(k.PrivateKey(), peer.PublicKey(), ct) }
	}
	cases := []struct {
		name  string
		f     func([]byte) ([]byte, error)
		ct    []byte
		short bool
	}{
		{"sealed empty", open(node), nil, true},
		{"sealed 47 bytes", open(node), sealed[:47], true},
		{"sealed truncated", open(node), sealed[:len(sealed)-1], false},
		{"sealed tampered epk", open(node), flip(sealed, 0), false},
		{"sealed tampered tag", open(node), flip(sealed, 40), false},
		{"sealed tampered body", open(node), flip(sealed, len(sealed)-1), false},
		{"sealed wrong key", open(other), sealed, false},
		{"sealed extra byte", open(node), append(bytes.Clone(sealed), 0), false},
		{"ecdh empty", decrypt(node, user), nil, true},
		{"ecdh 39 bytes", decrypt(node, user), ecdh[:39], true},
		{"ecdh truncated", decrypt(node, user), ecdh[:len(ecdh)-1], false},
		{"ecdh tampered nonce", decrypt(node, user), flip(ecdh, 3), false},
		{"ecdh tampered tag", decrypt(node, user), flip(ecdh, 30), false},
		{"ecdh tampered body", decrypt(node, user), flip(ecdh, len(ecdh)-1), false},
		{"ecdh wrong peer", decrypt(node, other), ecdh, false},
		{"ecdh wrong key", decrypt(other, user), ecdh, false},
		{"ecdh sealed box input", decrypt(node, user), sealed, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg, err := c.f(c.ct)
			if !errors.Is(err, ErrDecrypt) || msg != nil {
				t.Fatalf("got %q, %v; want ErrDecrypt", msg, err)
			}
			if c.short != errors.Is(err, ErrCiphertextTooShort) {
				t.Fatalf("ErrCiphertextTooShort = %v, want %v (%v)", !c.short, c.short, err)
			}
		})
	}
	if _, err := OpenBox(nil, sealed); !errors.Is(err, ErrInvalidPrivateKey) {
		t.Fatalf("nil key: %v", err)
	}
	if _, err := DecryptECDH(node.PrivateKey(), []byte{1, 2}, ecdh); !errors.Is(err, ErrInvalidPublicKey) {
		t.Fatalf("short peer key: %v", err)
	}
}

func TestVerifyErrors(t *testing.T) {
	kp := newKeyPair(t)
	sig := kp.Sign([]byte("msg"))
	if err := Verify(kp.PublicKey(), []byte("msg"), sig); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		msg, sig []byte
	}{
		"other message": {[]byte("msg2"), sig},
		"flipped bit":   {[]byte("msg"), append([]byte{sig[0] ^ 1}, sig[1:]...)},
		"short sig":     {[]byte("msg"), sig[:63]},
		"empty sig":     {[]byte("msg"), nil},
		"other key sig": {[]byte("msg"), newKeyPair(t).Sign([]byte("msg"))},
	} {
		if err := Verify(kp.PublicKey(), c.msg, c.sig); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if err := Verify(kp.PublicKey()[:5], []byte("msg"), sig); !errors.Is(err, ErrInvalidPublicKey) {
		t.Errorf("short key: %v", err)
	}
}
