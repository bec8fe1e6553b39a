package container

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/BurntSushi/toml"

	"github.com/zos-go/zos/internal/atomicfile"
	"github.com/zos-go/zos/pkg/zinit"
)

// DaemonService is the zinit service name of the node's containerd.
const DaemonService = "containerd"

// DaemonConfig describes the node's own containerd: everything lives under
// Dir (<zos root>/containerd), never under the system's /var/lib/containerd
// or /run/containerd.
type DaemonConfig struct {
	// Dir holds config.toml, root/, state/, runc/ (runc's state),
	// opt/ and the sockets containerd.sock and containerd.sock.ttrpc.
	Dir string
	// Binary is containerd's path or name on PATH (default "containerd").
	Binary string
	// LogLevel is containerd's log level (default "info").
	LogLevel string
	// BootIDFile gives the kernel's boot id (default
	// /proc/sys/kernel/random/boot_id); see WriteConfig.
	BootIDFile string
}

// Address is the daemon's gRPC socket.
func (d DaemonConfig) Address() string { return filepath.Join(d.Dir, "containerd.sock") }

// RuncRoot is runc's state directory for the daemon's tasks.
func (d DaemonConfig) RuncRoot() string { return filepath.Join(d.Dir, "runc") }

// ConfigPath is the daemon's config file.
func (d DaemonConfig) ConfigPath() string { return filepath.Join(d.Dir, "config.toml") }

// Validate checks that Dir is absolute and short enough for the sockets.
func (d DaemonConfig) Validate() error {
	if d.Dir == "" || !filepath.IsAbs(d.Dir) {
		return fmt.Errorf("containerd dir %q must be an absolute path: %w", d.Dir, ErrInvalidConfig)
	}
	if len(d.Address())+len(".ttrpc") > 100 {
		return fmt.Errorf("containerd dir %q too long for a unix socket path: %w", d.Dir, ErrInvalidConfig)
	}
	return nil
}

// disabledPlugins are containerd 1.6 plugins the node never uses: CRI,
// the snapshotters that would probe the host's disks (we run containers on
// flist mounts, with no snapshot), containerd's own restart monitor
// (restarts are the module's), tracing. The v1 runtime stays: 1.6's task
// service refuses to load without it.
var disabledPlugins = []string{
	"io.containerd.grpc.v1.cri",
	"io.containerd.snapshotter.v1.aufs",
	"io.containerd.snapshotter.v1.btrfs",
	"io.containerd.snapshotter.v1.devmapper",
	"io.containerd.snapshotter.v1.zfs",
	"io.containerd.internal.v1.restart",
	"io.containerd.tracing.processor.v1.otlp",
	"io.containerd.internal.v1.tracing",
}

// Config returns the content of the daemon's config.toml (version 2, as
// containerd 1.6 reads it).
func (d DaemonConfig) Config() ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	level := d.LogLevel
	if level == "" {
		level = "info"
	}
	cfg := map[string]any{
		"version":          2,
		"root":             filepath.Join(d.Dir, "root"),
		"state":            filepath.Join(d.Dir, "state"),
		"disabled_plugins": disabledPlugins,
		"grpc":             map[string]any{"address": d.Address()},
		"ttrpc":            map[string]any{"address": d.Address() + ".ttrpc"},
		"debug":            map[string]any{"level": level},
		"plugins": map[string]any{
			"io.containerd.internal.v1.opt": map[string]any{"path": filepath.Join(d.Dir, "opt")},
		},
	}
	var b bytes.Buffer
	b.WriteString("# containerd of the zos node; written by the container module, do not edit.\n")
	if err := toml.NewEncoder(&b).Encode(cfg); err != nil {
		return nil, fmt.Errorf("containerd config: %w", err)
	}
	return b.Bytes(), nil
}

// WriteConfig creates Dir and writes config.toml atomically; it returns
// the daemon's command line. The state and runc directories live on disk
// under Dir, so after a reboot they describe tasks that no longer exist:
// when the kernel's boot id differs from the one recorded in Dir, they are
// removed first (nothing can run from them then). Within one boot they are
// never touched, so running shims and tasks are kept.
func (d DaemonConfig) WriteConfig() ([]string, error) {
	b, err := d.Config()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(d.Dir, 0o711); err != nil {
		return nil, fmt.Errorf("containerd dir: %w", err)
	}
	if err := d.dropStaleState(); err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(d.ConfigPath(), b, 0o644); err != nil {
		return nil, fmt.Errorf("containerd config: %w", err)
	}
	bin := d.Binary
	if bin == "" {
		bin = "containerd"
	}
	return []string{bin, "--config", d.ConfigPath()}, nil
}

// dropStaleState removes the state and runc directories left by a
// previous boot, then records the current boot id.
func (d DaemonConfig) dropStaleState() error {
	src := d.BootIDFile
	if src == "" {
		src = "/proc/sys/kernel/random/boot_id"
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("containerd dir: boot id: %w", err)
	}
	boot := bytes.TrimSpace(b)
	recorded := filepath.Join(d.Dir, "boot_id")
	old, err := os.ReadFile(recorded)
	if err == nil && bytes.Equal(bytes.TrimSpace(old), boot) {
		return nil
	}
	if err == nil { // another boot: a fresh install has nothing to drop
		for _, p := range []string{filepath.Join(d.Dir, "state"), d.RuncRoot()} {
			if err := os.RemoveAll(p); err != nil {
				return fmt.Errorf("containerd dir: stale state: %w", err)
			}
		}
	}
	if err := atomicfile.WriteFile(recorded, append(boot, '\n'), 0o644); err != nil {
		return fmt.Errorf("containerd dir: boot id: %w", err)
	}
	return nil
}

// Service writes the config (WriteConfig) and returns the zinit service
// that runs the daemon; it counts as running once its socket answers
// (ctr version). The node adds it as DaemonService and monitors it.
func (d DaemonConfig) Service() (zinit.InitService, error) {
	argv, err := d.WriteConfig()
	if err != nil {
		return zinit.InitService{}, err
	}
	return zinit.InitService{
		Exec: shellJoin(argv),
		Test: shellJoin([]string{"ctr", "--address", d.Address(), "version"}),
		Log:  zinit.RingLogType,
	}, nil
}

// shellJoin quotes each word so that a shell-style split gives argv back.
func shellJoin(argv []string) string {
	var b bytes.Buffer
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(quote(a))
	}
	return b.String()
}
