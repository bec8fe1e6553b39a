package container

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/google/shlex"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/container/internal/redisurl"
	"github.com/zos-go/zos/pkg/container/logger"
	"github.com/zos-go/zos/pkg/container/stats"
)

// PrepareOptions are the node facts Prepare checks a request against.
type PrepareOptions struct {
	// NetNSExists reports whether a named network namespace exists; nil
	// accepts any name.
	NetNSExists func(name string) bool
	// CPUs is the node's logical CPU count; 0 means runtime.NumCPU().
	CPUs int
	// DefaultMemoryBytes replaces a zero Container.Memory; 0 means 256 MiB.
	DefaultMemoryBytes uint64
}

// Request is a Run request checked and completed by Prepare: the container
// as it will run.
type Request struct {
	// NS is the containerd namespace.
	NS string
	// Container has the defaults applied (CPU 1, the default memory) and
	// the root filesystem's .startup.toml merged in.
	Container pkg.Container
	// Args is the entrypoint split shell-style; it may be empty for an
	// interactive container (whose init is corex, which starts Args when
	// given).
	Args []string
}

// Prepare checks a Run request without changing anything and completes it:
//
//   - ns and Name are valid names (ErrInvalidName);
//   - RootFS is an existing directory (ErrInvalidRootFS);
//   - Network.Namespace is set and exists (ErrNoNetwork);
//   - every Env entry is KEY=VALUE (ErrInvalidEnv);
//   - <RootFS>/.startup.toml, if present, is merged (see ApplyStartup);
//   - the entrypoint splits shell-style into at least one word (none is
//     fine when Interactive) naming an executable of the root filesystem
//     (ErrInvalidEntrypoint);
//   - mount sources exist and targets are absolute (ErrInvalidMount);
//   - CPU (0 means 1) is at most the node's CPUs (ErrInvalidLimit), Memory
//     0 becomes the default;
//   - log backends are redis (with valid stdout/stderr URLs) or file, stats
//     backends redis with a valid endpoint (ErrInvalidBackend).
func Prepare(ns string, c pkg.Container, opts PrepareOptions) (Request, error) {
	if err := ValidateName(ns); err != nil {
		return Request{}, fmt.Errorf("namespace: %w", err)
	}
	if err := ValidateName(c.Name); err != nil {
		return Request{}, fmt.Errorf("container name: %w", err)
	}
	if c.RootFS == "" || !filepath.IsAbs(c.RootFS) {
		return Request{}, fmt.Errorf("container %s: rootfs %q: %w", c.Name, c.RootFS, ErrInvalidRootFS)
	}
	if fi, err := os.Stat(c.RootFS); err != nil || !fi.IsDir() {
		return Request{}, fmt.Errorf("container %s: rootfs %q is not a directory: %w", c.Name, c.RootFS, ErrInvalidRootFS)
	}
	nsName := c.Network.Namespace
	if nsName == "" || ValidateName(nsName) != nil && !plainName(nsName) {
		return Request{}, fmt.Errorf("container %s: network namespace %q: %w", c.Name, nsName, ErrNoNetwork)
	}
	if opts.NetNSExists != nil && !opts.NetNSExists(nsName) {
		return Request{}, fmt.Errorf("container %s: network namespace %q does not exist: %w", c.Name, nsName, ErrNoNetwork)
	}
	for _, e := range c.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" || strings.ContainsRune(e, 0) {
			return Request{}, fmt.Errorf("container %s: env %q: %w", c.Name, e, ErrInvalidEnv)
		}
	}
	c.Env = append([]string(nil), c.Env...)
	c.Mounts = append([]pkg.MountInfo(nil), c.Mounts...)
	if b, err := os.ReadFile(filepath.Join(c.RootFS, StartupFile)); err == nil {
		c = ApplyStartup(c, b)
	}

	args, err := shlex.Split(c.Entrypoint)
	if err != nil || len(args) == 0 && !c.Interactive {
		return Request{}, fmt.Errorf("container %s: entrypoint %q: %w", c.Name, c.Entrypoint, ErrInvalidEntrypoint)
	}
	if c.WorkingDir != "" && !filepath.IsAbs(c.WorkingDir) {
		return Request{}, fmt.Errorf("container %s: working dir %q must be absolute: %w", c.Name, c.WorkingDir, ErrInvalidEntrypoint)
	}
	if len(args) > 0 {
		if _, err := findProgram(c.RootFS, args[0], c.WorkingDir, c.Env); err != nil {
			return Request{}, fmt.Errorf("container %s: entrypoint: %v: %w", c.Name, err, ErrInvalidEntrypoint)
		}
	}
	for _, m := range c.Mounts {
		if !filepath.IsAbs(m.Source) || !filepath.IsAbs(m.Target) || filepath.Clean(m.Target) == "/" {
			return Request{}, fmt.Errorf("container %s: mount %s → %s: paths must be absolute: %w", c.Name, m.Source, m.Target, ErrInvalidMount)
		}
		if _, err := os.Stat(m.Source); err != nil {
			return Request{}, fmt.Errorf("container %s: mount source %s: %w", c.Name, m.Source, ErrInvalidMount)
		}
	}
	cpus := opts.CPUs
	if cpus <= 0 {
		cpus = runtime.NumCPU()
	}
	if c.CPU == 0 {
		c.CPU = 1
	}
	if c.CPU > uint(cpus) {
		return Request{}, fmt.Errorf("container %s: %d cpus, the node has %d: %w", c.Name, c.CPU, cpus, ErrInvalidLimit)
	}
	if c.Memory == 0 {
		c.Memory = opts.DefaultMemoryBytes
		if c.Memory == 0 {
			c.Memory = 256 << 20
		}
	}
	if c.Memory < 4<<20 {
		return Request{}, fmt.Errorf("container %s: memory %d below 4 MiB: %w", c.Name, c.Memory, ErrInvalidLimit)
	}
	if err := checkBackends(c); err != nil {
		return Request{}, fmt.Errorf("container %s: %w", c.Name, err)
	}
	return Request{NS: ns, Container: c, Args: args}, nil
}

func checkBackends(c pkg.Container) error {
	for i, l := range c.Logs {
		switch l.Type {
		case logger.RedisType:
			if l.Data.Stdout == "" && l.Data.Stderr == "" {
				return fmt.Errorf("logs[%d]: no stdout or stderr url: %w", i, ErrInvalidBackend)
			}
			for _, u := range []string{l.Data.Stdout, l.Data.Stderr} {
				if u == "" {
					continue
				}
				if _, err := redisurl.Parse(u); err != nil {
					return fmt.Errorf("logs[%d]: %v: %w", i, err, ErrInvalidBackend)
				}
			}
		case logger.FileType:
			// the local ring is always written
		default:
			return fmt.Errorf("logs[%d]: type %q: %w", i, l.Type, ErrInvalidBackend)
		}
	}
	for i, s := range c.Stats {
		if s.Type != stats.RedisType {
			return fmt.Errorf("stats[%d]: type %q: %w", i, s.Type, ErrInvalidBackend)
		}
		if _, err := redisurl.Parse(s.Data.Endpoint); err != nil {
			return fmt.Errorf("stats[%d]: %v: %w", i, err, ErrInvalidBackend)
		}
	}
	return nil
}

// ValidateName checks a namespace or container name: letters and digits,
// separated by single '.', '_' or '-', at most MaxNameLen characters (the
// identifiers containerd accepts). It returns an error wrapping
// ErrInvalidName.
func ValidateName(s string) error {
	if s == "" || len(s) > MaxNameLen {
		return fmt.Errorf("%q: empty or longer than %d: %w", s, MaxNameLen, ErrInvalidName)
	}
	prevSep := true
	for _, r := range s {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		sep := r == '.' || r == '_' || r == '-'
		switch {
		case alnum:
			prevSep = false
		case sep && !prevSep:
			prevSep = true
		default:
			return fmt.Errorf("%q: only letters and digits separated by single '.', '_' or '-': %w", s, ErrInvalidName)
		}
	}
	if prevSep {
		return fmt.Errorf("%q: ends with a separator: %w", s, ErrInvalidName)
	}
	return nil
}

// plainName accepts other network namespace names ip netns allows: no
// slash, not "." or "..", no NUL.
func plainName(s string) bool {
	return s != "." && s != ".." && len(s) <= 255 && !strings.ContainsAny(s, "/\x00")
}
