package zinit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestTmpProf(t *testing.T) {
	m := testManager(t, func(c *Config) { c.Env = os.Environ(); c.ReapOrphans = os.Getenv("REAP") != "" })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(ctx) }()
	time.Sleep(100 * time.Millisecond)
	for i := range 100 {
		os.WriteFile(filepath.Join(m.cfg.ConfigDir, fmt.Sprint("s", i)+".yaml"), []byte("exec: sleep 100\n"), 0o644)
	}
	start := time.Now()
	var mon time.Duration
	for i := range 100 {
		t0 := time.Now()
		if err := m.Monitor(fmt.Sprint("s", i)); err != nil {
			t.Fatal(err)
		}
		mon += time.Since(t0)
		if d := time.Since(t0); d > 3*time.Millisecond {
			t.Logf("slow monitor %d: %v", i, d)
		}
	}
	t.Logf("monitors %v (in monitor %v)", time.Since(start), mon)
	for {
		n := 0
		for _, i := range m.List() {
			if i.State.Kind == Running {
				n++
			}
		}
		if n == 100 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("running after %v", time.Since(start))
	m.Shutdown(context.Background(), false)
	m.Finish()
	cancel()
	<-done
}
