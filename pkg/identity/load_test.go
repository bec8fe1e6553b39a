package identity

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func loadCfg(t testing.TB, mirrors ...string) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.SeedPath = filepath.Join(t.TempDir(), "identityd", "seed.txt")
	cfg.MirrorPaths = mirrors
	cfg.Cmdline = nil
	return cfg
}

func mustLoad(t testing.TB, cfg Config) *Manager {
	t.Helper()
	m, err := Load(t.Context(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func writeRaw(t testing.TB, path string, data []byte, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func readRaw(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func modeOf(t testing.TB, path string) fs.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

func TestLoadCreatesSeed(t *testing.T) {
	cfg := loadCfg(t)
	m := mustLoad(t, cfg)
	raw := readRaw(t, cfg.SeedPath)
	if len(raw) != 39 || !bytes.HasPrefix(raw, []byte(`"1.0.0"`)) {
		t.Fatalf("seed file = %d bytes %q…", len(raw), raw[:min(7, len(raw))])
	}
	if got := modeOf(t, cfg.SeedPath); got != 0o600 {
		t.Fatalf("mode %v, want 0600", got)
	}
	if !bytes.Equal(m.PrivateKey()[:32], raw[7:]) {
		t.Fatal("key is not derived from the file's seed")
	}
	// Restart: same identity, file untouched.
	info1, _ := os.Stat(cfg.SeedPath)
	m2 := mustLoad(t, cfg)
	if m2.NodeID() != m.NodeID() {
		t.Fatalf("id changed across restarts: %s → %s", m.NodeID(), m2.NodeID())
	}
	info2, _ := os.Stat(cfg.SeedPath)
	if !os.SameFile(info1, info2) {
		t.Fatal("restart rewrote the seed file")
	}
	// Another node gets another identity.
	if other := mustLoad(t, loadCfg(t)); other.NodeID() == m.NodeID() {
		t.Fatal("two nodes share an id")
	}
}

func TestLoadUpgradesLegacy(t *testing.T) {
	for name, data := range map[string][]byte{
		"unversioned":        []byte(vectorSeed),
		"1.1.0 v0.4.9 quirk": append([]byte(`"1.1.0"`), vectorSeed...),
	} {
		t.Run(name, func(t *testing.T) {
			cfg := loadCfg(t)
			writeRaw(t, cfg.SeedPath, data, 0o644)
			m := mustLoad(t, cfg)
			if m.NodeID() != vectorNodeID {
				t.Fatalf("id = %s, want %s", m.NodeID(), vectorNodeID)
			}
			if got := readRaw(t, cfg.SeedPath); !bytes.Equal(got, rawFile([]byte(vectorSeed))) {
				t.Fatalf("file after upgrade = %q", got)
			}
			if got := modeOf(t, cfg.SeedPath); got != 0o600 {
				t.Fatalf("mode %v", got)
			}
			if m2 := mustLoad(t, cfg); m2.NodeID() != vectorNodeID {
				t.Fatal("upgraded file loads another id")
			}
		})
	}
}

func TestLoadKeepsMnemonicFile(t *testing.T) {
	cfg := loadCfg(t)
	seed, _ := SeedFromBytes([]byte(vectorSeed))
	data, _ := SeedFile{Version: VersionMnemonic, Seed: seed, ThreebotID: 12}.Marshal()
	writeRaw(t, cfg.SeedPath, data, 0o400)
	if m := mustLoad(t, cfg); m.NodeID() != vectorNodeID {
		t.Fatalf("id = %s", m.NodeID())
	}
	if got := readRaw(t, cfg.SeedPath); !bytes.Equal(got, data) {
		t.Fatal("a valid 1.1.0 file was rewritten")
	}
	if got := modeOf(t, cfg.SeedPath); got != 0o400 {
		t.Fatalf("a stricter mode was changed: %v", got)
	}
}

func TestLoadRefusesBadSeedFile(t *testing.T) {
	cases := map[string]struct {
		data []byte
		want error
	}{
		"empty":           {nil, ErrSeedLength},
		"short":           {[]byte("0123456789"), ErrSeedLength},
		"truncated 1.0.0": {rawFile([]byte(vectorSeed))[:30], ErrSeedLength},
		"corrupt":         {bytes.Repeat([]byte{0xaa}, 64), ErrSeedCorrupt},
		"unknown version": {append([]byte(`"4.2.0"`), vectorSeed...), ErrSeedVersion},
		"bad json":        {[]byte(`"1.1.0"{"mnemonic": "abandon`), ErrMnemonic},
		"bad checksum":    {mnemonicFile(t, map[string]any{"mnemonic": "zoo " + (Seed{}).Mnemonic()[len("abandon "):]}), ErrMnemonic},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			mirror := filepath.Join(t.TempDir(), "mirror", "seed.txt")
			cfg := loadCfg(t, mirror)
			writeRaw(t, cfg.SeedPath, c.data, 0o600)
			_, err := Load(t.Context(), cfg, testLogger(t))
			if !errors.Is(err, c.want) || !errors.Is(err, ErrInvalidSeed) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if got := readRaw(t, cfg.SeedPath); !bytes.Equal(got, c.data) {
				t.Fatal("a bad seed file was changed")
			}
			if _, err := os.Stat(mirror); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("a mirror was written from a bad seed: %v", err)
			}
			entries, _ := os.ReadDir(filepath.Dir(cfg.SeedPath))
			if len(entries) != 1 {
				t.Fatalf("%d files in the seed dir", len(entries))
			}
		})
	}
	t.Run("directory", func(t *testing.T) {
		cfg := loadCfg(t)
		if err := os.MkdirAll(cfg.SeedPath, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(t.Context(), cfg, testLogger(t)); !errors.Is(err, ErrSeedCorrupt) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestLoadFixesWideMode(t *testing.T) {
	mirror := filepath.Join(t.TempDir(), "seed.txt")
	cfg := loadCfg(t, mirror)
	writeRaw(t, cfg.SeedPath, rawFile([]byte(vectorSeed)), 0o644)
	writeRaw(t, mirror, rawFile([]byte(vectorSeed)), 0o666)
	mustLoad(t, cfg)
	for _, p := range []string{cfg.SeedPath, mirror} {
		if got := modeOf(t, p); got != 0o600 {
			t.Fatalf("%s mode %v, want 0600", p, got)
		}
	}
}

func TestLoadMirror(t *testing.T) {
	t.Run("first start writes the mirror", func(t *testing.T) {
		mirror := filepath.Join(t.TempDir(), "pool2", "identity", "seed.txt")
		cfg := loadCfg(t, mirror)
		mustLoad(t, cfg)
		if !bytes.Equal(readRaw(t, cfg.SeedPath), readRaw(t, mirror)) {
			t.Fatal("mirror differs from the seed file")
		}
		if got := modeOf(t, mirror); got != 0o600 {
			t.Fatalf("mirror mode %v", got)
		}
	})
	t.Run("primary lost, restored from mirror", func(t *testing.T) {
		mirror := filepath.Join(t.TempDir(), "seed.txt")
		cfg := loadCfg(t, mirror)
		id := mustLoad(t, cfg).NodeID()
		// The cache disk dies: the whole directory is gone.
		if err := os.RemoveAll(filepath.Dir(cfg.SeedPath)); err != nil {
			t.Fatal(err)
		}
		m := mustLoad(t, cfg)
		if m.NodeID() != id {
			t.Fatalf("node id changed after losing the primary: %s → %s", id, m.NodeID())
		}
		if !bytes.Equal(readRaw(t, cfg.SeedPath), readRaw(t, mirror)) {
			t.Fatal("primary not restored")
		}
		if got := modeOf(t, cfg.SeedPath); got != 0o600 {
			t.Fatalf("restored mode %v", got)
		}
	})
	t.Run("mirror lost, rewritten", func(t *testing.T) {
		mirror := filepath.Join(t.TempDir(), "seed.txt")
		cfg := loadCfg(t, mirror)
		mustLoad(t, cfg)
		if err := os.Remove(mirror); err != nil {
			t.Fatal(err)
		}
		mustLoad(t, cfg)
		if !bytes.Equal(readRaw(t, cfg.SeedPath), readRaw(t, mirror)) {
			t.Fatal("mirror not rewritten")
		}
	})
	t.Run("legacy mirror restores and is upgraded", func(t *testing.T) {
		mirror := filepath.Join(t.TempDir(), "seed.txt")
		cfg := loadCfg(t, mirror)
		writeRaw(t, mirror, []byte(vectorSeed), 0o600)
		if m := mustLoad(t, cfg); m.NodeID() != vectorNodeID {
			t.Fatalf("id %s", m.NodeID())
		}
		for _, p := range []string{cfg.SeedPath, mirror} {
			if got := readRaw(t, p); !bytes.Equal(got, rawFile([]byte(vectorSeed))) {
				t.Fatalf("%s = %q", p, got)
			}
		}
	})
	t.Run("same seed in two formats", func(t *testing.T) {
		mirror := filepath.Join(t.TempDir(), "seed.txt")
		cfg := loadCfg(t, mirror)
		seed, _ := SeedFromBytes([]byte(vectorSeed))
		user, _ := SeedFile{Version: VersionMnemonic, Seed: seed}.Marshal()
		writeRaw(t, cfg.SeedPath, user, 0o600)
		writeRaw(t, mirror, rawFile([]byte(vectorSeed)), 0o600)
		if m := mustLoad(t, cfg); m.NodeID() != vectorNodeID {
			t.Fatalf("id %s", m.NodeID())
		}
	})
	t.Run("unreadable mirror is skipped", func(t *testing.T) {
		blocker := filepath.Join(t.TempDir(), "file")
		writeRaw(t, blocker, []byte("not a dir"), 0o600)
		cfg := loadCfg(t, filepath.Join(blocker, "seed.txt"))
		// No primary: the unreadable mirror may hold the identity.
		if _, err := Load(t.Context(), cfg, testLogger(t)); !errors.Is(err, ErrSeedUnavailable) {
			t.Fatalf("err = %v, want ErrSeedUnavailable", err)
		}
		if _, err := os.Stat(cfg.SeedPath); !errors.Is(err, fs.ErrNotExist) {
			t.Fatal("a new seed was created next to an unreadable mirror")
		}
		writeRaw(t, cfg.SeedPath, rawFile([]byte(vectorSeed)), 0o600)
		if m := mustLoad(t, cfg); m.NodeID() != vectorNodeID {
			t.Fatal("wrong id")
		}
	})
}

func TestLoadMirrorConflicts(t *testing.T) {
	seedA := rawFile([]byte(vectorSeed))
	seedB := rawFile(bytes.Repeat([]byte{7}, 32))
	corrupt := []byte("garbage")
	cases := []struct {
		name            string
		primary, m1, m2 []byte // nil: missing
		want            error
	}{
		{"primary and mirror differ", seedA, seedB, nil, ErrSeedMismatch},
		{"second mirror differs", seedA, seedA, seedB, ErrSeedMismatch},
		{"primary lost, mirrors differ", nil, seedA, seedB, ErrSeedMismatch},
		{"corrupt mirror", seedA, corrupt, nil, ErrInvalidSeed},
		{"corrupt primary, valid mirror", corrupt, seedA, nil, ErrInvalidSeed},
		{"primary lost, corrupt mirror", nil, corrupt, nil, ErrInvalidSeed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			m1, m2 := filepath.Join(dir, "m1", "seed.txt"), filepath.Join(dir, "m2", "seed.txt")
			cfg := loadCfg(t, m1, m2)
			files := map[string][]byte{cfg.SeedPath: c.primary, m1: c.m1, m2: c.m2}
			for p, data := range files {
				if data != nil {
					writeRaw(t, p, data, 0o600)
				}
			}
			_, err := Load(t.Context(), cfg, testLogger(t))
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			for p, data := range files {
				got, err := os.ReadFile(p)
				if data == nil && !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("%s was created", p)
				}
				if data != nil && !bytes.Equal(got, data) {
					t.Fatalf("%s was changed", p)
				}
			}
		})
	}
}

// TestLoadAfterCrash covers what kill -9 during a write can leave behind.
func TestLoadAfterCrash(t *testing.T) {
	t.Run("temp file only (crash before link)", func(t *testing.T) {
		cfg := loadCfg(t)
		stale := filepath.Join(filepath.Dir(cfg.SeedPath), ".seed.txt.tmp-12345")
		writeRaw(t, stale, rawFile([]byte(vectorSeed))[:11], 0o600)
		old := time.Now().Add(-time.Hour)
		if err := os.Chtimes(stale, old, old); err != nil {
			t.Fatal(err)
		}
		fresh := filepath.Join(filepath.Dir(cfg.SeedPath), ".seed.txt.tmp-67890")
		writeRaw(t, fresh, []byte("in progress"), 0o600)
		mustLoad(t, cfg)
		if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
			t.Fatal("stale temp file not removed")
		}
		if _, err := os.Stat(fresh); err != nil {
			t.Fatal("a recent temp file (a write in progress elsewhere) was removed")
		}
	})
	t.Run("temp and seed (crash after link)", func(t *testing.T) {
		cfg := loadCfg(t)
		writeRaw(t, cfg.SeedPath, rawFile([]byte(vectorSeed)), 0o600)
		writeRaw(t, filepath.Join(filepath.Dir(cfg.SeedPath), ".seed.txt.tmp-1"), rawFile([]byte(vectorSeed)), 0o600)
		if m := mustLoad(t, cfg); m.NodeID() != vectorNodeID {
			t.Fatal("wrong id")
		}
	})
}

func TestLoadConcurrentFirstStart(t *testing.T) {
	mirror := filepath.Join(t.TempDir(), "seed.txt")
	cfg := loadCfg(t, mirror)
	const n = 8
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			m, err := Load(t.Context(), cfg, testLogger(t))
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = string(m.NodeID())
		})
	}
	wg.Wait()
	final := string(mustLoad(t, cfg).NodeID())
	for i, id := range ids {
		if id != final {
			t.Fatalf("start %d got id %s, the file holds %s", i, id, final)
		}
	}
}

func TestLoadArguments(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	cfg := loadCfg(t)
	if _, err := Load(ctx, cfg, testLogger(t)); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled ctx: %v", err)
	}
	if _, err := os.Stat(cfg.SeedPath); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("seed written under a canceled context")
	}
	if _, err := Load(t.Context(), cfg, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("nil logger: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for name, cfg := range map[string]Config{
		"empty seed path":    {},
		"relative seed path": {SeedPath: "seed.txt"},
		"relative mirror":    {SeedPath: "/a/seed.txt", MirrorPaths: []string{"b/seed.txt"}},
		"empty mirror":       {SeedPath: "/a/seed.txt", MirrorPaths: []string{""}},
		"mirror is primary":  {SeedPath: "/a/seed.txt", MirrorPaths: []string{"/a/../a/seed.txt"}},
		"mirror twice":       {SeedPath: "/a/seed.txt", MirrorPaths: []string{"/b/s", "/b/s"}},
	} {
		if err := cfg.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: err = %v", name, err)
		}
		if _, err := Load(t.Context(), cfg, testLogger(t)); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Load err = %v", name, err)
		}
	}
}
