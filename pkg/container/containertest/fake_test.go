package containertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/container"
)

// fakeRootFS makes a root filesystem with an executable /bin/sleep: the
// Fake never runs it, but Prepare checks that it could.
func fakeRootFS(t *testing.T) string {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "sleep"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

var nsCounter atomic.Int64

func TestFakeConformance(t *testing.T) {
	Run(t, func(t *testing.T) Target {
		f := NewFake()
		f.NetNSExists = func(name string) bool { return name == "netns1" }
		return Target{
			Module:     f,
			RootFS:     fakeRootFS(t),
			NetNS:      "netns1",
			Entrypoint: "sleep 3600",
			NS:         func() string { return fmt.Sprintf("ns%d", nsCounter.Add(1)) },
		}
	})
}

func TestFakeExitBacksOff(t *testing.T) {
	now := time.Unix(1000, 0)
	f := NewFake()
	f.Now = func() time.Time { return now }
	c := pkg.Container{Name: "c", RootFS: fakeRootFS(t), Network: pkg.NetworkInfo{Namespace: "n"}, Entrypoint: "sleep 1"}
	if _, err := f.Run("ns", c); err != nil {
		t.Fatal(err)
	}
	for i, wantDelay := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second} {
		if err := f.Exit("ns", "c", 137, true); err != nil {
			t.Fatal(err)
		}
		st, _ := f.Status(context.Background(), "ns", "c")
		if st.State != container.StateRestarting || st.NextRestart.Sub(now) != wantDelay || !st.OOMKilled || st.Failures != i+1 {
			t.Fatalf("exit %d: status %+v, want restarting in %s", i, st, wantDelay)
		}
		now = st.NextRestart
		st, _ = f.Status(context.Background(), "ns", "c")
		if st.State != container.StateRunning || st.Restarts != i+1 {
			t.Fatalf("after the delay: %+v, want running, %d restarts", st, i+1)
		}
	}
}

func TestFakeLogs(t *testing.T) {
	f := NewFake()
	c := pkg.Container{Name: "c", RootFS: fakeRootFS(t), Network: pkg.NetworkInfo{Namespace: "n"}, Entrypoint: "/bin/sleep 1"}
	if _, err := f.Run("ns", c); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteLog("ns", "c", []byte("line 1\nline 2\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := f.Logs(context.Background(), "ns", "c", 7); string(b) != "line 2\n" {
		t.Fatalf("Logs tail = %q", b)
	}
}
