package container

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Config configures the container module.
type Config struct {
	// Root is the module's state directory: log backend configs under
	// <Root>/config/<ns>/<id>-logs.json and the log rings under
	// <Root>/logs/<ns>/<id>.log.
	Root string
	// Address is containerd's socket (DaemonConfig.Address of the node's
	// containerd).
	Address string
	// RuncRoot is runc's state directory, given to every task (never the
	// system's /run/containerd/runc).
	RuncRoot string
	// Runtime is containerd's runtime name.
	Runtime string
	// CgroupParent is the cgroup under which each container gets
	// <CgroupParent>/<ns>/<id> (on every controller with cgroup v1, in the
	// unified tree with v2).
	CgroupParent string
	// NetNSDir holds the named network namespaces (ip netns); a container
	// joins <NetNSDir>/<Network.Namespace>.
	NetNSDir string
	// ShimLogs is the log binary containerd's shim starts for each task
	// (cmd/zos-shimlogs): a path, or a name looked up on PATH.
	ShimLogs string
	// Corex is the init of interactive containers (cmd/zos-corex): a path,
	// or a name looked up on PATH. Only needed for Interactive.
	Corex string
	// CorexPort is the TCP port corex serves shells on inside the
	// container's network namespace.
	CorexPort int
	// ResolvConf is bind-mounted read-only at /etc/resolv.conf in every
	// container; empty disables it.
	ResolvConf string
	// DefaultMemoryBytes is the memory limit when Container.Memory is 0
	// (256 MiB; the original's 256·1024·1204 was a typo).
	DefaultMemoryBytes uint64
	// LogRingBytes caps each log file; with LogRingFiles files kept, a
	// container's log never exceeds LogRingBytes·LogRingFiles.
	LogRingBytes int64
	// LogRingFiles is how many log files the ring keeps (current + rotated).
	LogRingFiles int
	// StatsInterval is the period of the stats backends' publications.
	StatsInterval time.Duration
	// StopGrace is how long Delete waits after SIGTERM before SIGKILL.
	StopGrace time.Duration
	// RestartMin is the first delay before restarting an exited task; it
	// doubles with each consecutive failure up to RestartMax.
	RestartMin time.Duration
	// RestartMax caps the restart delay.
	RestartMax time.Duration
	// RestartReset is how long a task must have run for its exit not to
	// count as a consecutive failure (the backoff starts over).
	RestartReset time.Duration
	// ReconcileInterval is the period at which Run compares every
	// container with its task, in case an event was missed.
	ReconcileInterval time.Duration
	// OpTimeout bounds each seed method call (they have no ctx); while
	// containerd is down (restarting) a call waits for it that long, then
	// fails with ErrUnavailable.
	OpTimeout time.Duration
}

// DefaultConfig returns the configuration of a node whose zos root is root
// (/var/lib/zos): containerd as DaemonConfig{Dir: <root>/containerd}
// leaves it, module state under <root>/containers.
func DefaultConfig(root string) Config {
	d := DaemonConfig{Dir: filepath.Join(root, "containerd")}
	return Config{
		Root:               filepath.Join(root, "containers"),
		Address:            d.Address(),
		RuncRoot:           d.RuncRoot(),
		Runtime:            "io.containerd.runc.v2",
		CgroupParent:       "/zos",
		NetNSDir:           "/run/netns",
		ShimLogs:           "zos-shimlogs",
		Corex:              "zos-corex",
		CorexPort:          7681,
		ResolvConf:         "/etc/resolv.conf",
		DefaultMemoryBytes: 256 << 20,
		LogRingBytes:       1 << 20,
		LogRingFiles:       2,
		StatsInterval:      2 * time.Second,
		StopGrace:          10 * time.Second,
		RestartMin:         2 * time.Second,
		RestartMax:         5 * time.Minute,
		RestartReset:       10 * time.Minute,
		ReconcileInterval:  10 * time.Second,
		OpTimeout:          2 * time.Minute,
	}
}

// ErrInvalidConfig is wrapped by every error of Config.Validate.
var ErrInvalidConfig = errors.New("invalid container config")

// Validate checks the configuration; every error wraps ErrInvalidConfig.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalidConfig)
	}
	for name, p := range map[string]string{"root": c.Root, "address": c.Address, "runc root": c.RuncRoot, "netns dir": c.NetNSDir} {
		if p == "" || !filepath.IsAbs(p) {
			return bad("%s %q must be an absolute path", name, p)
		}
	}
	if len(c.Address) > 100 {
		return bad("address %q too long for a unix socket", c.Address)
	}
	if c.Runtime == "" {
		return bad("runtime must be set")
	}
	if !strings.HasPrefix(c.CgroupParent, "/") || strings.Contains(c.CgroupParent, "..") {
		return bad("cgroup parent %q must be an absolute cgroup path", c.CgroupParent)
	}
	if c.ShimLogs == "" {
		return bad("shim logs binary must be set")
	}
	if c.ResolvConf != "" && !filepath.IsAbs(c.ResolvConf) {
		return bad("resolv.conf %q must be an absolute path", c.ResolvConf)
	}
	if c.CorexPort <= 0 || c.CorexPort > 65535 {
		return bad("corex port %d out of range", c.CorexPort)
	}
	if c.DefaultMemoryBytes < 4<<20 {
		return bad("default memory %d below 4 MiB", c.DefaultMemoryBytes)
	}
	if c.LogRingBytes < 4096 || c.LogRingFiles < 1 {
		return bad("log ring of %d files of %d bytes too small", c.LogRingFiles, c.LogRingBytes)
	}
	for name, d := range map[string]time.Duration{
		"stats interval": c.StatsInterval, "stop grace": c.StopGrace, "restart min": c.RestartMin,
		"restart max": c.RestartMax, "restart reset": c.RestartReset,
		"reconcile interval": c.ReconcileInterval, "op timeout": c.OpTimeout,
	} {
		if d <= 0 {
			return bad("%s must be positive", name)
		}
	}
	if c.RestartMax < c.RestartMin {
		return bad("restart max %s below restart min %s", c.RestartMax, c.RestartMin)
	}
	return nil
}
