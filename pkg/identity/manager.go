package identity

import (
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/zos-go/zos/pkg"
)

// DefaultSeedPath is the seed file of the original node (identityd's root on
// the cache filesystem); cmd/ sets Config.SeedPath from its own root.
const DefaultSeedPath = "/var/cache/modules/identityd/seed.txt"

// DefaultCmdlinePath is the kernel command line DefaultConfig reads.
const DefaultCmdlinePath = "/proc/cmdline"

// Config configures a Manager.
type Config struct {
	// SeedPath is the seed file (absolute), created on first start.
	SeedPath string
	// MirrorPaths are absolute paths of copies of the seed file, normally on
	// other pools. Missing copies are written; a missing SeedPath is restored
	// from a valid copy; copies holding another seed are ErrSeedMismatch.
	// Missing parent directories are created, so cmd/ lists only paths on
	// mounted pools.
	MirrorPaths []string
	// FarmID, when not nil, is the farm id (from cmd/ flags or config) and
	// wins over the kernel command line.
	FarmID *uint64
	// Cmdline returns the kernel command line; FarmID calls it on every call
	// when FarmID is nil. nil means no command line: the node is orphan.
	Cmdline func() ([]byte, error)
}

// DefaultConfig returns the original's seed path, no mirror, and the farm id
// read from /proc/cmdline.
func DefaultConfig() Config {
	return Config{SeedPath: DefaultSeedPath, Cmdline: CmdlineFile(DefaultCmdlinePath)}
}

// Validate checks that SeedPath and MirrorPaths are absolute, clean of
// duplicates, and returns an error matching ErrInvalidConfig otherwise.
func (c Config) Validate() error {
	seen := map[string]bool{}
	for i, p := range append([]string{c.SeedPath}, c.MirrorPaths...) {
		field := "SeedPath"
		if i > 0 {
			field = fmt.Sprintf("MirrorPaths[%d]", i-1)
		}
		if p == "" || !filepath.IsAbs(p) {
			return fmt.Errorf("%s %q is not an absolute path: %w", field, p, ErrInvalidConfig)
		}
		clean := filepath.Clean(p)
		if seen[clean] {
			return fmt.Errorf("%s %q is listed twice: %w", field, p, ErrInvalidConfig)
		}
		seen[clean] = true
	}
	return nil
}

// Manager is the node identity: it implements pkg.IdentityManager with the
// key pair of the seed file. Its methods are safe for concurrent use; the key
// never changes after construction.
type Manager struct {
	cfg Config
	kp  KeyPair
	id  string
	log *slog.Logger
}

var _ pkg.IdentityManager = (*Manager)(nil)

// New returns a Manager for an existing key pair; it does no I/O (Load reads
// or creates the seed file, then calls New).
func New(cfg Config, kp KeyPair, log *slog.Logger) (*Manager, error) {
	if len(kp.priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("identity manager: %w", ErrInvalidPrivateKey)
	}
	if log == nil {
		return nil, fmt.Errorf("identity manager: nil logger: %w", ErrInvalidConfig)
	}
	return &Manager{cfg: cfg, kp: kp, id: kp.ID(), log: log}, nil
}

// NodeID implements pkg.IdentityManager: base58 of the public key.
func (m *Manager) NodeID() pkg.StrIdentifier { return pkg.StrIdentifier(m.id) }

// PublicKey returns a copy of the node's ed25519 public key.
func (m *Manager) PublicKey() ed25519.PublicKey { return m.kp.PublicKey() }

// KeyPair returns the node's key pair.
func (m *Manager) KeyPair() KeyPair { return m.kp }

// FarmID implements pkg.IdentityManager: Config.FarmID when set, else
// farmer_id= of the kernel command line, read again on every call. No farm id
// is ErrOrphan, a non-numeric one ErrInvalidFarmID.
func (m *Manager) FarmID() (pkg.FarmID, error) {
	if m.cfg.FarmID != nil {
		return pkg.FarmID(*m.cfg.FarmID), nil
	}
	if m.cfg.Cmdline == nil {
		return 0, fmt.Errorf("farm id: no kernel command line: %w", ErrOrphan)
	}
	b, err := m.cfg.Cmdline()
	if err != nil {
		return 0, fmt.Errorf("farm id: %w", err)
	}
	id, err := ParseCmdline(b).FarmID()
	if err != nil {
		return 0, fmt.Errorf("farm id: %w", err)
	}
	return pkg.FarmID(id), nil
}

// Sign implements pkg.IdentityManager: pure ed25519 signature (64 bytes).
func (m *Manager) Sign(message []byte) ([]byte, error) { return m.kp.Sign(message), nil }

// Verify implements pkg.IdentityManager: checks sig against the node's own
// public key; a bad signature is ErrBadSignature.
func (m *Manager) Verify(message, sig []byte) error {
	if err := Verify(m.kp.priv.Public().(ed25519.PublicKey), message, sig); err != nil {
		return fmt.Errorf("node %s: %w", m.id, err)
	}
	return nil
}

// Encrypt implements pkg.IdentityManager: SealBox to the node's own key.
func (m *Manager) Encrypt(message []byte) ([]byte, error) {
	return SealBox(m.kp.priv.Public().(ed25519.PublicKey), message)
}

// Decrypt implements pkg.IdentityManager: OpenBox with the node's key
// (ErrCiphertextTooShort, ErrDecrypt).
func (m *Manager) Decrypt(message []byte) ([]byte, error) { return OpenBox(m.kp.priv, message) }

// EncryptECDH implements pkg.IdentityManager: EncryptECDH with the node's key
// to the ed25519 publicKey of a peer (32 bytes, else ErrInvalidPublicKey).
func (m *Manager) EncryptECDH(msg []byte, publicKey []byte) ([]byte, error) {
	return EncryptECDH(m.kp.priv, publicKey, msg)
}

// DecryptECDH implements pkg.IdentityManager: DecryptECDH with the node's key
// and the ed25519 publicKey of the peer that encrypted msg.
func (m *Manager) DecryptECDH(msg []byte, publicKey []byte) ([]byte, error) {
	return DecryptECDH(m.kp.priv, publicKey, msg)
}

// PrivateKey implements pkg.IdentityManager: a copy of the 64-byte ed25519
// private key (networkd derives its Yggdrasil key from it).
func (m *Manager) PrivateKey() []byte { return m.kp.PrivateKey() }
