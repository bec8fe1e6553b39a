package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestNamesAreUniqueAndShort(t *testing.T) {
	seen := map[string]bool{}
	for range 2000 {
		n := Name(t, "bridge")
		if len(n) > 15 {
			t.Fatalf("name %q longer than 15", n)
		}
		if !strings.HasPrefix(n, Prefix()+"bri") {
			t.Fatalf("name %q lacks prefix %q and kind", n, Prefix())
		}
		if seen[n] {
			t.Fatalf("duplicate name %q", n)
		}
		seen[n] = true
	}
}

func TestTempDirUnderRootAndRemoved(t *testing.T) {
	var dir string
	t.Run("inner", func(t *testing.T) {
		dir = TempDir(t)
		if !strings.HasPrefix(dir, Root(t)+"/") {
			t.Fatalf("temp dir %s not under %s", dir, Root(t))
		}
		if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("temp dir %s still there after test: %v", dir, err)
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`:  "/a b",
		`/plain`:   "/plain",
		`/tab\011`: "/tab\t",
		`/bad\9`:   `/bad\9`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescape %q = %q, want %q", in, got, want)
		}
	}
}

func TestStartProcessStopsGroup(t *testing.T) {
	RequireTools(t, "sh", "sleep")
	var pid, child int
	t.Run("run", func(t *testing.T) {
		p := StartProcess(t, nil, "sh", "-c", "sleep 300 & echo $!; wait")
		pid = p.Pid()
		WaitFor(t, 5*time.Second, "child pid", func() error {
			s := strings.TrimSpace(p.Log())
			n, err := strconv.Atoi(s)
			child = n
			return err
		})
		if !ProcessAlive(child) {
			t.Fatalf("child %d not running", child)
		}
	})
	// SIGKILL is delivered asynchronously: give the group a moment to die.
	deadline := time.Now().Add(2 * time.Second)
	for (ProcessAlive(pid) || ProcessAlive(child)) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if ProcessAlive(pid) || ProcessAlive(child) {
		t.Fatalf("processes survived the test: leader %v child %v", ProcessAlive(pid), ProcessAlive(child))
	}
}

func TestFindLeaksSeesProcess(t *testing.T) {
	RequireTools(t, "sleep")
	before := snapshot{procs: descendants(os.Getpid())}
	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	leaks := findLeaks(nil, before)
	want := "process " + strconv.Itoa(cmd.Process.Pid) + " (sleep)"
	found := false
	for _, l := range leaks {
		found = found || l == want
	}
	if !found {
		t.Fatalf("leaks %v do not name %q", leaks, want)
	}
	_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
	if leaks := findLeaks(nil, before); len(leaks) != 0 {
		t.Fatalf("leaks after kill: %v", leaks)
	}
}

func TestRedisServer(t *testing.T) {
	CheckLeaks(t)
	addr := RedisServer(t)
	if err := redisPing(addr); err != nil {
		t.Fatalf("ping %s: %v", addr, err)
	}
}
