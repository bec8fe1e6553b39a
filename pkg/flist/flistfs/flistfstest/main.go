// Package flistfstest lets test binaries serve flist mounts themselves: see Main.
package flistfstest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/zos-go/zos/pkg/flist/flistfs"
)

// Main is a TestMain for packages whose tests mount real flists: run
// through a symlink named flistfs, the test binary serves a mount instead
// of running tests, so the mounts under test run the code under test, in
// their own processes, as on a node. It sets *bin to that symlink (the
// Binary of flist.Config) and exits with the tests' status.
func Main(m *testing.M, bin *string) {
	if filepath.Base(os.Args[0]) == "flistfs" {
		os.Exit(flistfs.Main(os.Args[1:]))
	}
	dir, err := os.MkdirTemp("", "flistfs-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	self, err := os.Executable()
	if err == nil {
		*bin = filepath.Join(dir, "flistfs")
		err = os.Symlink(self, *bin)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
