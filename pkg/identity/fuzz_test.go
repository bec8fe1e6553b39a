package identity

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func FuzzParseSeedFile(f *testing.F) {
	seed, _ := SeedFromBytes([]byte(vectorSeed))
	user, _ := SeedFile{Version: VersionMnemonic, Seed: seed, ThreebotID: 3}.Marshal()
	for _, s := range [][]byte{
		nil, []byte(vectorSeed), rawFile([]byte(vectorSeed)), user,
		append([]byte(`"1.1.0"`), vectorSeed...), []byte(`"2.0.0"xx`), []byte(`"1.1.0"{"mnemonic":"abandon"}`),
		[]byte(`"`), []byte(`""`), []byte(`"1.0.0`), bytes.Repeat([]byte{'"'}, 40),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sf, err := ParseSeedFile(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidSeed) {
				t.Fatalf("error outside ErrInvalidSeed: %v", err)
			}
			return
		}
		// Accepted: it encodes and decodes back to the same seed, and the
		// encoding is canonical (a second round trip is byte-identical).
		enc, err := sf.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseSeedFile(enc)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if back.Seed != sf.Seed || back.ThreebotID != sf.ThreebotID {
			t.Fatal("round trip changed the seed file")
		}
		if sf.Version == VersionLegacy && back.Version != VersionRaw {
			t.Fatalf("legacy re-encoded as %q", back.Version)
		}
		enc2, _ := back.Marshal()
		if !bytes.Equal(enc, enc2) {
			t.Fatal("encoding not canonical")
		}
	})
}

func FuzzSeedFromMnemonic(f *testing.F) {
	seed, _ := SeedFromBytes([]byte(vectorSeed))
	f.Add(seed.Mnemonic())
	f.Add((Seed{}).Mnemonic())
	f.Add(strings.Repeat("zoo ", 24))
	f.Add(strings.Repeat("abandon ", 11) + "about")
	f.Add("")
	f.Fuzz(func(t *testing.T, m string) {
		s, err := SeedFromMnemonic(m)
		if err != nil {
			if !errors.Is(err, ErrMnemonic) {
				t.Fatalf("error outside ErrMnemonic: %v", err)
			}
			return
		}
		if got := s.Mnemonic(); got != strings.Join(strings.Fields(m), " ") {
			t.Fatalf("accepted %q but encodes back as %q", m, got)
		}
	})
}

func FuzzOpenBox(f *testing.F) {
	node := vectorKeyPair(f)
	valid, _ := SealBox(node.PublicKey(), []byte("fuzz"))
	f.Add(valid)
	f.Add(unhex(f, vectorSealed))
	f.Add(valid[:SealOverhead])
	f.Add([]byte{})
	f.Add(make([]byte, 48))
	f.Fuzz(func(t *testing.T, ct []byte) {
		msg, err := OpenBox(node.PrivateKey(), ct)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) || msg != nil {
				t.Fatalf("got %q, %v", msg, err)
			}
			return
		}
		if len(msg) != len(ct)-SealOverhead {
			t.Fatalf("plaintext of %d bytes from %d", len(msg), len(ct))
		}
	})
}

func FuzzDecryptECDH(f *testing.F) {
	node, user := vectorKeyPair(f), userKeyPair()
	valid, _ := EncryptECDH(user.PrivateKey(), node.PublicKey(), []byte("fuzz"))
	f.Add(valid, []byte(user.PublicKey()))
	f.Add(unhex(f, vectorECDH), []byte(user.PublicKey()))
	f.Add(valid[:ECDHOverhead-1], []byte(user.PublicKey()))
	f.Add(valid, []byte{})
	f.Add(valid, make([]byte, 32))
	f.Fuzz(func(t *testing.T, ct, peer []byte) {
		msg, err := DecryptECDH(node.PrivateKey(), peer, ct)
		if err != nil {
			if msg != nil || !(errors.Is(err, ErrDecrypt) || errors.Is(err, ErrInvalidPublicKey)) {
				t.Fatalf("got %q, %v", msg, err)
			}
			return
		}
		if len(msg) != len(ct)-ECDHOverhead {
			t.Fatalf("plaintext of %d bytes from %d", len(msg), len(ct))
		}
	})
}

func FuzzKeyFromID(f *testing.F) {
	f.Add(vectorNodeID)
	f.Add("")
	f.Add("1111111111111111111111111111111111111111111")
	f.Add("0OIl")
	f.Fuzz(func(t *testing.T, id string) {
		pk, err := KeyFromID(id)
		if err != nil {
			if !errors.Is(err, ErrInvalidPublicKey) {
				t.Fatal(err)
			}
			return
		}
		if len(pk) != 32 {
			t.Fatalf("%d-byte key", len(pk))
		}
		if back, err := KeyFromID(IDFromKey(pk)); err != nil || !bytes.Equal(back, pk) {
			t.Fatal("id round trip")
		}
	})
}

// shellQuote quotes s so splitShell reads it back as one word.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func FuzzParseCmdline(f *testing.F) {
	for _, s := range []string{
		"", "farmer_id=12 runmode=dev\n", `a="b c" d='e f' g=h\ i`, `"unterminated`, `'`, `\`,
		"farmer_id farmer_id=1 farmer_id=2", "=x", `a="\"\\"`, "k=v=w\t\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p := ParseCmdline(b)
		// Re-encoding the parameters, quoted, parses back to the same map.
		var words []string
		for k, vs := range p {
			if k == "" || strings.Contains(k, "=") {
				t.Fatalf("bad key %q", k)
			}
			if len(vs) == 0 {
				words = append(words, shellQuote(k))
			}
			for _, v := range vs {
				words = append(words, shellQuote(k+"="+v))
			}
		}
		// Map order is random; values of one key keep their order.
		back := ParseCmdline([]byte(strings.Join(words, " ")))
		if len(back) != len(p) {
			t.Fatalf("%d keys, re-parsed %d", len(p), len(back))
		}
		for k, vs := range p {
			if got := back[k]; len(got) != len(vs) || strings.Join(got, "\x00") != strings.Join(vs, "\x00") {
				t.Fatalf("key %q: %q re-parsed as %q", k, vs, got)
			}
		}
		// FarmID never panics and its errors are typed.
		if _, err := p.FarmID(); err != nil && !errors.Is(err, ErrOrphan) && !errors.Is(err, ErrInvalidFarmID) {
			t.Fatal(err)
		}
	})
}
