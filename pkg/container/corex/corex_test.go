package corex

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

func TestServeGivesATerminal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ln, []string{"/bin/sh", "-i"}, []string{"PATH=/usr/bin:/bin", "TERM=dumb", "PS1=$ "}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	for i := range 2 { // two sessions, one after the other
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "tty; echo session-%d-$((6*7))\n", i)
		sc := bufio.NewScanner(conn)
		var lines []string
		ok, isTTY := false, false
		for sc.Scan() {
			l := strings.TrimSpace(sc.Text())
			lines = append(lines, l)
			if strings.HasPrefix(l, "/dev/pts/") || strings.Contains(l, "$ /dev/pts/") {
				isTTY = true
			}
			if strings.HasSuffix(l, fmt.Sprintf("session-%d-42", i)) && !strings.Contains(l, "echo") {
				ok = true
				break
			}
		}
		if !ok || !isTTY {
			t.Fatalf("session %d: output %q (tty %v)", i, lines, isTTY)
		}
		conn.Close() // the shell gets SIGHUP
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
}

func TestServeReportsBadShell(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Serve(ctx, ln, []string{"/no/such/shell"}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(conn)
	if !strings.Contains(string(b), "cannot start /no/such/shell") {
		t.Fatalf("got %q", b)
	}
}
