package container_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/zos-go/zos/pkg/flist/flistfs"
)

// flistfsBin is a symlink named flistfs to this test binary: run through
// it, TestMain serves an flist mount instead of running tests, so the
// flist root filesystems of the tests are real flistfs mounts.
var flistfsBin string

func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "flistfs" {
		os.Exit(flistfs.Main(os.Args[1:]))
	}
	dir, err := os.MkdirTemp("", "container-flistfs-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	self, err := os.Executable()
	if err == nil {
		flistfsBin = filepath.Join(dir, "flistfs")
		err = os.Symlink(self, flistfsBin)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
