package identity

import (
	"errors"
	"fmt"
)

// ErrInvalidSeed is the class of every error about the content of a seed file
// or a seed: corrupt, truncated, unknown version, bad mnemonic.
var ErrInvalidSeed = errors.New("invalid seed")

var (
	// ErrSeedCorrupt means the seed file is neither a legacy raw seed nor a
	// well-formed versioned file.
	ErrSeedCorrupt = fmt.Errorf("seed file corrupt: %w", ErrInvalidSeed)
	// ErrSeedLength means a seed or its raw payload is not 32 bytes long.
	ErrSeedLength = fmt.Errorf("seed length: %w", ErrInvalidSeed)
	// ErrSeedVersion means the seed file carries a well-formed but unknown version.
	ErrSeedVersion = fmt.Errorf("unknown seed version: %w", ErrInvalidSeed)
	// ErrMnemonic means a mnemonic has an unknown word, a bad checksum or not
	// 24 words, or the "1.1.0" JSON payload is invalid.
	ErrMnemonic = fmt.Errorf("invalid mnemonic: %w", ErrInvalidSeed)
)

// ErrSeedMismatch means the seed file and one of its mirrors (or two mirrors)
// hold different seeds; the node refuses to choose an identity.
var ErrSeedMismatch = errors.New("seed copies differ")

// ErrSeedUnavailable means no seed copy could be read while some copy exists
// but cannot be read (I/O error, permissions): the node refuses to create a
// new identity that might replace the unreadable one.
var ErrSeedUnavailable = errors.New("seed file unavailable")

// ErrOrphan means no farm id is configured: neither Config.FarmID nor a
// non-empty farmer_id= on the kernel command line.
var ErrOrphan = errors.New("no farm id configured (orphan node)")

// ErrInvalidFarmID means farmer_id= is not a decimal uint64.
var ErrInvalidFarmID = errors.New("invalid farm id")

// ErrInvalidPublicKey means a public key or node id is not a valid ed25519
// public key: wrong length, bad base58, not a point, small order or outside
// the prime-order subgroup.
var ErrInvalidPublicKey = errors.New("invalid public key")

// ErrInvalidPrivateKey means a private key is not a 64-byte ed25519 private key.
var ErrInvalidPrivateKey = errors.New("invalid private key")

// ErrBadSignature means a signature does not verify (or is not 64 bytes).
var ErrBadSignature = errors.New("bad signature")

// ErrDecrypt means a ciphertext could not be opened: tampered, wrong key or
// truncated.
var ErrDecrypt = errors.New("decryption error")

// ErrCiphertextTooShort means a ciphertext is shorter than the scheme's
// overhead; it matches ErrDecrypt too.
var ErrCiphertextTooShort = fmt.Errorf("ciphertext too short: %w", ErrDecrypt)

// ErrInvalidConfig means a Config field is invalid.
var ErrInvalidConfig = errors.New("invalid identity config")
