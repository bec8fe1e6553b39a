package resp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func read(t *testing.T, in string) ([][]string, error) {
	t.Helper()
	rd := NewReader(bufio.NewReader(strings.NewReader(in)))
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

func TestReadRequest(t *testing.T) {
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
		{"cut in the middle", "*2\r\n$3\r\nGET\r\n", nil, io.ErrUnexpectedEOF},
		{"cut in a bulk", "*1\r\n$10\r\nabc", nil, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := read(t, tc.in)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Fatalf("requests (-want +got):\n%s", d)
			}
		})
	}
}

func TestBulkLimit(t *testing.T) {
	rd := NewReader(strings.NewReader("*1\r\n$100\r\n"))
	rd.MaxBulk = 10
	if _, err := rd.ReadRequest(); !errors.Is(err, ErrProtocol) {
		t.Fatalf("err = %v, want protocol error", err)
	}
}

func TestArgsSurviveBufferGrowth(t *testing.T) {
	big := strings.Repeat("v", 100000)
	in := string(AppendCommand(nil, []byte("SET"), []byte("key"), []byte(big), []byte("tail")))
	got, err := read(t, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0][0] != "SET" || got[0][1] != "key" || got[0][2] != big || got[0][3] != "tail" {
		t.Fatalf("args corrupted: %d requests", len(got))
	}
}

func TestReplies(t *testing.T) {
	var b []byte
	b = AppendSimple(b, "OK")
	b = AppendError(b, "Key not found")
	b = AppendInt(b, -3)
	b = AppendBulk(b, []byte("a\r\nb"))
	b = AppendNil(b)
	b = AppendArray(b, 2)
	b = AppendBulkString(b, "")
	want := "+OK\r\n-Key not found\r\n:-3\r\n$4\r\na\r\nb\r\n$-1\r\n*2\r\n$0\r\n\r\n"
	if string(b) != want {
		t.Fatalf("got %q, want %q", b, want)
	}
}

// FuzzReadRequest feeds arbitrary bytes to the reader: it must never panic,
// and every request it accepts must survive an encode/parse round trip.
func FuzzReadRequest(f *testing.F) {
	f.Add([]byte("*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"))
	f.Add([]byte("PING\r\n"))
	f.Add([]byte("*1\r\n$-1\r\n"))
	f.Add([]byte("*3\r\n$3\r\nSET\r\n$0\r\n\r\n$5\r\nhello\r\n*1\r\n$4\r\nPING\r\n"))
	f.Add([]byte("*99999999999999999999\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		rd := NewReader(bytes.NewReader(in))
		rd.MaxBulk = 1 << 16
		for i := 0; i < 64; i++ {
			args, err := rd.ReadRequest()
			if err != nil {
				return
			}
			enc := AppendCommand(nil, args...)
			back, err := NewReader(bytes.NewReader(enc)).ReadRequest()
			if err != nil {
				t.Fatalf("re-parse of %q: %v", enc, err)
			}
			if len(back) != len(args) {
				t.Fatalf("round trip: %d args, want %d", len(back), len(args))
			}
			for j := range args {
				if !bytes.Equal(back[j], args[j]) {
					t.Fatalf("round trip arg %d: %q, want %q", j, back[j], args[j])
				}
			}
		}
	})
}
