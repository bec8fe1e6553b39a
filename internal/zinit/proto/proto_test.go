package proto

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"", nil, false},
		{"  list  ", []string{"list"}, false},
		{"status redis", []string{"status", "redis"}, false},
		{`sh -c "echo hello; sleep 1"`, []string{"sh", "-c", "echo hello; sleep 1"}, false},
		{`echo 'a "b" c'`, []string{"echo", `a "b" c`}, false},
		{`echo "a \"b\" \$HOME \x"`, []string{"echo", `a "b" $HOME \x`}, false},
		{`a\ b c`, []string{"a b", "c"}, false},
		{`x''y ""`, []string{"xy", ""}, false},
		{"a\tb\nc", []string{"a", "b", "c"}, false},
		{`echo "unterminated`, nil, true},
		{`echo 'unterminated`, nil, true},
		{`trailing\`, nil, true},
	}
	for _, tc := range tests {
		got, err := Split(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("Split(%q) error = %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if tc.err {
			if !errors.Is(err, ErrQuoting) {
				t.Errorf("Split(%q) error = %v, want ErrQuoting", tc.in, err)
			}
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Split(%q) mismatch (-want +got):\n%s", tc.in, diff)
		}
	}
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{"list", `sh -c "echo 'hi'"`, `a\ b`, `"x\"y"`, "'", `\`, "a\x00b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := Split(s)
		if err != nil {
			return
		}
		// Whatever Split accepts, Join quotes back to the same words.
		again, err := Split(Join(words))
		if err != nil {
			t.Fatalf("Split(Join(%q)): %v", words, err)
		}
		if len(words) == 0 && len(again) == 0 {
			return
		}
		if !slices.Equal(words, again) {
			t.Fatalf("round trip: %q -> %q", words, again)
		}
	})
}

// The example of the spec, byte for byte.
const specListResponse = "status: ok\nlines: 2\n\nredis: Running\nnetworkd: Spawned\n"

func TestWriteResponseSpecExample(t *testing.T) {
	var b bytes.Buffer
	if err := WriteResponse(&b, "redis: Running\nnetworkd: Spawned\n", nil); err != nil {
		t.Fatal(err)
	}
	if b.String() != specListResponse {
		t.Fatalf("got %q, want %q", b.String(), specListResponse)
	}
	b.Reset()
	_ = WriteResponse(&b, "", nil)
	if b.String() != "status: ok\nlines: 0\n\n" {
		t.Fatalf("empty body: %q", b.String())
	}
	b.Reset()
	_ = WriteResponse(&b, "", UnknownService("redis"))
	if want := "status: error\nlines: 1\n\nunknown service name redis\n"; b.String() != want {
		t.Fatalf("error: %q, want %q", b.String(), want)
	}
}

func TestReadResponse(t *testing.T) {
	r := bufio.NewReader(strings.NewReader(specListResponse + "status: error\nlines: 1\n\nservice is not running\n" + "status: ok\nlines: 0\n\n"))
	resp, err := ReadResponse(r)
	if err != nil || !resp.OK || !slices.Equal(resp.Lines, []string{"redis: Running", "networkd: Spawned"}) {
		t.Fatalf("first: %+v, %v", resp, err)
	}
	resp, err = ReadResponse(r)
	if err != nil || resp.OK || !errors.Is(resp.Err(), ErrNotRunning) {
		t.Fatalf("second: %+v, %v (err %v)", resp, err, resp.Err())
	}
	resp, err = ReadResponse(r)
	if err != nil || !resp.OK || len(resp.Lines) != 0 {
		t.Fatalf("third: %+v, %v", resp, err)
	}
	if _, err := ReadResponse(r); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last: %v, want EOF", err)
	}
	for _, bad := range []string{
		"status: ok\n\n",                  // no lines
		"lines: 1\n\nx\n",                 // no status
		"status: maybe\nlines: 0\n\n",     // bad status
		"status: ok\nlines: -1\n\n",       // bad count
		"status: ok\nlines: 2\n\nonly\n",  // truncated body
		"status: ok\nnot a header\n\n",    // bad header
		"status: ok\nlines: 99999999\n\n", // over the limit
	} {
		if _, err := ReadResponse(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("ReadResponse(%q) succeeded", bad)
		}
	}
}

func TestReadRequestTooLong(t *testing.T) {
	in := strings.Repeat("x", MaxRequestBytes*3) + "\nlist\nstatus a"
	r := bufio.NewReaderSize(strings.NewReader(in), 4096)
	if _, err := ReadRequest(r, MaxRequestBytes); !errors.Is(err, ErrRequestTooLong) {
		t.Fatalf("long line: %v, want ErrRequestTooLong", err)
	}
	if l, err := ReadRequest(r, MaxRequestBytes); err != nil || l != "list" {
		t.Fatalf("next line: %q, %v", l, err)
	}
	if l, err := ReadRequest(r, MaxRequestBytes); err != nil || l != "status a" {
		t.Fatalf("last line without newline: %q, %v", l, err)
	}
	if _, err := ReadRequest(r, MaxRequestBytes); !errors.Is(err, io.EOF) {
		t.Fatalf("end: %v", err)
	}
	exact := strings.Repeat("y", MaxRequestBytes) + "\r\n"
	if l, err := ReadRequest(bufio.NewReader(strings.NewReader(exact)), MaxRequestBytes); err != nil || len(l) != MaxRequestBytes {
		t.Fatalf("line of exactly the limit: %d bytes, %v", len(l), err)
	}
}

func TestErrorsRoundTrip(t *testing.T) {
	for _, e := range []*Error{
		UnknownService("redis"), AlreadyMonitored("redis"), NotRunning(), TargetNotDown(), ServiceRunning(),
		UnknownCommand(), InvalidCommand(), InvalidArguments("kill", "two"), RequestTooLong(),
		InvalidService("x", errors.New("yaml: line 1: bad\nthing")), InvalidSignal("SIGFOO"), ShuttingDown(),
		NotSupported("reboot"),
	} {
		var b bytes.Buffer
		if err := WriteResponse(&b, "", e); err != nil {
			t.Fatal(err)
		}
		resp, err := ReadResponse(bufio.NewReader(&b))
		if err != nil {
			t.Fatal(err)
		}
		got := resp.Err()
		if !errors.Is(got, e.Kind) || got.Error() != e.Msg {
			t.Errorf("%q came back as %q (kind %v)", e.Msg, got, errors.Unwrap(got))
		}
	}
	// The texts of the original zinit map to the sentinels too.
	for text, kind := range map[string]error{
		"service target must be set to `Down`": ErrTargetNotDown,
		"unknown service name networkd":        ErrUnknownService,
		"service 'x' already monitored":        ErrAlreadyMonitored,
		"something else entirely":              ErrRemote,
	} {
		if err := ParseError(text); !errors.Is(err, kind) {
			t.Errorf("ParseError(%q) = %v, want %v", text, err.Kind, kind)
		}
	}
}

func TestRequestString(t *testing.T) {
	for _, r := range []Request{{Cmd: "list"}, {Cmd: "kill", Args: []string{"a b", "SIGTERM"}}, {Cmd: "status", Args: []string{"it's"}}} {
		got, err := ParseRequest(r.String())
		if err != nil || got.Cmd != r.Cmd || !slices.Equal(got.Args, r.Args) {
			t.Errorf("ParseRequest(%q) = %+v, %v; want %+v", r.String(), got, err, r)
		}
	}
	if _, err := ParseRequest(`status "x`); !errors.Is(err, ErrInvalidCommand) {
		t.Errorf("bad quoting: %v", err)
	}
}

// FuzzRequest feeds arbitrary bytes to the server side of the protocol:
// reading lines and parsing requests never panics, and every parsed request
// formats back to itself.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{"list\n", "status redis\nstart redis\n", "kill a SIGTERM", `monitor "a b`, "\n\n", strings.Repeat("z", 5000) + "\nlist\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReaderSize(bytes.NewReader(b), 4096)
		for range 100 {
			line, err := ReadRequest(r, MaxRequestBytes)
			if errors.Is(err, ErrRequestTooLong) {
				continue
			}
			if err != nil {
				return
			}
			if len(line) > MaxRequestBytes+1 {
				t.Fatalf("line of %d bytes accepted", len(line))
			}
			req, err := ParseRequest(line)
			if err != nil || req.Cmd == "" {
				continue
			}
			again, err := ParseRequest(req.String())
			if err != nil || again.Cmd != req.Cmd || !slices.Equal(again.Args, req.Args) {
				t.Fatalf("request %+v formats as %q, parses as %+v (%v)", req, req.String(), again, err)
			}
		}
	})
}

// FuzzResponse feeds arbitrary bytes to the client side: no panic, and an
// accepted response writes back to bytes that read as the same response.
func FuzzResponse(f *testing.F) {
	f.Add([]byte(specListResponse))
	f.Add([]byte("status: error\nlines: 1\n\nunknown service name x\n"))
	f.Add([]byte("status: ok\nlines: 3\n\na\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := ReadResponse(bufio.NewReader(bytes.NewReader(b)))
		if err != nil || !resp.OK {
			return
		}
		for _, l := range resp.Lines {
			if strings.ContainsAny(l, "\n") {
				t.Fatalf("body line with a newline: %q", l)
			}
		}
		var buf bytes.Buffer
		if err := WriteResponse(&buf, resp.Body(), nil); err != nil {
			t.Fatal(err)
		}
		again, err := ReadResponse(bufio.NewReader(&buf))
		if err != nil {
			t.Fatal(err)
		}
		// Lines ending in \r lose it (like the original); compare trimmed.
		trim := func(ls []string) []string {
			out := make([]string, len(ls))
			for i, l := range ls {
				out[i] = strings.TrimRight(l, "\r")
			}
			return out
		}
		if len(resp.Lines) > 0 && !slices.Equal(trim(resp.Lines), trim(again.Lines)) {
			t.Fatalf("round trip: %q -> %q", resp.Lines, again.Lines)
		}
	})
}
