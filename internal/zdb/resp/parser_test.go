package resp

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// parseAll feeds in to a Parser in pieces of at most chunk bytes, as a
// server reading a socket would, and returns the requests and how it ended:
// nil (all consumed), io.ErrUnexpectedEOF (a request left incomplete) or a
// protocol error.
func parseAll(p *Parser, in []byte, chunk int) ([][]string, error) {
	var out [][]string
	var buf []byte
	for len(in) > 0 || len(buf) > 0 {
		if len(in) > 0 {
			n := min(chunk, len(in))
			buf = append(buf, in[:n]...)
			in = in[n:]
		}
		for {
			args, n, err := p.Parse(buf)
			if err != nil {
				return out, err
			}
			if n == 0 {
				break
			}
			if len(args) > 0 {
				var s []string
				for _, a := range args {
					s = append(s, string(a))
				}
				out = append(out, s)
			}
			buf = buf[n:]
		}
		if len(in) == 0 && len(buf) > 0 {
			return out, io.ErrUnexpectedEOF
		}
	}
	return out, nil
}

func TestParser(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want [][]string
		err  error
	}{
		{"array", "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n", [][]string{{"GET", "key"}}, nil},
		{"pipelined", "*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n", [][]string{{"PING"}, {"SET", "k", ""}}, nil},
		{"binary", "*2\r\n$3\r\nSET\r\n$4\r\n\r\n\x00\xff\r\n", [][]string{{"SET", "\r\n\x00\xff"}}, nil},
		{"inline", "PING\r\nSET  a   b\n\r\n", [][]string{{"PING"}, {"SET", "a", "b"}}, nil},
		{"empty array skipped", "*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n", [][]string{{"PING"}}, nil},
		{"bad length", "*x\r\n", nil, ErrProtocol},
		{"not bulk", "*1\r\n:1\r\n", nil, ErrProtocol},
		{"bulk not terminated", "*1\r\n$2\r\nabcd\r\n", nil, ErrProtocol},
		{"negative bulk", "*1\r\n$-5\r\n", nil, ErrProtocol},
		{"line too long", strings.Repeat("x", maxLine), nil, ErrProtocol},
		{"cut in the middle", "*2\r\n$3\r\nGET\r\n", nil, io.ErrUnexpectedEOF},
		{"cut in a bulk", "*1\r\n$10\r\nabc", nil, io.ErrUnexpectedEOF},
	} {
		for _, chunk := range []int{1, 3, 1 << 20} {
			got, err := parseAll(NewParser(), []byte(tc.in), chunk)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("%s, chunks of %d: err = %v, want %v", tc.name, chunk, err, tc.err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s, chunks of %d: %v", tc.name, chunk, err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Fatalf("%s, chunks of %d: requests (-want +got):\n%s", tc.name, chunk, d)
			}
		}
	}
}

func TestParserLimits(t *testing.T) {
	p := NewParser()
	p.MaxBulk = 10
	if _, _, err := p.Parse([]byte("*1\r\n$100\r\n")); !errors.Is(err, ErrProtocol) {
		t.Fatalf("bulk over the limit: err = %v, want protocol error", err)
	}
	p = NewParser()
	p.MaxArgs = 2
	if _, _, err := p.Parse([]byte("*3\r\n")); !errors.Is(err, ErrProtocol) {
		t.Fatalf("array over the limit: err = %v, want protocol error", err)
	}
	if _, _, err := p.Parse([]byte("a b c\r\n")); !errors.Is(err, ErrProtocol) {
		t.Fatalf("inline over the limit: err = %v, want protocol error", err)
	}
}

// readAll runs the stream Reader over in, the reference the Parser follows.
func readAll(in []byte, maxBulk int) ([][]string, error) {
	rd := NewReader(bytes.NewReader(in))
	rd.MaxBulk = maxBulk
	var out [][]string
	for {
		args, err := rd.ReadRequest()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		var s []string
		for _, a := range args {
			s = append(s, string(a))
		}
		out = append(out, s)
	}
}

// FuzzParser checks that the Parser, fed in pieces, accepts and rejects
// exactly what the stream Reader does.
func FuzzParser(f *testing.F) {
	f.Add([]byte("*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"), uint8(3))
	f.Add([]byte("PING\r\n \t \r\nSET a b\n"), uint8(1))
	f.Add([]byte("*1\r\n$-1\r\n"), uint8(2))
	f.Add([]byte("*3\r\n$3\r\nSET\r\n$0\r\n\r\n$5\r\nhello\r\n*1\r\n$4\r\nPING\r\n"), uint8(7))
	f.Add([]byte("*99999999999999999999\r\n"), uint8(5))
	f.Add([]byte("*1\r\n$3\r\nabc\r"), uint8(4))
	f.Add([]byte("*2\r\n$1\r\na\r\n:x\r\n"), uint8(9))
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		const maxBulk = 1 << 16
		want, werr := readAll(in, maxBulk)
		p := NewParser()
		p.MaxBulk = maxBulk
		got, gerr := parseAll(p, in, int(chunk)+1)
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("requests of %q (-reader +parser):\n%s", in, d)
		}
		switch {
		case errors.Is(werr, ErrProtocol):
			if !errors.Is(gerr, ErrProtocol) {
				t.Fatalf("%q: reader %v, parser %v", in, werr, gerr)
			}
		case werr == nil && gerr != nil, werr != nil && !errors.Is(gerr, io.ErrUnexpectedEOF):
			t.Fatalf("%q: reader %v, parser %v", in, werr, gerr)
		}
	})
}
