package zinit

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/internal/zinit/proto"
)

func TestParseService(t *testing.T) {
	good := `exec: sh -c "echo 'hi there'; sleep 1"
test: "redis-cli ping"
oneshot: false
after: [a, b, a]
log: stdout
env:
  FOO: bar
dir: /tmp
signal:
  stop: sigint
`
	s, err := ParseService([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	want := Service{
		Exec:       []string{"sh", "-c", "echo 'hi there'; sleep 1"},
		Test:       []string{"redis-cli", "ping"},
		After:      []string{"a", "b"},
		Log:        LogStdout,
		Env:        map[string]string{"FOO": "bar"},
		Dir:        "/tmp",
		StopSignal: unix.SIGINT,
	}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Fatalf("mismatch (-want +got):\n%s", diff)
	}
	min, err := ParseService([]byte("exec: sleep 1\n"))
	if err != nil || min.Log != LogRing || min.StopSignal != unix.SIGTERM || min.Oneshot {
		t.Fatalf("defaults: %+v, %v", min, err)
	}
	for _, l := range []string{"null", "none", "NONE"} {
		if s, err := ParseService([]byte("exec: x\nlog: " + l + "\n")); err != nil || s.Log != LogNone {
			t.Errorf("log %s: %+v, %v", l, s.Log, err)
		}
	}
}

func TestParseServiceErrors(t *testing.T) {
	for name, tc := range map[string]struct{ in, msg string }{
		"malformed yaml": {"exec: [unclosed\n", "yaml"},
		"unknown key":    {"exec: x\nrestart: always\n", "field restart not found"},
		"no exec":        {"oneshot: true\n", "exec is required"},
		"blank exec":     {"exec: '   '\n", "exec is required"},
		"bad quoting":    {"exec: 'sh -c \"x'\n", "invalid quoting"},
		"bad test":       {"exec: x\ntest: \"'\"\n", "test"},
		"bad log":        {"exec: x\nlog: file\n", "log"},
		"bad signal":     {"exec: x\nsignal:\n  stop: sigfoo\n", "invalid signal"},
		"bad dep":        {"exec: x\nafter: ['../etc']\n", "bad service name"},
		"bad env":        {"exec: x\nenv:\n  'A=B': c\n", "env"},
		"relative dir":   {"exec: x\ndir: tmp\n", "not absolute"},
		"two documents":  {"exec: x\n---\nexec: y\n", "more than one"},
		"wrong type":     {"exec: x\noneshot: maybe\n", "yaml"},
		"oversized":      {"exec: x\n#" + strings.Repeat("y", MaxServiceFileBytes) + "\n", "over"},
		"not a map":      {"- exec: x\n", "yaml"},
		"empty":          {"", "yaml"},
	} {
		_, err := ParseService([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.msg)
		}
	}
}

func TestValidName(t *testing.T) {
	for _, n := range []string{"redis", "zdb@pool-1", "a.b_c", "X9"} {
		if err := ValidName(n); err != nil {
			t.Errorf("ValidName(%q) = %v", n, err)
		}
	}
	for _, n := range []string{"", ".hidden", "a/b", "a b", "a:b", strings.Repeat("x", 129), "é"} {
		if err := ValidName(n); !errors.Is(err, ErrBadName) {
			t.Errorf("ValidName(%q) = %v, want ErrBadName", n, err)
		}
	}
}

func TestLoadService(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ok.yaml"), []byte("exec: sleep 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadService(dir, "ok"); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadService(dir, "missing"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
	if _, err := LoadService(dir, "../ok"); !errors.Is(err, ErrBadName) {
		t.Fatalf("traversal: %v", err)
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]unix.Signal{"sigterm": unix.SIGTERM, "KILL": unix.SIGKILL, "SigHup": unix.SIGHUP, " SIGUSR1 ": unix.SIGUSR1} {
		if got, ok := ParseSignal(in); !ok || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "SIG", "sigfoo", "9"} {
		if _, ok := ParseSignal(in); ok {
			t.Errorf("ParseSignal(%q) accepted", in)
		}
	}
	if SignalName(unix.SIGKILL) != "SIGKILL" {
		t.Errorf("SignalName(SIGKILL) = %q", SignalName(unix.SIGKILL))
	}
}

// FuzzParseService: the parser never panics, and what it accepts is
// consistent: a non-empty Exec, a valid stop signal, a known log type.
func FuzzParseService(f *testing.F) {
	for _, s := range []string{
		"exec: sleep 1\n",
		"exec: sh -c \"a 'b'\"\ntest: true\noneshot: true\nafter: [x]\nlog: stdout\nenv: {A: b}\nsignal: {stop: SIGINT}\n",
		"exec: [\n", "exec: x\nfoo: 1\n", "{}", "exec: !!binary aGk=\n", "exec: &a x\ntest: *a\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseService(b)
		if err != nil {
			var pe *proto.Error
			if errors.As(err, &pe) && !errors.Is(err, proto.ErrInvalidSignal) {
				t.Fatalf("unexpected wire error %v", err)
			}
			return
		}
		if len(s.Exec) == 0 || s.StopSignal == 0 {
			t.Fatalf("accepted without exec or signal: %+v", s)
		}
		switch s.Log {
		case LogRing, LogStdout, LogNone:
		default:
			t.Fatalf("log %q", s.Log)
		}
		for _, d := range s.After {
			if ValidName(d) != nil {
				t.Fatalf("bad dependency %q accepted", d)
			}
		}
		// Parsing is deterministic.
		again, err := ParseService(b)
		if err != nil || !reflect.DeepEqual(s, again) {
			t.Fatalf("second parse differs: %+v / %+v (%v)", s, again, err)
		}
	})
}
