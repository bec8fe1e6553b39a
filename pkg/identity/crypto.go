package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"

	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/nacl/box"
	"golang.org/x/crypto/nacl/secretbox"
)

const (
	// SealOverhead is the number of bytes SealBox adds to a message: the
	// ephemeral X25519 public key (32) and the Poly1305 tag (16).
	SealOverhead = box.AnonymousOverhead
	// NonceSize is the size of the random nonce that prefixes EncryptECDH output.
	NonceSize = 24
	// ECDHOverhead is the number of bytes EncryptECDH adds to a message: the
	// nonce (24) and the Poly1305 tag (16).
	ECDHOverhead = NonceSize + secretbox.Overhead
)

// SealBox encrypts message to the holder of the ed25519 private key matching
// recipient, with libsodium's anonymous sealed box (crypto_box_seal): the
// recipient key is converted to X25519, a fresh ephemeral X25519 pair is
// drawn, nonce = BLAKE2b-192(ephemeral pk ‖ recipient pk) and the output is
// ephemeral pk (32) ‖ crypto_box (XSalsa20-Poly1305). PyNaCl's SealedBox opens
// it. An invalid recipient key is ErrInvalidPublicKey.
func SealBox(recipient ed25519.PublicKey, message []byte) ([]byte, error) {
	pk, err := PublicKeyToCurve25519(recipient)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	out, err := box.SealAnonymous(nil, message, &pk, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return out, nil
}

// SealToNode is SealBox to the public key a node id (base58) encodes.
func SealToNode(nodeID string, message []byte) ([]byte, error) {
	pk, err := KeyFromID(nodeID)
	if err != nil {
		return nil, fmt.Errorf("seal to node: %w", err)
	}
	return SealBox(pk, message)
}

// OpenBox decrypts a SealBox (or libsodium crypto_box_seal) ciphertext with
// the recipient's ed25519 private key. A ciphertext shorter than SealOverhead
// is ErrCiphertextTooShort; a tampered one or one sealed to another key is
// ErrDecrypt.
func OpenBox(sk ed25519.PrivateKey, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < SealOverhead {
		return nil, fmt.Errorf("sealed box of %d bytes, need %d: %w", len(ciphertext), SealOverhead, ErrCiphertextTooShort)
	}
	csk, err := PrivateKeyToCurve25519(sk)
	if err != nil {
		return nil, fmt.Errorf("open sealed box: %w", err)
	}
	cpk, err := PublicKeyToCurve25519(sk.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, fmt.Errorf("open sealed box: own %w", err)
	}
	msg, ok := box.OpenAnonymous(nil, ciphertext, &cpk, &csk)
	if !ok {
		return nil, fmt.Errorf("open sealed box: %w", ErrDecrypt)
	}
	return nonNil(msg), nil
}

// SharedKey returns the key EncryptECDH and DecryptECDH use between the holder
// of sk and the holder of the private key of peer:
// BLAKE2b-256(X25519(curve25519(sk), curve25519(peer))). It is symmetric:
// SharedKey(a, B) == SharedKey(b, A). An invalid key, or a peer point that
// gives an all-zero X25519 output, is ErrInvalidPublicKey/ErrInvalidPrivateKey.
func SharedKey(sk ed25519.PrivateKey, peer ed25519.PublicKey) ([32]byte, error) {
	var key [32]byte
	csk, err := PrivateKeyToCurve25519(sk)
	if err != nil {
		return key, err
	}
	cpk, err := PublicKeyToCurve25519(peer)
	if err != nil {
		return key, err
	}
	shared, err := curve25519.X25519(csk[:], cpk[:])
	if err != nil { // low-order point: unreachable after the subgroup check
		return key, fmt.Errorf("x25519: %w", ErrInvalidPublicKey)
	}
	return blake2b.Sum256(shared), nil
}

// EncryptECDH encrypts message for the holder of the private key of peer, with
// the key SharedKey(sk, peer): output = random nonce (24) ‖
// secretbox(message, nonce, key) (XSalsa20-Poly1305), the same bytes as
// PyNaCl's SecretBox(key).encrypt (the js-sdk recipe).
func EncryptECDH(sk ed25519.PrivateKey, peer ed25519.PublicKey, message []byte) ([]byte, error) {
	key, err := SharedKey(sk, peer)
	if err != nil {
		return nil, fmt.Errorf("encrypt ecdh: %w", err)
	}
	var nonce [NonceSize]byte
	if _, err := io.ReadFull(rand.Reader, nonce[:]); err != nil {
		return nil, fmt.Errorf("encrypt ecdh: nonce: %w", err)
	}
	out := make([]byte, NonceSize, ECDHOverhead+len(message))
	copy(out, nonce[:])
	return secretbox.Seal(out, message, &nonce, &key), nil
}

// EncryptECDHToNode is EncryptECDH to the public key a node id encodes: what a
// user does with its own private key to send a secret to a node.
func EncryptECDHToNode(sk ed25519.PrivateKey, nodeID string, message []byte) ([]byte, error) {
	pk, err := KeyFromID(nodeID)
	if err != nil {
		return nil, fmt.Errorf("encrypt ecdh to node: %w", err)
	}
	return EncryptECDH(sk, pk, message)
}

// DecryptECDH decrypts an EncryptECDH ciphertext made with the peer's private
// key and sk's public key (or sk and peer). A ciphertext shorter than
// ECDHOverhead is ErrCiphertextTooShort; a tampered one or a wrong key pair is
// ErrDecrypt.
func DecryptECDH(sk ed25519.PrivateKey, peer ed25519.PublicKey, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < ECDHOverhead {
		return nil, fmt.Errorf("ecdh ciphertext of %d bytes, need %d: %w", len(ciphertext), ECDHOverhead, ErrCiphertextTooShort)
	}
	key, err := SharedKey(sk, peer)
	if err != nil {
		return nil, fmt.Errorf("decrypt ecdh: %w", err)
	}
	var nonce [NonceSize]byte
	copy(nonce[:], ciphertext[:NonceSize])
	msg, ok := secretbox.Open(nil, ciphertext[NonceSize:], &nonce, &key)
	if !ok {
		return nil, fmt.Errorf("decrypt ecdh: %w", ErrDecrypt)
	}
	return nonNil(msg), nil
}

// Verify reports whether sig is a valid pure ed25519 signature of message by
// pk: nil, or ErrBadSignature (also for a signature that is not 64 bytes); a
// public key that is not 32 bytes is ErrInvalidPublicKey.
func Verify(pk ed25519.PublicKey, message, sig []byte) error {
	if len(pk) != ed25519.PublicKeySize {
		return fmt.Errorf("public key of %d bytes: %w", len(pk), ErrInvalidPublicKey)
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pk, message, sig) {
		return ErrBadSignature
	}
	return nil
}

// nonNil makes an empty plaintext a non-nil empty slice.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
