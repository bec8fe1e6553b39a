package flistcli

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/zos-go/zos/pkg/flist/store"
	"github.com/zos-go/zos/pkg/hub"
	"github.com/zos-go/zos/pkg/identity"
)

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := NewCommand()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	if err != nil {
		t.Logf("zos flist %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), err
}

// tree builds a source directory an unprivileged user can make.
func tree(t *testing.T) (string, []byte) {
	t.Helper()
	src := t.TempDir()
	big := make([]byte, 1300*1024)
	rand.Read(big)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "etc", "deep"), 0o750))
	must(os.WriteFile(filepath.Join(src, "etc", "hosts"), []byte("127.0.0.1 localhost\n"), 0o644))
	must(os.WriteFile(filepath.Join(src, "big.bin"), big, 0o600))
	must(os.WriteFile(filepath.Join(src, "etc", "deep", "copy.bin"), big, 0o600)) // dedup
	must(os.Symlink("etc/hosts", filepath.Join(src, "hosts")))
	must(os.Link(filepath.Join(src, "big.bin"), filepath.Join(src, "hard.bin")))
	must(syscall.Mkfifo(filepath.Join(src, "fifo"), 0o600))
	return src, big
}

func TestCreateInspectLsCatVerify(t *testing.T) {
	src, big := tree(t)
	storeDir := t.TempDir()
	fl := filepath.Join(t.TempDir(), "x.fl")
	out, err := run(t, "create", src, "-o", fl, "--store", "dir://"+storeDir, "-q", "--tag", "author=me")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "7 entries") && !strings.Contains(out, "entries") {
		t.Errorf("create output %q", out)
	}
	out, err = run(t, "inspect", fl)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"format:      rfs", "files:       4", "symlinks:    1", "special:     1", "tag:         author=me", "route:       00-ff dir://" + storeDir,
		"blocks:      10 (4 unique)"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect lacks %q:\n%s", want, out)
		}
	}
	out, err = run(t, "ls", "-lR", fl)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"/etc/deep/copy.bin", "-> etc/hosts", "prw-------", "drwxr-x---"} {
		if !strings.Contains(out, want) {
			t.Errorf("ls lacks %q:\n%s", want, out)
		}
	}
	out, err = run(t, "cat", fl, "/etc/deep/copy.bin")
	if err != nil || !bytes.Equal([]byte(out), big) {
		t.Fatalf("cat: %d bytes, %v", len(out), err)
	}
	if out, err = run(t, "verify", fl); err != nil || !strings.Contains(out, "ok (4 blocks checked)") {
		t.Fatalf("verify: %q %v", out, err)
	}
	// damage one block: verify names it and fails
	var victim string
	filepath.WalkDir(storeDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && victim == "" {
			victim = p
		}
		return nil
	})
	data, _ := os.ReadFile(victim)
	data[0] ^= 1
	os.WriteFile(victim, data, 0o644)
	out, err = run(t, "verify", fl)
	if !errors.Is(err, ErrVerify) || !strings.Contains(out, "corrupt block") {
		t.Fatalf("verify of a damaged store: %q %v", out, err)
	}
	if _, err := run(t, "verify", "--metadata-only", fl); err != nil {
		t.Fatalf("metadata-only verify: %v", err)
	}
}

func TestCreateZeroFlist(t *testing.T) {
	src, big := tree(t)
	storeDir := t.TempDir()
	fl := filepath.Join(t.TempDir(), "x.flist")
	if _, err := run(t, "create", src, "-o", fl, "--store", "dir://"+storeDir, "--format", "0-flist", "--workers", "2"); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "inspect", fl)
	if err != nil || !strings.Contains(out, "format:      0-flist") {
		t.Fatalf("inspect: %q %v", out, err)
	}
	out, err = run(t, "cat", fl, "big.bin")
	if err != nil || !bytes.Equal([]byte(out), big) {
		t.Fatalf("cat: %v", err)
	}
	if _, err := os.Stat(fl + ".d"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the CLI left an unpacked directory next to the flist")
	}
}

func TestHubCommands(t *testing.T) {
	seed, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := seed.Marshal()
	idFile := filepath.Join(t.TempDir(), "id")
	os.WriteFile(idFile, raw, 0o600)
	blocks, _ := store.Open("dir://"+t.TempDir(), store.Options{})
	cfg := hub.DefaultConfig()
	cfg.Dir, cfg.Blocks = t.TempDir(), blocks
	cfg.Keys = hub.KeyMap{"alice": seed.KeyPair().PublicKey()}
	h, err := hub.New(cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	src, big := tree(t)
	fl := filepath.Join(t.TempDir(), "app.fl")
	auth := []string{"--hub", srv.URL, "--user", "alice", "--identity", idFile}
	// blocks go to the hub, signed
	if _, err := run(t, "create", src, "-o", fl, "--store", srv.URL+"/blocks", "-q", "--user", "alice", "--identity", idFile); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, append([]string{"upload", fl, "--name", "app-v1.fl"}, auth...)...); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, append([]string{"link", "app-latest.fl", "app-v1.fl"}, auth...)...); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "list", "alice", "--hub", srv.URL)
	if err != nil || !strings.Contains(out, "app-latest.fl") || !strings.Contains(out, "-> app-v1.fl") {
		t.Fatalf("list: %q %v", out, err)
	}
	// read it back from the hub alone: flist by URL, blocks by its route
	out, err = run(t, "cat", srv.URL+"/alice/app-latest.fl", "big.bin")
	if err != nil || !bytes.Equal([]byte(out), big) {
		t.Fatalf("cat from hub: %v", err)
	}
	// another key may not publish as alice
	otherSeed, _ := identity.Generate()
	otherRaw, _ := otherSeed.Marshal()
	otherFile := filepath.Join(t.TempDir(), "other")
	os.WriteFile(otherFile, otherRaw, 0o600)
	if _, err := run(t, "delete", "app-v1.fl", "--hub", srv.URL, "--user", "alice", "--identity", otherFile); err == nil {
		t.Fatal("delete with another key succeeded")
	}
	if _, err := run(t, append([]string{"delete", "app-v1.fl"}, auth...)...); err != nil {
		t.Fatal(err)
	}
}
