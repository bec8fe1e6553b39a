package provision

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/gridtypes"
)

// ErrSecret is wrapped by every secret that cannot be opened.
var ErrSecret = errors.New("secret cannot be decrypted")

// NodeSecrets opens workload secrets with the node's identity, as the
// original: SecretSealed fields and every secret of a version 0 reservation
// are sealed boxes to the node key; SecretUser fields of later versions are
// ECDH between the owner's key and the node's. Since some of the original's
// clients sealed secrets of version 2 reservations anyway, a SecretUser
// field that fails ECDH is tried as a sealed box too (identity.md §6).
type NodeSecrets struct {
	Identity pkg.IdentityManager
	Users    Users
}

// Open implements SecretOpener.
func (s NodeSecrets) Open(ctx context.Context, r *gridtypes.Reservation, kind gridtypes.SecretKind, hexCiphertext string) (string, error) {
	ct, err := hex.DecodeString(hexCiphertext)
	if err != nil {
		return "", fmt.Errorf("not hex: %w", ErrSecret)
	}
	if kind == gridtypes.SecretUser && r.Version >= 1 {
		pk, err := s.Users.PublicKey(ctx, r.UserID)
		if err != nil {
			return "", fmt.Errorf("user %d key: %w: %w", r.UserID, ErrTemporary, err)
		}
		if pt, err := s.Identity.DecryptECDH(ct, pk); err == nil {
			return string(pt), nil
		}
	}
	pt, err := s.Identity.Decrypt(ct)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrSecret, err)
	}
	return string(pt), nil
}
