package zinit_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/zinit"
)

// add writes a service file and monitors it.
func add(t *testing.T, cl *zinit.Client, name string, s zinit.InitService) {
	t.Helper()
	if err := cl.AddService(name, s); err != nil {
		t.Fatal(err)
	}
	if err := cl.Monitor(name); err != nil {
		t.Fatalf("monitor %s: %v", name, err)
	}
}

// marker returns a sleep duration unique to this call, so processes can be
// counted by their command line.
func marker() string { return strconv.Itoa(100000 + rand.IntN(800000)) }

// countProcs counts live processes whose argv is exactly args.
func countProcs(args ...string) (n int, pids []int) {
	want := []byte(strings.Join(args, "\x00") + "\x00")
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Equal(b, want) && testutil.ProcessAlive(pid) {
			n++
			pids = append(pids, pid)
		}
	}
	return n, pids
}

// readTimes reads a file of one nanosecond timestamp per line.
func readTimes(t *testing.T, path string) []time.Time {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []time.Time
	for _, l := range strings.Fields(string(b)) {
		ns, err := strconv.ParseInt(l, 10, 64)
		if err != nil {
			t.Fatalf("bad timestamp %q", l)
		}
		out = append(out, time.Unix(0, ns))
	}
	return out
}

// zombiesOf lists zombie children of pid.
func zombiesOf(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 2 && f[0] == "Z" && f[1] == strconv.Itoa(pid) {
			out = append(out, p)
		}
	}
	return out
}

func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func stampCmd(path string) string {
	return fmt.Sprintf("date +%%s%%N >> %s", shq(path))
}
