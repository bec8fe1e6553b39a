package zosd

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is zosd's configuration file (TOML). Everything a node keeps lives
// under Root; the development grid gives each simulated node its own Root and
// Prefix.
type Config struct {
	// Root is the node's state root (default /var/lib/zos).
	Root string `toml:"root"`
	// Prefix is put in front of every global name this node creates
	// (namespaces, zinit services, pool labels), so several nodes share
	// one machine. Empty on a real node.
	Prefix string `toml:"prefix"`
	// FarmID, when set, overrides the kernel command line's farmer_id.
	FarmID *uint64 `toml:"farm_id"`
	// Cmdline is the kernel command line file (/proc/cmdline).
	Cmdline string `toml:"cmdline"`
	// Hostname reported to the explorer (default: the machine's).
	Hostname string `toml:"hostname"`

	// Explorer lists the NATS URLs of the grid; empty runs the node
	// without a grid (reservations from ReservationDir only).
	Explorer []string `toml:"explorer"`
	// Hub is the default flist storage (the hub's block store URL).
	Hub string `toml:"hub"`
	// ReservationDir, when set, is a directory of signed reservation files
	// the node deploys too (development).
	ReservationDir string `toml:"reservation_dir"`

	// Zinit is zinit's control socket and ZinitConfigDir its service
	// directory.
	Zinit          string `toml:"zinit"`
	ZinitConfigDir string `toml:"zinit_config_dir"`
	// BinDir is where the zos helper binaries (flistfs, zos-wg, zdb,
	// zos-shimlogs, zos-corex, zos-logship) are; empty: next to zosd.
	BinDir string `toml:"bin_dir"`

	// RunDir holds runtime sockets (0-db admin sockets, QMP sockets) under
	// <RunDir>/<Prefix>: unix socket paths are limited to 107 bytes, so it
	// stays short whatever Root is.
	RunDir string `toml:"run_dir"`

	// API is the local API's unix socket (root only); Metrics, when set, a
	// TCP address serving Prometheus /metrics.
	API     string `toml:"api"`
	Metrics string `toml:"metrics"`

	Storage StorageConfig `toml:"storage"`
	Network NetworkConfig `toml:"network"`
	ZDB     ZDBConfig     `toml:"zdb"`

	// CPUOvercommit multiplies the logical cores the node sells (CRU): a
	// container's or VM's CPU count is a limit, not a pinned core. 1 (the
	// default) sells each core once; the development grid sells more, so a
	// small machine hosts a useful grid.
	CPUOvercommit uint64 `toml:"cpu_overcommit"`

	// ReportInterval is the period of the uptime and capacity reports.
	ReportInterval Duration `toml:"report_interval"`
	// ExpiryInterval is how often workloads past their lifetime are
	// looked for and removed (20 s, as the original).
	ExpiryInterval Duration `toml:"expiry_interval"`
}

// StorageConfig selects the node's disks.
type StorageConfig struct {
	// Devices lists block devices or globs; "path:ssd" or "path:hdd"
	// overrides the probed type.
	Devices []string `toml:"devices"`
	// Discover also takes free disks found on the machine.
	Discover bool `toml:"discover"`
	// CacheSize is the cache volume quota in bytes (default 100 GiB).
	CacheSize uint64 `toml:"cache_size"`
}

// NetworkConfig is the node's network bootstrap.
type NetworkConfig struct {
	// Uplink is the NIC joined to the zos bridge.
	Uplink string `toml:"uplink"`
	// Address and Gateway configure the zos bridge statically; empty uses
	// DHCP.
	Address string `toml:"address"`
	Gateway string `toml:"gateway"`
	// NDMZAddress and NDMZGateway configure the ndmz uplink statically.
	NDMZAddress string `toml:"ndmz_address"`
	NDMZGateway string `toml:"ndmz_gateway"`
	// PublicIPv4 and PublicGateway4 give the node a public namespace.
	PublicIPv4     string `toml:"public_ipv4"`
	PublicGateway4 string `toml:"public_gateway4"`
	// WireGuard is auto, kernel or userspace.
	WireGuard string `toml:"wireguard"`
}

// ZDBConfig places the node's 0-db servers.
type ZDBConfig struct {
	// Listen is the address the 0-db servers listen on (host part).
	Listen string `toml:"listen"`
	// Port is the first port; each 0-db volume takes the next free one.
	Port uint16 `toml:"port"`
}

// Duration is a time.Duration written as "10m" in TOML.
type Duration time.Duration

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText formats a Go duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// DefaultConfig is a real node's configuration.
func DefaultConfig() Config {
	return Config{
		Root:           "/var/lib/zos",
		Cmdline:        "/proc/cmdline",
		Zinit:          "/var/run/zinit.sock",
		RunDir:         "/run/zos",
		ZinitConfigDir: "/etc/zinit",
		API:            "/var/run/zosd.sock",
		ReportInterval: Duration(10 * time.Minute),
		ExpiryInterval: Duration(20 * time.Second),
		CPUOvercommit:  1,
		ZDB:            ZDBConfig{Listen: "::", Port: 9900},
		Network:        NetworkConfig{WireGuard: "auto"},
	}
}

// LoadConfig reads a TOML file over the defaults. Unknown keys are an error,
// so a misspelt setting never silently does nothing.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	md, err := toml.DecodeFile(path, &cfg)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return Config{}, fmt.Errorf("config %s: unknown keys %v", path, und)
	}
	return cfg, cfg.Validate()
}

// Validate reports an unusable configuration.
func (c Config) Validate() error {
	var errs []error
	if !filepath.IsAbs(c.Root) {
		errs = append(errs, fmt.Errorf("root %q: must be an absolute path", c.Root))
	}
	if c.Zinit == "" {
		errs = append(errs, errors.New("zinit: socket path required"))
	}
	if !filepath.IsAbs(c.RunDir) || len(c.RunDir) > 40 {
		errs = append(errs, fmt.Errorf("run_dir %q: an absolute path of at most 40 bytes (socket paths)", c.RunDir))
	}
	if c.API == "" {
		errs = append(errs, errors.New("api: socket path required"))
	}
	if len(c.Prefix) > 6 {
		errs = append(errs, fmt.Errorf("prefix %q: at most 6 characters (interface names)", c.Prefix))
	}
	for _, f := range []struct{ name, v string }{
		{"network.address", c.Network.Address}, {"network.ndmz_address", c.Network.NDMZAddress},
		{"network.public_ipv4", c.Network.PublicIPv4},
	} {
		if f.v == "" {
			continue
		}
		if _, err := netip.ParsePrefix(f.v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		}
	}
	for _, f := range []struct{ name, v string }{
		{"network.gateway", c.Network.Gateway}, {"network.ndmz_gateway", c.Network.NDMZGateway},
		{"network.public_gateway4", c.Network.PublicGateway4},
	} {
		if f.v == "" {
			continue
		}
		if _, err := netip.ParseAddr(f.v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		}
	}
	if c.CPUOvercommit < 1 || c.CPUOvercommit > 64 {
		errs = append(errs, fmt.Errorf("cpu_overcommit %d: between 1 and 64", c.CPUOvercommit))
	}
	if c.ReportInterval <= 0 {
		errs = append(errs, errors.New("report_interval: must be positive"))
	}
	if c.ExpiryInterval <= 0 {
		errs = append(errs, errors.New("expiry_interval: must be positive"))
	}
	return errors.Join(errs...)
}

// binary returns the path of helper name.
func (c Config) binary(name string) string {
	dir := c.BinDir
	if dir == "" {
		if exe, err := os.Executable(); err == nil {
			dir = filepath.Dir(exe)
		}
	}
	return filepath.Join(dir, name)
}
