package container

import (
	"context"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/zos-go/zos/pkg"
)

func TestBuildSpec(t *testing.T) {
	env := specEnv{netnsDir: "/run/netns", cgroupParent: "/zos", resolvConf: "/etc/resolv.conf", swapAccount: true, corex: "/usr/bin/zos-corex", corexPort: 7681}
	r := Request{NS: "ns1", Args: []string{"/bin/app", "-v"}, Container: pkg.Container{
		Name: "web", RootFS: "/mnt/flist/web", Env: []string{"A=1", "PATH=/opt/bin"}, WorkingDir: "/srv",
		Network: pkg.NetworkInfo{Namespace: "n-web"}, CPU: 2, Memory: 128 << 20,
		Mounts: []pkg.MountInfo{{Source: "/vol/a", Target: "/data/"}},
	}}
	s, err := buildSpec(context.Background(), env, r)
	if err != nil {
		t.Fatal(err)
	}
	if s.Root.Path != "/mnt/flist/web" || s.Root.Readonly {
		t.Errorf("root %+v", s.Root)
	}
	if !slices.Equal(s.Process.Args, r.Args) || s.Process.Cwd != "/srv" || s.Hostname != "web" {
		t.Errorf("process %v cwd %q hostname %q", s.Process.Args, s.Process.Cwd, s.Hostname)
	}
	if !slices.Contains(s.Process.Env, "A=1") || !slices.Contains(s.Process.Env, "PATH=/opt/bin") {
		t.Errorf("env %v", s.Process.Env)
	}
	if s.Linux.CgroupsPath != "/zos/ns1/web" {
		t.Errorf("cgroups path %q", s.Linux.CgroupsPath)
	}
	res := s.Linux.Resources
	if *res.Memory.Limit != 128<<20 || *res.Memory.Swap != 128<<20 {
		t.Errorf("memory %d swap %d", *res.Memory.Limit, *res.Memory.Swap)
	}
	if *res.CPU.Quota != 200_000 || *res.CPU.Period != 100_000 {
		t.Errorf("cpu quota %d period %d, want 2 CPUs", *res.CPU.Quota, *res.CPU.Period)
	}
	var netns string
	for _, n := range s.Linux.Namespaces {
		if n.Type == specs.NetworkNamespace {
			netns = n.Path
		}
	}
	if netns != "/run/netns/n-web" {
		t.Errorf("network namespace %q", netns)
	}
	dests := map[string]specs.Mount{}
	for _, m := range s.Mounts {
		dests[m.Destination] = m
	}
	if _, ok := dests["/run"]; ok {
		t.Error("the default /run mount is still there")
	}
	if m := dests["/data"]; m.Source != "/vol/a" || m.Type != "bind" || !slices.Contains(m.Options, "rbind") {
		t.Errorf("volume mount %+v", m)
	}
	if m := dests["/etc/resolv.conf"]; m.Source != "/etc/resolv.conf" || !slices.Contains(m.Options, "ro") {
		t.Errorf("resolv.conf mount %+v", m)
	}
	if _, ok := dests[corexPath]; ok {
		t.Error("corex bound in a non-interactive container")
	}

	// Interactive: corex is PID 1 and runs the entrypoint.
	r.Container.Interactive = true
	s, err = buildSpec(context.Background(), env, r)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/corex", "--listen", ":7681", "--", "/bin/app", "-v"}; !slices.Equal(s.Process.Args, want) {
		t.Errorf("interactive args %q, want %q", s.Process.Args, want)
	}
	found := false
	for _, m := range s.Mounts {
		if m.Destination == corexPath && m.Source == env.corex && slices.Contains(m.Options, "ro") {
			found = true
		}
	}
	if !found {
		t.Errorf("corex not bound read-only: %+v", s.Mounts)
	}

	// Read back as the original did.
	c := fromSpec("web", s)
	if c.RootFS != r.Container.RootFS || c.Network.Namespace != "n-web" || c.CPU != 2 || c.Memory != 128<<20 || !c.Interactive || c.WorkingDir != "/srv" {
		t.Errorf("fromSpec = %+v", c)
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig("/var/lib/zos")
	if err := good.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	for name, edit := range map[string]func(*Config){
		"relative root":   func(c *Config) { c.Root = "x" },
		"long address":    func(c *Config) { c.Address = "/" + string(make([]byte, 120)) },
		"no runtime":      func(c *Config) { c.Runtime = "" },
		"cgroup parent":   func(c *Config) { c.CgroupParent = "zos" },
		"no shim":         func(c *Config) { c.ShimLogs = "" },
		"port":            func(c *Config) { c.CorexPort = 0 },
		"memory":          func(c *Config) { c.DefaultMemoryBytes = 1 },
		"ring":            func(c *Config) { c.LogRingFiles = 0 },
		"zero interval":   func(c *Config) { c.StatsInterval = 0 },
		"max below min":   func(c *Config) { c.RestartMax = c.RestartMin / 2 },
		"relative resolv": func(c *Config) { c.ResolvConf = "resolv.conf" },
	} {
		c := good
		edit(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestExitReason(t *testing.T) {
	for _, tc := range []struct {
		code uint32
		oom  bool
		want string
	}{
		{0, false, "exited with code 0"},
		{3, false, "exited with code 3"},
		{137, false, "killed by SIGKILL (exit code 137)"},
		{143, false, "killed by SIGTERM (exit code 143)"},
		{137, true, "killed by the out-of-memory killer (memory limit reached), exit code 137"},
		{255, false, "exited with code 255"},
	} {
		if got := ExitReason(tc.code, tc.oom); got != tc.want {
			t.Errorf("ExitReason(%d, %v) = %q, want %q", tc.code, tc.oom, got, tc.want)
		}
	}
}
