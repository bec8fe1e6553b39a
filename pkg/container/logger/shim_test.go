package logger

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zos-go/zos/internal/testutil"
)

type closer struct{ closed chan struct{} }

func (c closer) Close() error { close(c.closed); return nil }

func TestRunShimRingAndRedis(t *testing.T) {
	addr := testutil.RedisServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	sub := rdb.Subscribe(context.Background(), "out", "err")
	defer sub.Close()
	if _, err := sub.Receive(context.Background()); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	cfg := ShimConfig{Root: root, RingBytes: 1 << 20, RingFiles: 2, Namespace: "ns", ID: "c"}
	if err := WriteConfig(root, "ns", "c", []Logs{
		{Type: FileType},
		{Type: RedisType, Data: LogsRedis{Stdout: "redis://" + addr + "/out", Stderr: "redis://" + addr + "/err"}},
		{Type: RedisType, Data: LogsRedis{Stdout: "redis://127.0.0.1:1/unreachable"}},
	}); err != nil {
		t.Fatal(err)
	}
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	ready := closer{make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		done <- RunShim(context.Background(), cfg, outR, errR, ready, slog.New(slog.NewTextHandler(t.Output(), nil)))
	}()
	select {
	case <-ready.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("ready never closed")
	}
	io.WriteString(outW, "hello\r\nworld\n")
	io.WriteString(errW, "oops\n")
	got := map[string][]string{}
	for len(got["out"]) < 2 || len(got["err"]) < 1 {
		select {
		case m := <-sub.Channel():
			got[m.Channel] = append(got[m.Channel], m.Payload)
		case <-time.After(10 * time.Second):
			t.Fatalf("received %v", got)
		}
	}
	if strings.Join(got["out"], ",") != "hello,world" || got["err"][0] != "oops" {
		t.Fatalf("published %v", got)
	}
	io.WriteString(outW, "no newline at the end")
	outW.Close()
	errW.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunShim did not return after the streams closed")
	}
	b, _ := ReadRing(RingPath(root, "ns", "c"), 2, 0)
	for _, want := range []string{"hello\r\n", "world\n", "oops\n", "no newline at the end"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("ring %q lacks %q", b, want)
		}
	}
}

func TestRunShimWithoutConfig(t *testing.T) {
	root := t.TempDir()
	cfg := ShimConfig{Root: root, RingBytes: 1 << 20, RingFiles: 1, Namespace: "ns", ID: "c"}
	ready := closer{make(chan struct{})}
	if err := RunShim(context.Background(), cfg, strings.NewReader("a\n"), nil, ready, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(RingPath(root, "ns", "c")); string(b) != "a\n" {
		t.Fatalf("ring %q", b)
	}
}
