package zinit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"

	"github.com/zos-go/zos/internal/zinit/proto"
)

// MaxServiceFileBytes bounds the size of a service file.
const MaxServiceFileBytes = 64 << 10

// ErrBadName reports a service name that cannot be a file stem.
var ErrBadName = errors.New("bad service name")

// LogType says where a service's output goes.
type LogType string

// Log types. LogNone is spelled "none" (zinit v0.2) or "null" (v0.1 docs).
const (
	LogRing   LogType = "ring"
	LogStdout LogType = "stdout"
	LogNone   LogType = "none"
)

// Service is a parsed, validated service file.
type Service struct {
	// Exec is the command line split into words (Exec[0] is the program).
	Exec []string
	// Test is the health command split into words; empty means none.
	Test    []string
	Oneshot bool
	After   []string
	Log     LogType
	Env     map[string]string
	// Dir is the working directory ("/" when unset).
	Dir string
	// StopSignal is sent by stop.
	StopSignal unix.Signal
}

// serviceFile is the YAML form. Unknown keys are errors.
type serviceFile struct {
	Exec    string            `yaml:"exec"`
	Test    string            `yaml:"test"`
	Oneshot bool              `yaml:"oneshot"`
	After   []string          `yaml:"after"`
	Log     yaml.Node         `yaml:"log"` // a node, to tell null from absent
	Env     map[string]string `yaml:"env"`
	Dir     string            `yaml:"dir"`
	Signal  struct {
		Stop string `yaml:"stop"`
	} `yaml:"signal"`
}

// ValidName reports an error unless name can name a service: 1 to 128
// characters from [A-Za-z0-9._@-], not starting with a dot.
func ValidName(name string) error {
	if name == "" || len(name) > 128 || name[0] == '.' {
		return fmt.Errorf("%q: %w", name, ErrBadName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '@' || c == '-') {
			return fmt.Errorf("%q: %w", name, ErrBadName)
		}
	}
	return nil
}

// ParseService parses and validates a service file.
func ParseService(data []byte) (Service, error) {
	if len(data) > MaxServiceFileBytes {
		return Service{}, fmt.Errorf("file over %d bytes", MaxServiceFileBytes)
	}
	var f serviceFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return Service{}, errors.New("yaml: empty file")
		}
		return Service{}, err // yaml.v3 errors start with "yaml: "
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return Service{}, errors.New("yaml: more than one document")
	}
	s := Service{Oneshot: f.Oneshot, Dir: f.Dir, Env: f.Env}
	var err error
	if strings.TrimSpace(f.Exec) == "" {
		return Service{}, errors.New("exec is required")
	}
	if s.Exec, err = splitCommand("exec", f.Exec); err != nil {
		return Service{}, err
	}
	if strings.TrimSpace(f.Test) != "" {
		if s.Test, err = splitCommand("test", f.Test); err != nil {
			return Service{}, err
		}
	}
	seen := map[string]bool{}
	for _, dep := range f.After {
		if err := ValidName(dep); err != nil {
			return Service{}, fmt.Errorf("after: %w", err)
		}
		if !seen[dep] {
			s.After = append(s.After, dep)
			seen[dep] = true
		}
	}
	logType := f.Log.Value
	switch {
	case f.Log.Kind == yaml.ScalarNode && f.Log.ShortTag() == "!!null":
		logType = "null"
	case f.Log.Kind != 0 && f.Log.Kind != yaml.ScalarNode:
		return Service{}, errors.New("log: want a string")
	}
	switch strings.ToLower(logType) {
	case "", "ring":
		s.Log = LogRing
	case "stdout":
		s.Log = LogStdout
	case "none", "null":
		s.Log = LogNone
	default:
		return Service{}, fmt.Errorf("log %q: want ring, stdout or none", logType)
	}
	s.StopSignal = unix.SIGTERM
	if f.Signal.Stop != "" {
		sig, ok := ParseSignal(f.Signal.Stop)
		if !ok {
			return Service{}, fmt.Errorf("signal.stop: %w", proto.InvalidSignal(f.Signal.Stop))
		}
		s.StopSignal = sig
	}
	for k, v := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return Service{}, fmt.Errorf("env: bad variable %q", k)
		}
	}
	if s.Dir != "" && !filepath.IsAbs(s.Dir) {
		return Service{}, fmt.Errorf("dir %q: not absolute", s.Dir)
	}
	return s, nil
}

func splitCommand(key, line string) ([]string, error) {
	if strings.ContainsRune(line, 0) {
		return nil, fmt.Errorf("%s: contains a NUL byte", key)
	}
	words, err := proto.Split(line)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("%s: empty command", key)
	}
	return words, nil
}

// ServicePath returns the file of service name in dir.
func ServicePath(dir, name string) string { return filepath.Join(dir, name+".yaml") }

// LoadService reads and parses the file of service name in dir.
func LoadService(dir, name string) (Service, error) {
	if err := ValidName(name); err != nil {
		return Service{}, err
	}
	f, err := os.Open(ServicePath(dir, name))
	if err != nil {
		return Service{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxServiceFileBytes+1))
	if err != nil {
		return Service{}, err
	}
	return ParseService(data)
}
