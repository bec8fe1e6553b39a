package logship

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zos-go/zos/pkg/zinit"
)

// fakeSource plays zinit's log socket: each connection gets the ring
// (lines logged so far) then new lines, until the test ends the stream.
type fakeSource struct {
	mu      sync.Mutex
	ring    []string        // guarded by mu
	subs    []chan string   // guarded by mu
	conns   int             // guarded by mu
	closeCh []chan struct{} // guarded by mu
}

func (f *fakeSource) log(raw string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ring = append(f.ring, raw)
	for _, s := range f.subs {
		s <- raw
	}
}

// restart ends every stream, as when zinit restarts.
func (f *fakeSource) restart() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.closeCh {
		close(c)
	}
	f.subs, f.closeCh = nil, nil
}

func (f *fakeSource) connections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conns
}

func (f *fakeSource) Logs(ctx context.Context, service string, fn func(zinit.LogLine) error) error {
	f.mu.Lock()
	f.conns++
	ch, done := make(chan string, 1000), make(chan struct{})
	replay := slices.Clone(f.ring)
	f.subs = append(f.subs, ch)
	f.closeCh = append(f.closeCh, done)
	f.mu.Unlock()
	for _, l := range replay {
		if err := fn(zinit.ParseLogLine(l)); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-done:
			return nil
		case l := <-ch:
			if err := fn(zinit.ParseLogLine(l)); err != nil {
				return err
			}
		}
	}
}

// fakePub records what is published; it fails while down is set and
// blocks while gate is closed.
type fakePub struct {
	mu   sync.Mutex
	got  []string // guarded by mu
	down error    // guarded by mu
	gate chan struct{}
}

func (p *fakePub) Publish(ctx context.Context, channel, msg string) error {
	if p.gate != nil {
		select {
		case <-p.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down != nil {
		return p.down
	}
	if channel != "node-logs" {
		return fmt.Errorf("channel %q", channel)
	}
	p.got = append(p.got, msg)
	return nil
}

func (p *fakePub) setDown(err error) {
	p.mu.Lock()
	p.down = err
	p.mu.Unlock()
}

func (p *fakePub) lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timeout waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func start(t *testing.T, cfg Config, src Source, pub Publisher) *Shipper {
	t.Helper()
	s, err := New(cfg, src, pub, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return s
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Channel = "node-logs"
	cfg.Exclude = []string{"debug-1-1"}
	cfg.RetryMin, cfg.RetryMax = time.Millisecond, 10*time.Millisecond
	return cfg
}

func TestShipInOrder(t *testing.T) {
	src, pub := &fakeSource{}, &fakePub{}
	src.log("[+] storaged: started")
	start(t, testConfig(), src, pub)
	src.log("[-] networkd: link down")
	src.log("[+] debug-1-1: publish failed") // the shipper's own: not shipped
	src.log("zinit: service restarted")
	want := []string{"[+] storaged: started", "[-] networkd: link down", "zinit: service restarted"}
	waitFor(t, "lines", func() bool { return len(pub.lines()) >= len(want) })
	time.Sleep(20 * time.Millisecond)
	if got := pub.lines(); !slices.Equal(got, want) {
		t.Fatalf("published %q, want %q", got, want)
	}
}

func TestShipRetriesAndReconnects(t *testing.T) {
	src, pub := &fakeSource{}, &fakePub{}
	pub.setDown(errors.New("connection refused"))
	s := start(t, testConfig(), src, pub)
	for i := range 5 {
		src.log(fmt.Sprintf("[+] svc: line %d", i))
	}
	time.Sleep(30 * time.Millisecond) // several failed attempts
	if got := pub.lines(); len(got) != 0 {
		t.Fatalf("published while down: %q", got)
	}
	pub.setDown(nil)
	waitFor(t, "5 lines", func() bool { return len(pub.lines()) == 5 })
	for i, l := range pub.lines() {
		if l != fmt.Sprintf("[+] svc: line %d", i) {
			t.Fatalf("line %d: %q", i, l)
		}
	}
	// zinit restarts: the stream is reopened (its ring replayed) and new
	// lines keep coming
	src.restart()
	waitFor(t, "reconnection", func() bool { return src.connections() >= 2 })
	src.log("[+] svc: after restart")
	waitFor(t, "line after restart", func() bool { return slices.Contains(pub.lines(), "[+] svc: after restart") })
	if shipped, dropped := s.Stats(); shipped < 6 || dropped != 0 {
		t.Fatalf("stats %d %d", shipped, dropped)
	}
}

func TestShipDropsOldestWhenFull(t *testing.T) {
	src, pub := &fakeSource{}, &fakePub{gate: make(chan struct{})}
	cfg := testConfig()
	cfg.Buffer = 10
	s := start(t, cfg, src, pub)
	for i := range 100 {
		src.log(fmt.Sprintf("[+] svc: %d", i))
	}
	// reading goes on while redis hangs: the queue keeps the newest lines
	waitFor(t, "drops", func() bool { _, d := s.Stats(); return d >= 89 })
	close(pub.gate)
	waitFor(t, "the newest lines", func() bool { l := pub.lines(); return len(l) > 0 && l[len(l)-1] == "[+] svc: 99" })
	got := pub.lines()
	if len(got) > 11 || len(got) < 10 {
		t.Fatalf("published %d lines: %q", len(got), got)
	}
	// the tail is the newest lines in order
	for i, l := range got[len(got)-10:] {
		if want := fmt.Sprintf("[+] svc: %d", 90+i); l != want {
			t.Fatalf("line %q, want %q", l, want)
		}
	}
	shipped, dropped := s.Stats()
	if shipped+dropped != 100 {
		t.Fatalf("shipped %d + dropped %d != 100", shipped, dropped)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := testConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"channel": func(c *Config) { c.Channel = "" },
		"buffer":  func(c *Config) { c.Buffer = 0 },
		"retry":   func(c *Config) { c.RetryMax = 0 },
	} {
		c := testConfig()
		mod(&c)
		if c.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(testConfig(), nil, &fakePub{}, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("nil source accepted")
	}
}
