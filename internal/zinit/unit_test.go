package zinit

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

func TestRing(t *testing.T) {
	r := NewRing(3)
	for i := range 5 {
		r.Write(fmt.Sprint(i))
	}
	if got := r.Snapshot(); !slices.Equal(got, []string{"2", "3", "4"}) {
		t.Fatalf("snapshot %q", got)
	}
	lines, sub := r.Subscribe(2)
	defer sub.Close()
	if !slices.Equal(lines, []string{"2", "3", "4"}) {
		t.Fatalf("subscribe snapshot %q", lines)
	}
	r.Write("5")
	r.Write("6")
	r.Write("7") // the subscriber's buffer holds 2: this one is dropped
	if a, b := <-sub.C, <-sub.C; a != "5" || b != "6" {
		t.Fatalf("got %q %q", a, b)
	}
	if d := sub.Dropped(); d != 1 {
		t.Fatalf("dropped %d, want 1", d)
	}
	sub.Close()
	r.Write("8") // no subscriber: must not block
	if got := r.Snapshot(); !slices.Equal(got, []string{"6", "7", "8"}) {
		t.Fatalf("snapshot %q", got)
	}
}

func TestFindCycle(t *testing.T) {
	g := map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "x"}, "e": {"e"}, "f": {"d"}}
	deps := func(n string) []string { return g[n] }
	if c := findCycle("a", deps); !slices.Equal(c, []string{"a", "b", "c", "a"}) {
		t.Errorf("cycle from a: %v", c)
	}
	if c := findCycle("e", deps); !slices.Equal(c, []string{"e", "e"}) {
		t.Errorf("self cycle: %v", c)
	}
	g2 := map[string][]string{"a": {"b", "c"}, "b": {"c"}, "c": nil, "d": {"zz"}}
	for n := range g2 {
		if c := findCycle(n, func(n string) []string { return g2[n] }); c != nil {
			t.Errorf("no cycle expected from %s: %v", n, c)
		}
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{base: 100 * time.Millisecond, max: time.Second, stable: 10 * time.Second}
	var got []time.Duration
	for range 6 {
		got = append(got, b.delay(time.Millisecond))
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !slices.Equal(got, want) {
		t.Fatalf("delays %v, want %v", got, want)
	}
	if d := b.delay(11 * time.Second); d != 100*time.Millisecond {
		t.Fatalf("after a stable run: %v, want the base delay", d)
	}
}

func TestStateString(t *testing.T) {
	for st, want := range map[State]string{
		{Kind: Running}: "Running",
		{Error, exitReason(12, syscall.WaitStatus(1<<8))}: "Error(Exited(Pid(12), 1))",
		{Error, exitReason(12, syscall.WaitStatus(9))}:    "Error(Signaled(Pid(12), SIGKILL, false))",
		{Blocked, "db is Unknown"}:                        "Blocked(db is Unknown)",
		{Kind: TestError}:                                 "TestError",
		{Kind: StateKind(99)}:                             "Unknown",
	} {
		if st.String() != want {
			t.Errorf("%#v prints %q, want %q", st, st.String(), want)
		}
	}
}

func TestParseStat(t *testing.T) {
	// comm with spaces and parentheses, as the kernel prints it.
	line := "1234 (my (odd) prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200 18446744073709551615\n"
	st, err := parseStat([]byte(line))
	if err != nil || st.state != 'S' || st.sid != 1234 || st.start != 987654 {
		t.Fatalf("parseStat = %+v, %v", st, err)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2", "1 (x) S 1 2 abc 0 0 0 0 0 0 0 0 0 0 0 0 0 0 12"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) accepted", bad)
		}
	}
}

func TestYAMLScalar(t *testing.T) {
	for in, want := range map[string]string{
		"Running":                    "Running",
		"Error(Exited(Pid(12), 1))":  "Error(Exited(Pid(12), 1))",
		`Failure(exec "x": missing)`: `'Failure(exec "x": missing)'`,
		"zdb@pool-1":                 "zdb@pool-1",
		"123":                        `"123"`,
		"null":                       `"null"`,
		"@x":                         `'@x'`,
	} {
		if got := yamlScalar(in); got != want {
			t.Errorf("yamlScalar(%q) = %q, want %q", in, got, want)
		}
	}
}

func testManager(t *testing.T, mod func(*Config)) *Manager {
	cfg := DefaultConfig()
	cfg.ConfigDir, cfg.StateDir = t.TempDir(), t.TempDir()
	if mod != nil {
		mod(&cfg)
	}
	m, err := New(cfg, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The restart delay runs on the clock: it takes exactly its time, a start
// request cuts it short, and a stop ends it too (the service then waits for
// a start).
func TestWaitRestartTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := testManager(t, nil)
		m.mu.Lock()
		s := m.addLocked("svc", Service{Exec: []string{"x"}})
		m.runCtx = t.Context()
		m.mu.Unlock()

		start := time.Now()
		if !m.waitRestart(t.Context(), s, 4*time.Second) {
			t.Fatal("waitRestart ended the runner")
		}
		if d := time.Since(start); d != 4*time.Second {
			t.Fatalf("waited %v, want 4s", d)
		}

		start = time.Now()
		go func() {
			time.Sleep(time.Second)
			if err := m.Start("svc"); err != nil {
				t.Error(err)
			}
		}()
		m.waitRestart(t.Context(), s, time.Minute)
		if d := time.Since(start); d != time.Second {
			t.Fatalf("start cut the delay after %v, want 1s", d)
		}

		start = time.Now()
		go func() {
			time.Sleep(2 * time.Second)
			m.mu.Lock()
			s.target = Down
			s.poke()
			m.mu.Unlock()
		}()
		m.waitRestart(t.Context(), s, time.Minute)
		if d := time.Since(start); d != 2*time.Second {
			t.Fatalf("stop ended the delay after %v, want 2s", d)
		}

		ctx, cancel := context.WithCancel(t.Context())
		go func() { time.Sleep(time.Second); cancel() }()
		if m.waitRestart(ctx, s, time.Minute) {
			t.Fatal("waitRestart continued after its context ended")
		}
	})
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"relative config dir": func(c *Config) { c.ConfigDir = "etc" },
		"relative state dir":  func(c *Config) { c.StateDir = "" },
		"no ring":             func(c *Config) { c.LogLines = 0 },
		"max below base":      func(c *Config) { c.MaxRestartDelay = c.RestartDelay / 2 },
		"no stop timeout":     func(c *Config) { c.StopTimeout = 0 },
		"bad test delays":     func(c *Config) { c.TestDelayStep = 0 },
	} {
		c := DefaultConfig()
		mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "") {
			t.Errorf("%s: accepted", name)
		}
	}
}
