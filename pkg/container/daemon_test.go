package container

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/google/shlex"
)

func TestDaemonConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "with space", "containerd")
	d := DaemonConfig{Dir: dir}
	svc, err := d.Service()
	if err != nil {
		t.Fatal(err)
	}
	argv, err := shlex.Split(svc.Exec)
	if err != nil || !slices.Equal(argv, []string{"containerd", "--config", d.ConfigPath()}) {
		t.Fatalf("exec %q splits to %q, %v", svc.Exec, argv, err)
	}
	if test, _ := shlex.Split(svc.Test); !slices.Equal(test, []string{"ctr", "--address", d.Address(), "version"}) {
		t.Fatalf("test %q", svc.Test)
	}
	if err := svc.Validate(); err != nil {
		t.Fatalf("zinit would refuse the service: %v", err)
	}
	b, err := os.ReadFile(d.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Version  int      `toml:"version"`
		Root     string   `toml:"root"`
		State    string   `toml:"state"`
		Disabled []string `toml:"disabled_plugins"`
		GRPC     struct {
			Address string `toml:"address"`
		} `toml:"grpc"`
		TTRPC struct {
			Address string `toml:"address"`
		} `toml:"ttrpc"`
		Plugins map[string]map[string]any `toml:"plugins"`
	}
	if _, err := toml.Decode(string(b), &cfg); err != nil {
		t.Fatalf("config does not parse: %v\n%s", err, b)
	}
	if cfg.Version != 2 || cfg.GRPC.Address != d.Address() || !strings.HasPrefix(cfg.Root, dir) || !strings.HasPrefix(cfg.State, dir) || !strings.HasPrefix(cfg.TTRPC.Address, dir) {
		t.Fatalf("config %+v", cfg)
	}
	if !slices.Contains(cfg.Disabled, "io.containerd.grpc.v1.cri") {
		t.Fatalf("CRI not disabled: %v", cfg.Disabled)
	}
	if p, _ := cfg.Plugins["io.containerd.internal.v1.opt"]["path"].(string); !strings.HasPrefix(p, dir) {
		t.Fatalf("opt path %q outside the dir", p)
	}
	for _, bad := range []DaemonConfig{{}, {Dir: "rel"}, {Dir: "/" + strings.Repeat("x", 90)}} {
		if _, err := bad.WriteConfig(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestDaemonDropsStateOfAnotherBoot(t *testing.T) {
	dir := t.TempDir()
	bootFile := filepath.Join(t.TempDir(), "boot_id")
	d := DaemonConfig{Dir: filepath.Join(dir, "containerd"), BootIDFile: bootFile}
	stale := []string{filepath.Join(d.Dir, "state", "io.containerd.runtime.v2.task", "ns", "c", "address"), filepath.Join(d.RuncRoot(), "ns", "c", "state.json")}
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(bootFile, "boot-1\n")
	if _, err := d.WriteConfig(); err != nil {
		t.Fatal(err)
	}
	for _, p := range stale {
		write(p, "x")
	}
	if _, err := d.WriteConfig(); err != nil { // same boot: zosd restarted
		t.Fatal(err)
	}
	for _, p := range stale {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("same boot: %s removed: %v", p, err)
		}
	}
	write(bootFile, "boot-2\n")
	if _, err := d.WriteConfig(); err != nil { // the machine rebooted
		t.Fatal(err)
	}
	for _, p := range stale {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("after a reboot: %s still there (%v)", p, err)
		}
	}
	if _, err := os.Stat(d.ConfigPath()); err != nil {
		t.Fatal(err)
	}
}
