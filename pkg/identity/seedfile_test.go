package identity

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func rawFile(seed []byte) []byte { return append([]byte(`"1.0.0"`), seed...) }

func mnemonicFile(t testing.TB, payload any) []byte {
	t.Helper()
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte(`"1.1.0"`), b...)
}

func TestParseSeedFileFormats(t *testing.T) {
	seed, _ := SeedFromBytes([]byte(vectorSeed))
	cases := []struct {
		name    string
		data    []byte
		version string
		tid     int64
	}{
		{"legacy raw", []byte(vectorSeed), VersionLegacy, 0},
		{"1.0.0 raw", rawFile([]byte(vectorSeed)), VersionRaw, 0},
		{"1.1.0 raw (v0.4.9 upgrade quirk)", append([]byte(`"1.1.0"`), vectorSeed...), VersionLegacy, 0},
		{"1.1.0 mnemonic", mnemonicFile(t, map[string]any{"mnemonic": seed.Mnemonic(), "threebotid": 42}), VersionMnemonic, 42},
		{"1.1.0 no threebotid", mnemonicFile(t, map[string]any{"mnemonic": seed.Mnemonic()}), VersionMnemonic, 0},
		{"1.1.0 extra fields and spaces", append([]byte(`"1.1.0"`), []byte(" {\"threebotid\": 7, \"x\": [1], \"mnemonic\": \"  "+seed.Mnemonic()+" \"}\n")...), VersionMnemonic, 7},
		// A legacy seed that happens to start with a quote is still legacy.
		{"legacy starting with quote", []byte(`"` + vectorSeed[1:]), VersionLegacy, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := ParseSeedFile(c.data)
			if err != nil {
				t.Fatal(err)
			}
			if f.Version != c.version || f.ThreebotID != c.tid {
				t.Fatalf("version %q tid %d, want %q %d", f.Version, f.ThreebotID, c.version, c.tid)
			}
			want := seed
			if c.name == "legacy starting with quote" {
				want, _ = SeedFromBytes(c.data)
			}
			if f.Seed != want {
				t.Fatal("wrong seed")
			}
			if NewKeyPair(f.Seed).ID() != vectorNodeID && c.name != "legacy starting with quote" {
				t.Fatal("wrong node id")
			}
		})
	}
}

func TestParseSeedFileErrors(t *testing.T) {
	seed, _ := SeedFromBytes([]byte(vectorSeed))
	words := strings.Fields(seed.Mnemonic())
	badChecksum := append([]string(nil), words...)
	badChecksum[0], badChecksum[1] = badChecksum[1], badChecksum[0]
	if badChecksum[0] == badChecksum[1] {
		t.Fatal("test needs two different words")
	}
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrSeedLength},
		{"short raw", []byte(vectorSeed[:31]), ErrSeedLength},
		{"one byte", []byte{0}, ErrSeedLength},
		{"long raw", []byte(vectorSeed + "x"), ErrSeedCorrupt},
		{"garbage", bytes.Repeat([]byte{0xff}, 100), ErrSeedCorrupt},
		{"version only", []byte(`"1.0.0"`), ErrSeedLength},
		{"1.0.0 short", rawFile([]byte(vectorSeed[:31])), ErrSeedLength},
		{"1.0.0 long", rawFile([]byte(vectorSeed + "!")), ErrSeedLength},
		{"1.0.0 truncated by a crash", rawFile([]byte(vectorSeed))[:20], ErrSeedLength},
		{"unknown version", append([]byte(`"2.0.0"`), vectorSeed...), ErrSeedVersion},
		{"lone quote", []byte(`"`), ErrSeedLength},
		{"prerelease version", append([]byte(`"1.0.0-rc1"`), vectorSeed...), ErrSeedVersion},
		{"bad version text", append([]byte(`"one"`), vectorSeed...), ErrSeedCorrupt},
		{"unterminated version", append([]byte(`"1.0.0`), vectorSeed...), ErrSeedCorrupt},
		{"1.1.0 empty payload", []byte(`"1.1.0"`), ErrMnemonic},
		{"1.1.0 bad json", []byte(`"1.1.0"{"mnemonic": `), ErrMnemonic},
		{"1.1.0 raw seed 31 bytes", append([]byte(`"1.1.0"`), vectorSeed[:31]...), ErrMnemonic},
		{"1.1.0 raw seed 33 bytes", append([]byte(`"1.1.0"`), vectorSeed+"x"...), ErrMnemonic},
		{"1.1.0 trailing garbage", append(mnemonicFile(t, map[string]any{"mnemonic": seed.Mnemonic()}), 'x'), ErrMnemonic},
		{"1.1.0 no mnemonic", mnemonicFile(t, map[string]any{"threebotid": 1}), ErrMnemonic},
		{"1.1.0 mnemonic not a string", mnemonicFile(t, map[string]any{"mnemonic": 12}), ErrMnemonic},
		{"1.1.0 threebotid not a number", mnemonicFile(t, map[string]any{"mnemonic": seed.Mnemonic(), "threebotid": "x"}), ErrMnemonic},
		{"1.1.0 bad checksum", mnemonicFile(t, map[string]any{"mnemonic": strings.Join(badChecksum, " ")}), ErrMnemonic},
		{"1.1.0 unknown word", mnemonicFile(t, map[string]any{"mnemonic": strings.Join(append(words[:23:23], "qwerty"), " ")}), ErrMnemonic},
		{"1.1.0 12 words", mnemonicFile(t, map[string]any{"mnemonic": strings.Repeat("abandon ", 11) + "about"}), ErrMnemonic},
		{"1.1.0 empty mnemonic", mnemonicFile(t, map[string]any{"mnemonic": ""}), ErrMnemonic},
	}
	// "1.2.0" with a valid 1.1.0 payload is unknown, not guessed.
	cases = append(cases, struct {
		name string
		data []byte
		want error
	}{"1.2.0 with json", append([]byte(`"1.2.0"`), mnemonicFile(t, map[string]any{"mnemonic": seed.Mnemonic()})[7:]...), ErrSeedVersion})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := ParseSeedFile(c.data)
			if !errors.Is(err, c.want) || !errors.Is(err, ErrInvalidSeed) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if f != (SeedFile{}) {
				t.Fatal("a seed came back with the error")
			}
			for _, w := range words {
				if len(w) > 4 && strings.Contains(err.Error(), " "+w+" ") {
					t.Fatalf("error text holds the mnemonic: %v", err)
				}
			}
		})
	}
}

func TestSeedFileMarshalRoundTrip(t *testing.T) {
	seed, _ := SeedFromBytes([]byte(vectorSeed))
	for _, f := range []SeedFile{
		{Version: VersionLegacy, Seed: seed},
		{Version: VersionRaw, Seed: seed},
		{Version: VersionMnemonic, Seed: seed, ThreebotID: 99},
	} {
		b, err := f.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseSeedFile(b)
		if err != nil {
			t.Fatal(err)
		}
		want := f
		if want.Version == VersionLegacy {
			want.Version = VersionRaw // never written unversioned
		}
		if back != want {
			t.Fatalf("round trip of %q: got version %q tid %d", f.Version, back.Version, back.ThreebotID)
		}
	}
	b, _ := SeedFile{Seed: seed}.Marshal()
	if !bytes.Equal(b, rawFile([]byte(vectorSeed))) || len(b) != 39 {
		t.Fatalf("raw encoding = %q", b)
	}
	if _, err := (SeedFile{Version: "9.9.9"}).Marshal(); !errors.Is(err, ErrSeedVersion) {
		t.Fatalf("unknown version marshal: %v", err)
	}
}

func TestWriteSeedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "dir", "seed.txt")
	u, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteSeedFile(path, u); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", info.Mode().Perm())
	}
	back, err := ReadSeedFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Seed != u.Seed || back.Version != VersionMnemonic || back.KeyPair().ID() != u.KeyPair().ID() {
		t.Fatal("read back a different identity")
	}
	raw, _ := os.ReadFile(path)
	if !bytes.HasPrefix(raw, []byte(`"1.1.0"{"mnemonic":"`)) {
		t.Fatalf("user file = %q", raw)
	}

	// CreateSeedFile never clobbers.
	other, _ := Generate()
	if err := CreateSeedFile(path, other); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("CreateSeedFile over existing: %v", err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, raw) {
		t.Fatal("CreateSeedFile changed an existing file")
	}
	// WriteSeedFile replaces.
	if err := WriteSeedFile(path, other); err != nil {
		t.Fatal(err)
	}
	if back, _ := ReadSeedFile(path); back.Seed != other.Seed {
		t.Fatal("WriteSeedFile did not replace")
	}
	// No temp file is left behind by any of it.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only seed.txt", len(entries))
	}
	if _, err := ReadSeedFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestWriteSeedFileAtomicOnFailure(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seed.txt")
	seed, _ := SeedFromBytes([]byte(vectorSeed))
	if err := WriteSeedFile(path, SeedFile{Seed: seed}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	// A version we cannot encode fails before touching anything.
	if err := WriteSeedFile(path, SeedFile{Version: "3.0.0"}); !errors.Is(err, ErrSeedVersion) {
		t.Fatalf("err = %v", err)
	}
	// A path whose parent is a file fails without touching the seed either.
	if err := WriteSeedFile(filepath.Join(path, "x"), SeedFile{Seed: seed}); err == nil {
		t.Fatal("write under a file succeeded")
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("failed writes changed the seed file")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("%d entries left in dir", len(entries))
	}
}
