package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/zdb/resp"
	"github.com/zos-go/zos/pkg/zdb/zdbtest"
)

// conn is a raw protocol client: it returns replies as the exact bytes the
// server sent, so tests check them byte for byte.
type conn struct {
	t  testing.TB
	c  net.Conn
	rd *bufio.Reader
}

func dial(t testing.TB, network, addr string) *conn {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &conn{t: t, c: c, rd: bufio.NewReader(c)}
}

func dialTCP(t testing.TB, s *zdbtest.Server) *conn {
	return dial(t, "tcp", "127.0.0.1:"+strconv.Itoa(s.Port))
}

func dialUnix(t testing.TB, s *zdbtest.Server) *conn { return dial(t, "unix", s.Socket) }

// do sends a command and returns the raw reply.
func (c *conn) do(args ...string) string {
	c.t.Helper()
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	return c.doBytes(b...)
}

func (c *conn) doBytes(args ...[]byte) string {
	c.t.Helper()
	_ = c.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.c.Write(resp.AppendCommand(nil, args...)); err != nil {
		c.t.Fatalf("%s: %v", args[0], err)
	}
	r, err := readReply(c.rd)
	if err != nil {
		c.t.Fatalf("%s: reply: %v", args[0], err)
	}
	return r
}

// expect sends a command and checks the raw reply.
func (c *conn) expect(want string, args ...string) {
	c.t.Helper()
	if got := c.do(args...); got != want {
		c.t.Fatalf("%q: got %q, want %q", strings.Join(args, " "), got, want)
	}
}

// readReply reads one complete reply and returns its raw bytes.
func readReply(rd *bufio.Reader) (string, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return "", err
	}
	if len(line) < 3 {
		return "", fmt.Errorf("short line %q", line)
	}
	switch line[0] {
	case '+', '-', ':':
		return line, nil
	case '$':
		n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
		if err != nil {
			return "", err
		}
		if n < 0 {
			return line, nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(rd, b); err != nil {
			return "", err
		}
		return line + string(b), nil
	case '*':
		n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
		if err != nil {
			return "", err
		}
		out := line
		for i := 0; i < n; i++ {
			r, err := readReply(rd)
			if err != nil {
				return "", err
			}
			out += r
		}
		return out, nil
	}
	return "", fmt.Errorf("unknown reply %q", line)
}

func bulk(s string) string { return "$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n" }

const (
	ok    = "+OK\r\n"
	null  = "$-1\r\n"
	one   = ":1\r\n"
	zero  = ":0\r\n"
	pong  = "+PONG\r\n"
	notSp = "-Command not supported\r\n"
)

func errReply(s string) string { return "-" + s + "\r\n" }

// bulkValue extracts the payload of a raw bulk reply.
func bulkValue(t testing.TB, raw string) string {
	t.Helper()
	head, rest, found := strings.Cut(raw, "\r\n")
	if !found || head[0] != '$' {
		t.Fatalf("not a bulk reply: %q", raw)
	}
	n, _ := strconv.Atoi(head[1:])
	return rest[:n]
}

// arrayItems splits a raw reply of an array of bulk strings.
func arrayItems(t testing.TB, raw string) []string {
	t.Helper()
	rd := bufio.NewReader(strings.NewReader(raw))
	line, _ := rd.ReadString('\n')
	if line[0] != '*' {
		t.Fatalf("not an array: %q", raw)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
	var out []string
	for i := 0; i < n; i++ {
		r, err := readReply(rd)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}
