package container

import (
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"
)

func TestNewChecksShimLogger(t *testing.T) {
	cfg := DefaultConfig(t.TempDir())
	cfg.ShimLogs = "/no/such/zos-shimlogs"
	if _, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil))); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("New without the shim logger = %v, want ErrUnsupported", err)
	}
	cfg.ShimLogs = ""
	if _, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil))); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New with a bad config = %v, want ErrInvalidConfig", err)
	}
}

func TestContainerdDown(t *testing.T) {
	cfg := DefaultConfig(t.TempDir())
	cfg.Address = filepath.Join(t.TempDir(), "none.sock")
	cfg.ShimLogs = "/bin/true"
	cfg.OpTimeout = time.Second // calls wait that long for containerd to come (back)
	m, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	start := time.Now()
	if _, err := m.ListNS(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("ListNS with containerd down = %v, want ErrUnavailable", err)
	}
	if _, err := m.Inspect("ns", "c"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Inspect with containerd down = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 2*cfg.OpTimeout+2*time.Second {
		t.Fatalf("the calls took %s, more than their op timeout", d)
	}
}
