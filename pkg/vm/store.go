package vm

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/zos-go/zos/internal/atomicfile"
	"github.com/zos-go/zos/pkg"
)

const recordVersion = 1

// record is what the module keeps of a VM on disk (<Root>/vms/<name>/vm.json).
// It is written before QEMU starts, so a crash of the agent at any moment
// leaves a record for every QEMU it may have started.
type record struct {
	Version int      `json:"version"`
	VM      pkg.VM   `json:"vm"`
	Machine Machine  `json:"machine"`
	Service string   `json:"service"`
	Argv    []string `json:"argv"`
	// Deleting is set before Delete stops QEMU; the next start finishes it.
	Deleting bool `json:"deleting,omitempty"`
}

// store keeps the records.
type store struct{ dir string }

func (s store) vmDir(name string) string { return filepath.Join(s.dir, name) }
func (s store) file(name string) string  { return filepath.Join(s.dir, name, "vm.json") }

// ConsoleLog returns the console log file of a VM.
func (s store) consoleLog(name string) string { return filepath.Join(s.dir, name, "console.log") }

func (s store) save(r record) error {
	r.Version = recordVersion
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("vm %s: record: %w", r.VM.Name, err)
	}
	if err := os.MkdirAll(s.vmDir(r.VM.Name), 0o700); err != nil {
		return fmt.Errorf("vm %s: %w", r.VM.Name, err)
	}
	if err := atomicfile.WriteFile(s.file(r.VM.Name), b, 0o600); err != nil {
		return fmt.Errorf("vm %s: record: %w", r.VM.Name, err)
	}
	return nil
}

func (s store) load(name string) (record, error) {
	b, err := os.ReadFile(s.file(name))
	if err != nil {
		return record{}, fmt.Errorf("vm %s: record: %w", name, err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return record{}, fmt.Errorf("vm %s: record: %w", name, err)
	}
	if r.Version != recordVersion || r.VM.Name != name {
		return record{}, fmt.Errorf("vm %s: record version %d for %q: %w", name, r.Version, r.VM.Name, ErrInvalidVM)
	}
	return r, nil
}

// remove deletes the VM's directory; a missing one is not an error.
func (s store) remove(name string) error {
	if err := os.RemoveAll(s.vmDir(name)); err != nil {
		return fmt.Errorf("vm %s: %w", name, err)
	}
	return atomicfile.SyncDir(s.dir)
}

// names lists the VM directories.
func (s store) names() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vm records: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}
