package identity

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os/exec"
	"testing"

	"github.com/zos-go/zos/internal/testutil"
)

// pyNaClScript plays the user (and libsodium) side: PyNaCl 1.5 binds
// libsodium. It reads a JSON job on stdin and prints a JSON report.
const pyNaClScript = `
import sys, json, hashlib
from binascii import hexlify, unhexlify
import nacl.signing, nacl.public, nacl.secret, nacl.bindings, nacl.exceptions

job = json.load(sys.stdin)
h = lambda b: hexlify(bytes(b)).decode()
node = nacl.signing.SigningKey(unhexlify(job["node_seed"]))
user = nacl.signing.SigningKey(unhexlify(job["user_seed"]))
node_cpk = node.verify_key.to_curve25519_public_key()
node_csk = node.to_curve25519_private_key()

# js-sdk recipe (jumpscale/sals/zos/crypto.py): the user encrypts to the node's
# public_key_hex with its own key.
def js_sdk_key(public_key_hex):
    user_private = user.to_curve25519_private_key()
    node_public = nacl.signing.VerifyKey(unhexlify(public_key_hex)).to_curve25519_public_key()
    shared = nacl.bindings.crypto_scalarmult(bytes(user_private), bytes(node_public))
    return hashlib.blake2b(shared, digest_size=32).digest()

key = js_sdk_key(h(node.verify_key))
out = {
    "node_pk": h(node.verify_key),
    "node_cpk": h(node_cpk),
    "node_csk": h(node_csk),
    "user_pk": h(user.verify_key),
    "user_cpk": h(user.verify_key.to_curve25519_public_key()),
    "user_csk": h(user.to_curve25519_private_key()),
    "shared_key": h(key),
    "cases": [],
}
for c in job["cases"]:
    msg = unhexlify(c["msg"])
    r = {}
    r["py_sealed"] = h(nacl.public.SealedBox(node_cpk).encrypt(msg))
    r["go_sealed_opened"] = h(nacl.public.SealedBox(node_csk).decrypt(unhexlify(c["go_sealed"])))
    r["py_ecdh"] = h(nacl.secret.SecretBox(key).encrypt(msg))
    r["go_ecdh_opened"] = h(nacl.secret.SecretBox(key).decrypt(unhexlify(c["go_ecdh"])))
    try:
        node.verify_key.verify(msg, unhexlify(c["go_sig"]))
        r["go_sig_ok"] = True
    except nacl.exceptions.BadSignatureError:
        r["go_sig_ok"] = False
    tampered = bytearray(unhexlify(c["go_sealed"]))
    tampered[-1] ^= 1
    try:
        nacl.public.SealedBox(node_csk).decrypt(bytes(tampered))
        r["tampered_rejected"] = False
    except nacl.exceptions.CryptoError:
        r["tampered_rejected"] = True
    out["cases"].append(r)

rejected = {}
for name, pk in job["bad_pks"].items():
    try:
        nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(unhexlify(pk))
        rejected[name] = False
    except Exception:
        rejected[name] = True
out["bad_pk_rejected"] = rejected
json.dump(out, sys.stdout)
`

// pyNaCl returns a python3 that can import nacl (Debian's python3-nacl);
// without one the test skips, or fails under ZOS_TEST_STRICT=1.
func pyNaCl(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	for _, p := range candidates {
		if exec.Command(p, "-c", "import nacl.bindings, nacl.public").Run() == nil {
			return p
		}
	}
	if testutil.Strict() {
		t.Fatalf("requires python3 with PyNaCl (Debian package python3-nacl)")
	}
	t.Skip("requires python3 with PyNaCl (Debian package python3-nacl)")
	return ""
}

type pyCase struct {
	Msg      string `json:"msg"`
	GoSealed string `json:"go_sealed"`
	GoECDH   string `json:"go_ecdh"`
	GoSig    string `json:"go_sig"`
}

type pyReport struct {
	NodePK        string          `json:"node_pk"`
	NodeCPK       string          `json:"node_cpk"`
	NodeCSK       string          `json:"node_csk"`
	UserPK        string          `json:"user_pk"`
	UserCPK       string          `json:"user_cpk"`
	UserCSK       string          `json:"user_csk"`
	SharedKey     string          `json:"shared_key"`
	BadPKRejected map[string]bool `json:"bad_pk_rejected"`
	Cases         []struct {
		PySealed         string `json:"py_sealed"`
		GoSealedOpened   string `json:"go_sealed_opened"`
		PyECDH           string `json:"py_ecdh"`
		GoECDHOpened     string `json:"go_ecdh_opened"`
		GoSigOK          bool   `json:"go_sig_ok"`
		TamperedRejected bool   `json:"tampered_rejected"`
	} `json:"cases"`
}

func TestPyNaClInterop(t *testing.T) {
	python := pyNaCl(t)
	nodeSeed, userSeed := mustSeed(t), mustSeed(t)
	node, user := NewKeyPair(nodeSeed), NewKeyPair(userSeed)

	msgs := [][]byte{{}, []byte("x"), []byte("wireguard private key"), bytes.Repeat([]byte{0xa5}, 4096)}
	job := map[string]any{
		"node_seed": hex.EncodeToString(nodeSeed[:]),
		"user_seed": hex.EncodeToString(userSeed[:]),
	}
	var cases []pyCase
	for _, msg := range msgs {
		sealed, err := SealToNode(node.ID(), msg) // the user-side helper
		if err != nil {
			t.Fatal(err)
		}
		// The node answers the user with ECDH; PyNaCl opens it as the user.
		ecdh, err := EncryptECDH(node.PrivateKey(), user.PublicKey(), msg)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, pyCase{
			Msg:      hex.EncodeToString(msg),
			GoSealed: hex.EncodeToString(sealed),
			GoECDH:   hex.EncodeToString(ecdh),
			GoSig:    hex.EncodeToString(node.Sign(msg)),
		})
	}
	job["cases"] = cases
	bad := map[string]string{}
	for name, pk := range badPublicKeys(t) {
		if len(pk) == 32 { // PyNaCl checks the length itself before libsodium
			bad[name] = hex.EncodeToString(pk)
		}
	}
	job["bad_pks"] = bad

	in, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "-c", pyNaClScript)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	var rep pyReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("python output: %v: %s", err, out)
	}

	t.Run("key conversions", func(t *testing.T) {
		ncpk, _ := PublicKeyToCurve25519(node.PublicKey())
		ncsk, _ := PrivateKeyToCurve25519(node.PrivateKey())
		ucpk, _ := PublicKeyToCurve25519(user.PublicKey())
		ucsk, _ := PrivateKeyToCurve25519(user.PrivateKey())
		key, err := SharedKey(node.PrivateKey(), user.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		for name, c := range map[string][2]string{
			"node ed25519 pk": {hex.EncodeToString(node.PublicKey()), rep.NodePK},
			"user ed25519 pk": {hex.EncodeToString(user.PublicKey()), rep.UserPK},
			"node curve pk":   {hex.EncodeToString(ncpk[:]), rep.NodeCPK},
			"node curve sk":   {hex.EncodeToString(ncsk[:]), rep.NodeCSK},
			"user curve pk":   {hex.EncodeToString(ucpk[:]), rep.UserCPK},
			"user curve sk":   {hex.EncodeToString(ucsk[:]), rep.UserCSK},
			"shared key":      {hex.EncodeToString(key[:]), rep.SharedKey},
		} {
			if c[0] != c[1] {
				t.Errorf("%s: go %s, pynacl %s", name, c[0], c[1])
			}
		}
	})
	t.Run("invalid public keys", func(t *testing.T) {
		if len(rep.BadPKRejected) != len(bad) {
			t.Fatalf("python judged %d keys of %d", len(rep.BadPKRejected), len(bad))
		}
		for name, rejected := range rep.BadPKRejected {
			if !rejected {
				t.Errorf("%s: libsodium accepts a key we reject", name)
			}
		}
	})
	if len(rep.Cases) != len(msgs) {
		t.Fatalf("python returned %d cases", len(rep.Cases))
	}
	for i, msg := range msgs {
		c := rep.Cases[i]
		want := hex.EncodeToString(msg)
		if c.GoSealedOpened != want {
			t.Errorf("msg %d: PyNaCl SealedBox opened Go's seal as %.40s…", i, c.GoSealedOpened)
		}
		if c.GoECDHOpened != want {
			t.Errorf("msg %d: PyNaCl SecretBox opened Go's ECDH as %.40s…", i, c.GoECDHOpened)
		}
		if !c.GoSigOK {
			t.Errorf("msg %d: PyNaCl rejects Go's signature", i)
		}
		if !c.TamperedRejected {
			t.Errorf("msg %d: PyNaCl opened a tampered box", i)
		}
		got, err := OpenBox(node.PrivateKey(), unhex(t, c.PySealed))
		if err != nil || !bytes.Equal(got, msg) {
			t.Errorf("msg %d: PyNaCl SealedBox → Go Decrypt: %v", i, err)
		}
		got, err = DecryptECDH(node.PrivateKey(), user.PublicKey(), unhex(t, c.PyECDH))
		if err != nil || !bytes.Equal(got, msg) {
			t.Errorf("msg %d: js-sdk ECDH → Go DecryptECDH: %v", i, err)
		}
		// The manager opens the same bytes.
		m, err := New(Config{}, node, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := m.Decrypt(unhex(t, c.PySealed)); err != nil || !bytes.Equal(got, msg) {
			t.Errorf("msg %d: Manager.Decrypt of PyNaCl seal: %v", i, err)
		}
		if got, err := m.DecryptECDH(unhex(t, c.PyECDH), user.PublicKey()); err != nil || !bytes.Equal(got, msg) {
			t.Errorf("msg %d: Manager.DecryptECDH of js-sdk box: %v", i, err)
		}
	}
}

func mustSeed(t testing.TB) Seed {
	t.Helper()
	s, err := GenerateSeed()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
