package identity

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/zos-go/zos/pkg"
)

func vectorManager(t testing.TB, cfg Config) *Manager {
	t.Helper()
	m, err := New(cfg, vectorKeyPair(t), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestManagerIdentity(t *testing.T) {
	var im pkg.IdentityManager = vectorManager(t, Config{})
	if im.NodeID() != vectorNodeID || im.NodeID().Identity() != vectorNodeID {
		t.Fatalf("NodeID = %s", im.NodeID())
	}
	sk := im.PrivateKey()
	if len(sk) != 64 || !bytes.Equal(sk[:32], []byte(vectorSeed)) {
		t.Fatal("PrivateKey is not seed ‖ public key")
	}
	sk[0] ^= 1
	if !bytes.Equal(im.PrivateKey()[:32], []byte(vectorSeed)) {
		t.Fatal("PrivateKey returned the manager's own slice")
	}
	if _, err := New(Config{}, KeyPair{}, testLogger(t)); !errors.Is(err, ErrInvalidPrivateKey) {
		t.Fatalf("zero key pair: %v", err)
	}
	if _, err := New(Config{}, vectorKeyPair(t), nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("nil logger: %v", err)
	}
}

func TestManagerSignVerify(t *testing.T) {
	m := vectorManager(t, Config{})
	sig, err := m.Sign([]byte("message"))
	if err != nil {
		t.Fatal(err)
	}
	if string(sig) != string(unhex(t, vectorSig)) {
		t.Fatal("signature differs from PyNaCl's")
	}
	if err := m.Verify([]byte("message"), sig); err != nil {
		t.Fatal(err)
	}
	if err := m.Verify([]byte("massage"), sig); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("other message: %v", err)
	}
	// Verify checks against the node's own key only.
	other := newKeyPair(t)
	if err := m.Verify([]byte("message"), other.Sign([]byte("message"))); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("other signer: %v", err)
	}
}

func TestManagerEncryption(t *testing.T) {
	m := vectorManager(t, Config{})
	// Node-side sealed box, and the user side sealing by node id.
	ct, err := m.Encrypt([]byte("to myself"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := m.Decrypt(ct); err != nil || string(got) != "to myself" {
		t.Fatalf("Decrypt(Encrypt) = %q, %v", got, err)
	}
	ct, err = SealToNode(string(m.NodeID()), []byte("wireguard key"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := m.Decrypt(ct); err != nil || string(got) != "wireguard key" {
		t.Fatalf("user sealed → node: %q, %v", got, err)
	}
	// The node's Encrypt opens with the user-side OpenBox and the node key.
	ct, _ = m.Encrypt([]byte("x"))
	if got, err := OpenBox(vectorKeyPair(t).PrivateKey(), ct); err != nil || string(got) != "x" {
		t.Fatalf("node sealed → OpenBox: %v", err)
	}

	// ECDH both ways with a user.
	user := newKeyPair(t)
	ct, err = EncryptECDHToNode(user.PrivateKey(), string(m.NodeID()), []byte("zdb password"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := m.DecryptECDH(ct, user.PublicKey()); err != nil || string(got) != "zdb password" {
		t.Fatalf("user → node ECDH: %q, %v", got, err)
	}
	ct, err = m.EncryptECDH([]byte("reply"), user.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecryptECDH(user.PrivateKey(), m.PublicKey(), ct); err != nil || string(got) != "reply" {
		t.Fatalf("node → user ECDH: %q, %v", got, err)
	}
	// Errors are typed, never panics.
	if _, err := m.Decrypt([]byte("short")); !errors.Is(err, ErrCiphertextTooShort) {
		t.Fatalf("short sealed: %v", err)
	}
	if _, err := m.DecryptECDH(nil, user.PublicKey()); !errors.Is(err, ErrCiphertextTooShort) {
		t.Fatalf("short ecdh: %v", err)
	}
	if _, err := m.DecryptECDH(ct, newKeyPair(t).PublicKey()); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong peer: %v", err)
	}
	if _, err := m.EncryptECDH([]byte("x"), []byte("not a key")); !errors.Is(err, ErrInvalidPublicKey) {
		t.Fatalf("bad peer key: %v", err)
	}
}

func TestManagerFarmID(t *testing.T) {
	five := uint64(5)
	cmdline := func(s string) func() ([]byte, error) {
		return func() ([]byte, error) { return []byte(s), nil }
	}
	boom := errors.New("boom")
	cases := []struct {
		name string
		cfg  Config
		id   pkg.FarmID
		want error
	}{
		{"config wins", Config{FarmID: &five, Cmdline: cmdline("farmer_id=9")}, 5, nil},
		{"kernel cmdline", Config{Cmdline: cmdline("quiet farmer_id=9\n")}, 9, nil},
		{"no source", Config{}, 0, ErrOrphan},
		{"missing param", Config{Cmdline: cmdline("quiet")}, 0, ErrOrphan},
		{"empty param", Config{Cmdline: cmdline("farmer_id=")}, 0, ErrOrphan},
		{"non numeric", Config{Cmdline: cmdline("farmer_id=abc")}, 0, ErrInvalidFarmID},
		{"read error", Config{Cmdline: func() ([]byte, error) { return nil, boom }}, 0, boom},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, err := vectorManager(t, c.cfg).FarmID()
			if !errors.Is(err, c.want) || id != c.id {
				t.Fatalf("FarmID = %d, %v; want %d, %v", id, err, c.id, c.want)
			}
		})
	}
}

func TestManagerFarmIDRereadsCmdline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cmdline")
	if err := os.WriteFile(path, []byte("farmer_id=1"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := loadCfg(t)
	cfg.Cmdline = CmdlineFile(path)
	m := mustLoad(t, cfg)
	if id, err := m.FarmID(); err != nil || id != 1 {
		t.Fatalf("%d %v", id, err)
	}
	if err := os.WriteFile(path, []byte("farmer_id=2"), 0o600); err != nil {
		t.Fatal(err)
	}
	if id, err := m.FarmID(); err != nil || id != 2 {
		t.Fatalf("after change: %d %v", id, err)
	}
}

func TestManagerConcurrentUse(t *testing.T) {
	m := mustLoad(t, loadCfg(t))
	user := newKeyPair(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			msg := []byte{byte(i)}
			ct, err := m.Encrypt(msg)
			if err == nil {
				var got []byte
				got, err = m.Decrypt(ct)
				if err == nil && !bytes.Equal(got, msg) {
					err = errors.New("sealed box round trip")
				}
			}
			if err == nil {
				var ct2, got []byte
				ct2, err = m.EncryptECDH(msg, user.PublicKey())
				if err == nil {
					got, err = DecryptECDH(user.PrivateKey(), m.PublicKey(), ct2)
				}
				if err == nil && !bytes.Equal(got, msg) {
					err = errors.New("ecdh round trip")
				}
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}
