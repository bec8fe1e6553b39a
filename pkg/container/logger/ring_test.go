package logger

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRingRotatesAndKeepsNewest(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ns", "c.log")
	r, err := OpenRing(p, 100, 3)
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for i := range 40 {
		line := fmt.Sprintf("line %02d\n", i) // 8 bytes
		all.WriteString(line)
		if _, err := r.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	got, err := ReadRing(p, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) > 300 || len(got) < 200 {
		t.Fatalf("ring holds %d bytes, want between 2 and 3 files of 100", len(got))
	}
	if !strings.HasSuffix(all.String(), string(got)) {
		t.Fatalf("ring %q is not the tail of the output", got)
	}
	for _, f := range []string{p, p + ".1", p + ".2"} {
		if fi, err := os.Stat(f); err != nil || fi.Size() > 100 {
			t.Fatalf("%s: %v, %v", f, fi, err)
		}
	}
	if _, err := os.Stat(p + ".3"); !os.IsNotExist(err) {
		t.Fatalf("a fourth file exists: %v", err)
	}
	tail, _ := ReadRing(p, 3, 8)
	if string(tail) != "line 39\n" {
		t.Fatalf("tail %q", tail)
	}
	// Reopening appends (a restarted task keeps its history).
	r, _ = OpenRing(p, 100, 3)
	r.Write([]byte("again\n"))
	r.Close()
	if got, _ := ReadRing(p, 3, 0); !strings.HasSuffix(string(got), "line 39\nagain\n") {
		t.Fatalf("after reopening: %q", got)
	}
	if err := RemoveRing(p, 3); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(p + "*"); len(left) != 0 {
		t.Fatalf("left: %v", left)
	}
}

func TestRingOversizedWrite(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.log")
	r, _ := OpenRing(p, 10, 1)
	defer r.Close()
	n, err := r.Write([]byte("0123456789abcdef"))
	if err != nil || n != 16 {
		t.Fatalf("write = %d, %v", n, err)
	}
	if got, _ := ReadRing(p, 1, 0); string(got) != "6789abcdef" {
		t.Fatalf("ring %q", got)
	}
}

func TestParseShimArgs(t *testing.T) {
	env := map[string]string{"CONTAINER_ID": "web", "CONTAINER_NAMESPACE": "ns1"}
	cfg := ShimConfig{Root: "/var/lib/zos/containers", RingBytes: 4096, RingFiles: 3, Namespace: "ns1", ID: "web"}
	var args []string
	for k, v := range cfg.Args() {
		args = append(args, k, v)
	}
	got, err := ParseShimArgs(args, func(k string) string { return env[k] })
	if err != nil || got != cfg {
		t.Fatalf("ParseShimArgs = %+v, %v; want %+v", got, err, cfg)
	}
	for _, bad := range [][]string{{"root"}, {"root", "rel"}, {"what", "x", "root", "/r"}, {"root", "/r", "ring-bytes", "x"}} {
		if _, err := ParseShimArgs(bad, func(k string) string { return env[k] }); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ParseShimArgs([]string{"root", "/r"}, func(k string) string { return map[string]string{"CONTAINER_ID": "../x", "CONTAINER_NAMESPACE": "n"}[k] }); err == nil {
		t.Error("a path-like container id accepted")
	}
}
