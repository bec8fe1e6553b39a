package pkg

// Identifier is the interface that defines how an object can be used as an
// identity.
type Identifier interface {
	Identity() string
}

// StrIdentifier is a helper type that implements the Identifier interface on
// top of a simple string.
type StrIdentifier string

// Identity implements the Identifier interface: it returns s unchanged.
func (s StrIdentifier) Identity() string {
	return string(s)
}

// FarmID is the identification of a farm.
type FarmID uint64

// IdentityManager is the interface of the identity module.
type IdentityManager interface {
	// NodeID returns the node id (public key)
	NodeID() StrIdentifier

	// FarmID returns the farm id this node is part of, usually given at
	// boot. An error is returned if the farm id is not configured.
	FarmID() (FarmID, error)

	// Sign signs the message with the node's private key and returns the
	// signature.
	Sign(message []byte) ([]byte, error)

	// Verify reports whether sig is a valid signature of message by the
	// node's public key.
	Verify(message, sig []byte) error

	// Encrypt encrypts message with the public key of the node
	Encrypt(message []byte) ([]byte, error)

	// Decrypt decrypts message with the private key of the node
	Decrypt(message []byte) ([]byte, error)

	// EncryptECDH AES-encrypts msg with a key shared between the node's
	// private key and the other party's publicKey (elliptic-curve
	// Diffie-Hellman); the nonce is prepended to the result.
	EncryptECDH(msg []byte, publicKey []byte) ([]byte, error)

	// DecryptECDH decrypts a message made by EncryptECDH on the other side.
	DecryptECDH(msg []byte, publicKey []byte) ([]byte, error)

	// PrivateKey returns the node's private key.
	PrivateKey() []byte
}
