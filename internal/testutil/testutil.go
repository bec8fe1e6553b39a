// Package testutil is the test harness shared by every zos package: root gates,
// unique names, loop disks, network namespaces, external daemons and a leak
// checker.
//
// Isolation model. Tests of many packages run at the same time (go test runs
// packages in parallel) and the same suite may run twice on one machine. So
// every global object a test creates carries this process's Prefix (network
// namespaces, links, zinit services, daemons), and every file lives under a
// directory this process owns. CheckLeaks only judges objects that belong to
// this process: loop devices whose backing file is under this process's
// directories, mounts under them, namespaces and links carrying the prefix, and
// descendant processes. Code under test that names global objects must accept
// a name prefix in its Config, and tests pass Name(t, kind) or Prefix().
//
// Root tests start with RequireRoot. Under ZOS_TEST_STRICT=1 (what make test
// sets when run as root) a missing requirement fails the test instead of
// skipping it, so nothing is silently left untested.
package testutil

import (
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// StrictEnv is the environment variable that turns skips of RequireRoot into
// failures.
const StrictEnv = "ZOS_TEST_STRICT"

// Strict reports whether missing requirements must fail tests.
func Strict() bool { return os.Getenv(StrictEnv) == "1" }

// RequireRoot skips the test unless it runs as root and every tool is on PATH.
// Under ZOS_TEST_STRICT=1 it fails instead of skipping.
func RequireRoot(t testing.TB, tools ...string) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	missing = append(missing, missingTools(tools)...)
	if len(missing) == 0 {
		return
	}
	if Strict() {
		t.Fatalf("requires %v", missing)
	}
	t.Skipf("requires %v", missing)
}

// RequireTools is RequireRoot without the root requirement.
func RequireTools(t testing.TB, tools ...string) {
	t.Helper()
	missing := missingTools(tools)
	if len(missing) == 0 {
		return
	}
	if Strict() {
		t.Fatalf("requires %v", missing)
	}
	t.Skipf("requires %v", missing)
}

func missingTools(tools []string) []string {
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	return missing
}

var (
	prefixOnce sync.Once
	prefix     string
	counter    atomic.Uint64
)

// Prefix returns this test process's unique prefix: "zt" followed by four
// lowercase base-36 characters. Every global object a test creates carries it.
func Prefix() string {
	prefixOnce.Do(func() {
		var b [4]byte
		_, _ = rand.Read(b[:])
		const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"
		s := make([]byte, 4)
		for i := range s {
			s[i] = alphabet[int(b[i])%len(alphabet)]
		}
		prefix = "zt" + string(s)
	})
	return prefix
}

// Name returns a name unique on this machine for an object of the given kind
// (at most 3 characters are kept): Prefix + kind + a base-36 counter. Names
// stay within 15 characters, the limit for network interface names, for the
// first 46,656 names of a process.
func Name(t testing.TB, kind string) string {
	t.Helper()
	if len(kind) > 3 {
		kind = kind[:3]
	}
	return Prefix() + kind + strconv.FormatUint(counter.Add(1), 36)
}

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// Root returns the directory this process keeps its test files under
// (os.TempDir()/<prefix>). It is removed when empty at process exit only by
// the operating system's tmp cleaning; every test removes its own content.
func Root(t testing.TB) string {
	t.Helper()
	rootOnce.Do(func() {
		rootDir = filepath.Join(os.TempDir(), Prefix())
		rootErr = os.MkdirAll(rootDir, 0o755)
	})
	if rootErr != nil {
		t.Fatalf("test root: %v", rootErr)
	}
	return rootDir
}

// TempDir returns a new directory under Root, removed at the end of the test.
// Unlike t.TempDir it lives under this process's prefix, so the leak checker
// recognises mounts and loop files below it.
func TempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp(Root(t), sanitize(t.Name())+"-")
	if err != nil {
		t.Fatalf("temp dir: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove temp dir: %v", err)
		}
	})
	return dir
}

func sanitize(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
	if len(s) > 40 {
		s = s[:40]
	}
	return s
}

// WaitFor polls cond every 20ms until it returns nil or timeout passes; then
// it fails the test with the last error.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting %v for %s: %v", timeout, what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
