package zinit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// runState is what zinit records about a service in its state directory, so
// that a new zinit adopts processes the previous one left running.
//
// These files describe processes, which do not survive a reboot, so they are
// written with temp + rename (atomic against a crash of zinit) but without
// fsync: the page cache survives kill -9, and after a power loss the start
// times no longer match any process.
type runState struct {
	Pid int `json:"pid,omitempty"`
	// Start is the process start time (clock ticks since boot), which tells
	// the process apart from a later one that reused its pid.
	Start uint64 `json:"start,omitempty"`
	// Running is true once the service's test passed.
	Running bool `json:"running,omitempty"`
	// Down is true after stop: the target survives a zinit restart.
	Down bool `json:"down,omitempty"`
}

const stateSuffix = ".state"

func statePath(dir, name string) string { return filepath.Join(dir, name+stateSuffix) }

func writeState(dir, name string, st runState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	path := statePath(dir, name)
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("state of %s: %w", name, err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("state of %s: %w", name, err)
	}
	return nil
}

func readState(dir, name string) (runState, error) {
	var st runState
	b, err := os.ReadFile(statePath(dir, name))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return runState{}, fmt.Errorf("state of %s: %w", name, err)
	}
	return st, nil
}

func removeState(dir, name string) error {
	err := os.Remove(statePath(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// stateNames lists the services that have a state file in dir.
func stateNames(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), stateSuffix); ok && ValidName(n) == nil {
			names = append(names, n)
		}
	}
	return names
}
