package container

import (
	"context"
	"path"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const (
	// cpuPeriodUS is the CFS period; the quota is CPU × this.
	cpuPeriodUS = 100_000
	// corexPath is where the corex binary appears in interactive containers.
	corexPath = "/corex"
)

// specEnv describes the host facts the spec depends on.
type specEnv struct {
	netnsDir     string
	cgroupParent string
	resolvConf   string // "" when the host has none to share
	corex        string // host path of the corex binary (interactive only)
	corexPort    int
	swapAccount  bool // the memory cgroup limits memory+swap
}

// cgroupsPath is the cgroup of container id in ns.
func cgroupsPath(parent, ns, id string) string {
	return path.Join(parent, ns, id)
}

// buildSpec makes the OCI spec of a prepared request.
func buildSpec(ctx context.Context, env specEnv, r Request) (*specs.Spec, error) {
	c := r.Container
	ctx = namespaces.WithNamespace(ctx, r.NS)
	args := r.Args
	var mounts []specs.Mount
	if c.Interactive {
		mounts = append(mounts, specs.Mount{Destination: corexPath, Type: "bind", Source: env.corex, Options: []string{"rbind", "ro"}})
		args = corexArgs(env.corexPort, r.Args)
	}
	if env.resolvConf != "" {
		mounts = append(mounts, specs.Mount{Destination: "/etc/resolv.conf", Type: "bind", Source: env.resolvConf, Options: []string{"rbind", "ro"}})
	}
	for _, m := range c.Mounts {
		mounts = append(mounts, specs.Mount{Destination: filepath.Clean(m.Target), Type: "bind", Source: m.Source, Options: []string{"rbind"}})
	}
	limit := int64(c.Memory)
	opts := []oci.SpecOpts{
		oci.WithRootFSPath(c.RootFS),
		oci.WithDefaultPathEnv,
		oci.WithEnv(c.Env),
		oci.WithProcessArgs(args...),
		oci.WithHostname(c.Name),
		withoutMount("/run"),
		oci.WithMounts(mounts),
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: filepath.Join(env.netnsDir, c.Network.Namespace)}),
		func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			s.Linux.CgroupsPath = cgroupsPath(env.cgroupParent, r.NS, c.Name)
			if s.Linux.Resources == nil {
				s.Linux.Resources = &specs.LinuxResources{}
			}
			mem := &specs.LinuxMemory{Limit: &limit}
			if env.swapAccount {
				swap := limit // memory+swap: no swap beyond the limit
				mem.Swap = &swap
			}
			s.Linux.Resources.Memory = mem
			quota, period := int64(c.CPU)*cpuPeriodUS, uint64(cpuPeriodUS)
			s.Linux.Resources.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
			return nil
		},
	}
	if c.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(c.WorkingDir))
	}
	return oci.GenerateSpecWithPlatform(ctx, nil, "linux/amd64", &containers.Container{ID: c.Name}, opts...)
}

// corexArgs is the command line of corex, with the user's entrypoint, if
// any, after "--".
func corexArgs(port int, entry []string) []string {
	args := []string{corexPath, "--listen", ":" + strconv.Itoa(port)}
	if len(entry) > 0 {
		args = append(append(args, "--"), entry...)
	}
	return args
}

// withoutMount drops the default mount at dest.
func withoutMount(dest string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		s.Mounts = slices.DeleteFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == dest })
		return nil
	}
}
