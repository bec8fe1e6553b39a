package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
)

// fakeQEMU serves one QMP session on c: a greeting, then answers from
// replies by command name; it sends an event before every answer.
func fakeQEMU(t *testing.T, c net.Conn, replies map[string]string) {
	t.Helper()
	go func() {
		defer c.Close()
		w := bufio.NewWriter(c)
		w.WriteString(`{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian"}, "capabilities": ["oob"]}}` + "\r\n")
		w.Flush()
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			var req struct {
				Execute string `json:"execute"`
			}
			if json.Unmarshal(sc.Bytes(), &req) != nil {
				return
			}
			w.WriteString(`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RTC_CHANGE", "data": {"offset": 0}}` + "\r\n")
			r, ok := replies[req.Execute]
			if !ok {
				r = `{"error": {"class": "CommandNotFound", "desc": "The command ` + req.Execute + ` has not been found"}}`
			}
			if r == "hang" {
				w.Flush()
				continue
			}
			w.WriteString(r + "\r\n")
			w.Flush()
		}
	}()
}

func pipeConn(t *testing.T, replies map[string]string) *Conn {
	t.Helper()
	a, b := net.Pipe()
	fakeQEMU(t, b, replies)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := NewConn(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestCommands(t *testing.T) {
	c := pipeConn(t, map[string]string{
		"qmp_capabilities":          `{"return": {}}`,
		"query-status":              `{"return": {"status": "running", "singlestep": false, "running": true}}`,
		"query-cpus-fast":           `{"return": [{"thread-id": 10, "cpu-index": 0, "target": "x86_64"}, {"thread-id": 11, "cpu-index": 1, "target": "x86_64"}]}`,
		"query-memory-size-summary": `{"return": {"base-memory": 536870912, "plugged-memory": 0}}`,
		"query-kvm":                 `{"return": {"enabled": false, "present": true}}`,
	})
	if g := c.Greeting(); g.Version.QEMU.Major != 7 || g.Version.Package != "Debian" {
		t.Errorf("greeting = %+v", g)
	}
	ctx := t.Context()
	st, err := c.QueryStatus(ctx)
	if err != nil || !st.Running || st.Status != "running" {
		t.Errorf("status = %+v, %v", st, err)
	}
	cpus, err := c.QueryCPUs(ctx)
	if err != nil || len(cpus) != 2 || cpus[1].ThreadID != 11 {
		t.Errorf("cpus = %+v, %v", cpus, err)
	}
	mem, err := c.QueryMemory(ctx)
	if err != nil || mem.BaseMemory != 512<<20 {
		t.Errorf("memory = %+v, %v", mem, err)
	}
	kvm, err := c.QueryKVM(ctx)
	if err != nil || kvm.Enabled || !kvm.Present {
		t.Errorf("kvm = %+v, %v", kvm, err)
	}
	err = c.SystemPowerdown(ctx)
	var qe *Error
	if !errors.As(err, &qe) || qe.Class != "CommandNotFound" || qe.Command != "system_powerdown" {
		t.Errorf("unknown command error = %v", err)
	}
}

func TestDeadline(t *testing.T) {
	c := pipeConn(t, map[string]string{"qmp_capabilities": `{"return": {}}`, "query-status": "hang"})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.QueryStatus(ctx); err == nil {
		t.Fatal("no error from a command that never answers")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("deadline not honoured: %v", d)
	}
}

func TestBadGreeting(t *testing.T) {
	for _, banner := range []string{"hello\n", `{"return": {}}` + "\n", `{"QMP": ` + "\n", ""} {
		a, b := net.Pipe()
		go func() {
			b.Write([]byte(banner))
			b.Close()
		}()
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		if _, err := NewConn(ctx, a); err == nil {
			t.Errorf("banner %q accepted", banner)
		}
		cancel()
		a.Close()
	}
}

// TestRealQEMU talks to a real QEMU (paused, no guest code runs).
func TestRealQEMU(t *testing.T) {
	testutil.RequireTools(t, "qemu-system-x86_64")
	sock := filepath.Join(testutil.TempDir(t), "qmp.sock")
	testutil.StartProcess(t, nil, "qemu-system-x86_64", "-accel", "tcg", "-M", "microvm", "-nodefaults",
		"-no-user-config", "-display", "none", "-S", "-m", "64", "-smp", "2",
		"-qmp", "unix:"+sock+",server=on,wait=off")
	var c *Conn
	testutil.WaitFor(t, 10*time.Second, "qmp socket", func() error {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		var err error
		c, err = Dial(ctx, sock)
		return err
	})
	defer c.Close()
	ctx := t.Context()
	st, err := c.QueryStatus(ctx)
	if err != nil || st.Running || st.Status != "prelaunch" {
		t.Errorf("status = %+v, %v; want prelaunch", st, err)
	}
	cpus, err := c.QueryCPUs(ctx)
	if err != nil || len(cpus) != 2 {
		t.Errorf("cpus = %+v, %v; want 2", cpus, err)
	}
	mem, err := c.QueryMemory(ctx)
	if err != nil || mem.BaseMemory != 64<<20 {
		t.Errorf("memory = %+v, %v; want 64 MiB", mem, err)
	}
	if err := c.Execute(ctx, "no-such-command", nil, nil); err == nil || !strings.Contains(err.Error(), "CommandNotFound") {
		t.Errorf("unknown command: %v", err)
	}
	if err := c.Quit(ctx); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Logf("quit: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": []}}`,
		`{"return": {}}`, `{"return": null}`, `{"return": [1,2]}`,
		`{"error": {"class": "GenericError", "desc": "x"}}`,
		`{"event": "SHUTDOWN", "data": {"guest": true}, "timestamp": {"seconds": 1, "microseconds": 2}}`,
		``, `[]`, `{`, `{"return": `,
	} {
		f.Add([]byte(s + "\n"))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(strings.NewReader(string(b)))
		for range 4 {
			line, err := readLine(r)
			if err != nil {
				return
			}
			m, err := parse(line)
			if err != nil {
				continue
			}
			if m.Return != nil && !json.Valid(m.Return) {
				t.Fatalf("invalid return kept: %q", m.Return)
			}
		}
	})
}
