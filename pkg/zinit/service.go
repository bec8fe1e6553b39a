package zinit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/zos-go/zos/internal/atomicfile"
	izinit "github.com/zos-go/zos/internal/zinit"
)

// LogType is where zinit sends a service's output.
type LogType string

// Log types.
const (
	// StdoutLogType copies the output to zinit's stdout (and its ring).
	StdoutLogType LogType = "stdout"
	// RingLogType keeps the output in zinit's ring buffer (zinit log).
	RingLogType LogType = "ring"
	// NoneLogType discards the output.
	NoneLogType LogType = "none"
)

// ServiceSignal holds the signals of a service.
type ServiceSignal struct {
	// Stop is sent by stop (default SIGTERM).
	Stop string `yaml:"stop,omitempty"`
}

// InitService is the content of a zinit service file.
type InitService struct {
	// Exec is the command line, split shell-style (quotes honoured, no
	// shell: use sh -c for one).
	Exec string `yaml:"exec,omitempty"`
	// Oneshot services are not restarted; they end in success or error.
	Oneshot bool `yaml:"oneshot,omitempty"`
	// Test is a command that must exit 0 before the service counts as
	// running; zinit retries it.
	Test string `yaml:"test,omitempty"`
	// After lists the services that must be running (or a oneshot that
	// succeeded) before this one starts.
	After []string `yaml:"after,omitempty"`
	// Log says where the output goes (default ring).
	Log LogType `yaml:"log,omitempty"`
	// Env holds extra environment variables.
	Env map[string]string `yaml:"env,omitempty"`
	// Dir is the working directory (default /).
	Dir    string        `yaml:"dir,omitempty"`
	Signal ServiceSignal `yaml:"signal,omitempty"`
}

// Validate reports whether zinit would accept the service file, with the
// error zinit would give.
func (s InitService) Validate() error {
	b, err := yaml.Marshal(s)
	if err != nil {
		return err
	}
	if _, err := izinit.ParseService(b); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidService, err)
	}
	return nil
}

// WriteService validates s and writes it atomically as dir/<name>.yaml
// (mode 0660). Call Monitor afterwards so that zinit manages it.
func WriteService(dir, name string, s InitService) error {
	if err := izinit.ValidName(name); err != nil {
		return fmt.Errorf("service file: %w: %w", ErrInvalidService, err)
	}
	if err := s.Validate(); err != nil {
		return fmt.Errorf("service file %s: %w", name, err)
	}
	b, err := yaml.Marshal(s)
	if err != nil {
		return fmt.Errorf("service file %s: %w", name, err)
	}
	return atomicfile.WriteFile(izinit.ServicePath(dir, name), b, 0o660)
}

// DeleteService removes dir/<name>.yaml; a missing file is not an error.
// Stop and Forget the service first.
func DeleteService(dir, name string) error {
	if err := izinit.ValidName(name); err != nil {
		return fmt.Errorf("service file: %w: %w", ErrInvalidService, err)
	}
	err := os.Remove(izinit.ServicePath(dir, name))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("service file %s: %w", name, err)
	}
	if err == nil {
		return atomicfile.SyncDir(dir)
	}
	return nil
}

// ReadService reads dir/<name>.yaml.
func ReadService(dir, name string) (InitService, error) {
	var s InitService
	if err := izinit.ValidName(name); err != nil {
		return s, fmt.Errorf("service file: %w: %w", ErrInvalidService, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, name+".yaml"))
	if err != nil {
		return s, fmt.Errorf("service file %s: %w", name, err)
	}
	if err := yaml.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("service file %s: %w: %w", name, ErrInvalidService, err)
	}
	return s, nil
}

// AddService writes the service file in DefaultConfigDir.
func AddService(name string, s InitService) error { return WriteService(DefaultConfigDir, name, s) }

// RemoveService removes the service file from DefaultConfigDir.
func RemoveService(name string) error { return DeleteService(DefaultConfigDir, name) }

// AddService writes the service file in the client's config directory; call
// Monitor afterwards.
func (c *Client) AddService(name string, s InitService) error {
	return WriteService(c.configDir, name, s)
}

// RemoveService removes the service file from the client's config
// directory; Stop and Forget the service first (or use Destroy).
func (c *Client) RemoveService(name string) error { return DeleteService(c.configDir, name) }

// Get returns the service file of a service zinit manages.
func (c *Client) Get(name string) (InitService, error) {
	if _, err := c.Status(name); err != nil {
		return InitService{}, err
	}
	return ReadService(c.configDir, name)
}
