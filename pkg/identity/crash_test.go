package identity

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// crashWriterEnv makes the test binary a seed writer that loops until killed.
const crashWriterEnv = "ZOS_IDENTITY_CRASH_WRITER"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashWriterEnv); path != "" {
		crashWriter(path)
		return
	}
	os.Exit(m.Run())
}

// crashWriter alternates two seeds in path (replacing) and in path+".new"
// (no-clobber create after removal), forever.
func crashWriter(path string) {
	a, _ := SeedFromBytes([]byte(vectorSeed))
	var b Seed
	for i := range b {
		b[i] = 0xb0 + byte(i)
	}
	for i := 0; ; i++ {
		s := a
		if i%2 == 1 {
			s = b
		}
		if err := WriteSeedFile(path, SeedFile{Seed: s}); err != nil {
			os.Exit(3)
		}
		_ = os.Remove(path + ".new")
		if err := CreateSeedFile(path+".new", SeedFile{Seed: s}); err != nil {
			os.Exit(4)
		}
	}
}

// TestSeedWriteSurvivesKill kills a writer at random moments: the seed file
// must always hold one of the two seeds, complete, and load.
func TestSeedWriteSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := SeedFromBytes([]byte(vectorSeed))
	for round := range 8 {
		dir := t.TempDir()
		path := filepath.Join(dir, "seed.txt")
		if err := WriteSeedFile(path, SeedFile{Seed: a}); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), crashWriterEnv+"="+path)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Let the writer get going, then kill it at a random moment.
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := os.Stat(path + ".new"); err == nil {
				break
			}
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatal("writer did not start writing")
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Duration(1+rand.IntN(20)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("round %d: writer ended by itself: %v", round, err)
		}
		f, err := ReadSeedFile(path)
		if err != nil {
			t.Fatalf("round %d: seed file after kill -9: %v", round, err)
		}
		if f.Seed != a && f.Seed[0] != 0xb0 {
			t.Fatalf("round %d: seed file holds a third seed", round)
		}
		if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("round %d: mode after kill: %v %v", round, info, err)
		}
		// .new is absent or complete: never a torn file.
		if _, err := os.Stat(path + ".new"); err == nil {
			if _, err := ReadSeedFile(path + ".new"); err != nil {
				t.Fatalf("round %d: created file torn: %v", round, err)
			}
		}
		// A restart of the node on this directory keeps the surviving seed.
		cfg := Config{SeedPath: path}
		m, err := Load(t.Context(), cfg, testLogger(t))
		if err != nil {
			t.Fatalf("round %d: load after kill: %v", round, err)
		}
		if m.KeyPair().ID() != NewKeyPair(f.Seed).ID() {
			t.Fatalf("round %d: load picked another seed", round)
		}
	}
}
