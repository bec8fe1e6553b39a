// Package block encodes and decodes flist content blocks: the chunking,
// hashing, compression and encryption pipelines of the two flist formats.
//
// The rfs pipeline (format .fl): key = BLAKE2b-256(plain), data = AES-256-GCM
// (key, nonce key[0:12]) of snappy(plain), id = BLAKE2b-256(data). The
// 0-flist pipeline (v0.4 era): key = BLAKE2b-128(plain), data = XXTEA(key) of
// snappy(plain), id = BLAKE2b-128(data). A store keeps data under id.
//
// Decoding always verifies the content: a block whose plain text does not
// hash to its key is refused with ErrCorrupt. For rfs blocks SHA-256 keys (the
// hash of early rfs v2 releases) are accepted as well.
package block

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/klauspost/compress/snappy"
	"golang.org/x/crypto/blake2b"
)

// ChunkSize is the plain size of every block but a file's last, in both
// formats (512 KiB).
const ChunkSize = 512 << 10

// MaxStoredSize bounds the size of an encoded block accepted from a store:
// a 512 KiB chunk that does not compress grows by a few bytes only, so 4 MiB
// leaves room for files built with bigger chunks (0-flist allows larger
// block sizes) while refusing absurd replies.
const MaxStoredSize = 16 << 20

var (
	// ErrCorrupt is returned when a block cannot be decrypted, decompressed,
	// or does not hash to its key.
	ErrCorrupt = errors.New("corrupt block")
	// ErrInvalidBlock is returned for a block whose id or key has the wrong
	// length for its codec.
	ErrInvalidBlock = errors.New("invalid block reference")
)

// Block references one encoded chunk: ID is its store key, Key decrypts it
// (and is the hash of its plain text).
type Block struct {
	ID  []byte
	Key []byte
}

// Codec is one block pipeline. Implementations are stateless and safe for
// concurrent use.
type Codec interface {
	// Name of the codec ("rfs" or "0-flist").
	Name() string
	// Encode returns the block reference and the bytes to store for plain.
	Encode(plain []byte) (Block, []byte, error)
	// Decode verifies and decodes stored bytes into the plain chunk.
	// Errors wrap ErrCorrupt or ErrInvalidBlock.
	Decode(b Block, stored []byte) ([]byte, error)
	// IDLen is the length of block ids (and keys) of this codec.
	IDLen() int
}

// RFS is the codec of rfs .fl flists.
var RFS Codec = rfsCodec{}

// Zero is the codec of 0-flist (v0.4) flists.
var Zero Codec = zeroCodec{}

type rfsCodec struct{}

func (rfsCodec) Name() string { return "rfs" }
func (rfsCodec) IDLen() int   { return 32 }

func (rfsCodec) Encode(plain []byte) (Block, []byte, error) {
	key := blake2b.Sum256(plain)
	compressed := snappy.Encode(nil, plain)
	gcm, err := newGCM(key[:])
	if err != nil {
		return Block{}, nil, err
	}
	data := gcm.Seal(nil, key[:12], compressed, nil)
	id := blake2b.Sum256(data)
	return Block{ID: id[:], Key: key[:]}, data, nil
}

func (rfsCodec) Decode(b Block, stored []byte) ([]byte, error) {
	if len(b.ID) != 32 || len(b.Key) != 32 {
		return nil, fmt.Errorf("rfs block id %d bytes, key %d bytes: %w", len(b.ID), len(b.Key), ErrInvalidBlock)
	}
	if len(stored) > MaxStoredSize {
		return nil, fmt.Errorf("rfs block %x: %d bytes: %w", b.ID, len(stored), ErrCorrupt)
	}
	gcm, err := newGCM(b.Key)
	if err != nil {
		return nil, err
	}
	compressed, err := gcm.Open(nil, b.Key[:12], stored, nil)
	if err != nil {
		return nil, fmt.Errorf("rfs block %x: decrypt: %w", b.ID, ErrCorrupt)
	}
	plain, err := decompress(compressed)
	if err != nil {
		return nil, fmt.Errorf("rfs block %x: %w", b.ID, err)
	}
	if sum := blake2b.Sum256(plain); !bytes.Equal(sum[:], b.Key) {
		if sum := sha256.Sum256(plain); !bytes.Equal(sum[:], b.Key) {
			return nil, fmt.Errorf("rfs block %x: content does not match its key: %w", b.ID, ErrCorrupt)
		}
	}
	return plain, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	c, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes key: %w", ErrInvalidBlock)
	}
	return cipher.NewGCM(c)
}

type zeroCodec struct{}

func (zeroCodec) Name() string { return "0-flist" }
func (zeroCodec) IDLen() int   { return 16 }

func (zeroCodec) Encode(plain []byte) (Block, []byte, error) {
	key := blake2b128(plain)
	data := xxteaEncrypt(snappy.Encode(nil, plain), key)
	id := blake2b128(data)
	return Block{ID: id, Key: key}, data, nil
}

func (zeroCodec) Decode(b Block, stored []byte) ([]byte, error) {
	if len(b.ID) != 16 || len(b.Key) != 16 {
		return nil, fmt.Errorf("0-flist block id %d bytes, key %d bytes: %w", len(b.ID), len(b.Key), ErrInvalidBlock)
	}
	if len(stored) > MaxStoredSize {
		return nil, fmt.Errorf("0-flist block %x: %d bytes: %w", b.ID, len(stored), ErrCorrupt)
	}
	compressed, err := xxteaDecrypt(stored, b.Key)
	if err != nil {
		return nil, fmt.Errorf("0-flist block %x: %w", b.ID, err)
	}
	plain, err := decompress(compressed)
	if err != nil {
		return nil, fmt.Errorf("0-flist block %x: %w", b.ID, err)
	}
	if !bytes.Equal(blake2b128(plain), b.Key) {
		return nil, fmt.Errorf("0-flist block %x: content does not match its key: %w", b.ID, ErrCorrupt)
	}
	return plain, nil
}

// decompress decodes a raw snappy block, refusing sizes over MaxStoredSize
// before allocating.
func decompress(src []byte) ([]byte, error) {
	n, err := snappy.DecodedLen(src)
	if err != nil || n > MaxStoredSize {
		return nil, fmt.Errorf("snappy header: %w", ErrCorrupt)
	}
	plain, err := snappy.Decode(make([]byte, n), src)
	if err != nil {
		return nil, fmt.Errorf("snappy: %w", ErrCorrupt)
	}
	return plain, nil
}

func blake2b128(p []byte) []byte {
	h, _ := blake2b.New(16, nil) // size 16 without key never fails
	h.Write(p)
	return h.Sum(nil)
}

// Verify reports whether plain is the content of b for codec c, comparing
// its hash to b.Key; it is how cached plain blocks are re-checked.
func Verify(c Codec, b Block, plain []byte) bool {
	switch c.IDLen() {
	case 16:
		return bytes.Equal(blake2b128(plain), b.Key)
	default:
		if sum := blake2b.Sum256(plain); bytes.Equal(sum[:], b.Key) {
			return true
		}
		sum := sha256.Sum256(plain)
		return bytes.Equal(sum[:], b.Key)
	}
}

// ForIDLen returns the codec whose ids have n bytes (16: 0-flist, 32: rfs).
func ForIDLen(n int) (Codec, error) {
	switch n {
	case 16:
		return Zero, nil
	case 32:
		return RFS, nil
	}
	return nil, fmt.Errorf("block id of %d bytes: %w", n, ErrInvalidBlock)
}
