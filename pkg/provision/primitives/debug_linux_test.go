package primitives

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/zinit"
	"github.com/zos-go/zos/pkg/zinit/zinittest"
)

// buildLogship builds cmd/zos-logship into a test directory.
func buildLogship(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	bin := filepath.Join(testutil.TempDir(t), "zos-logship")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/zos-logship")
	cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build zos-logship: %v\n%s", err, out)
	}
	return bin
}

// TestDebugReal runs a debug workload on a private zinit with the real log
// shipper and a real redis: a line a service prints reaches the channel.
func TestDebugReal(t *testing.T) {
	testutil.RequireRoot(t, "go", "redis-server", "sh")
	testutil.CheckLeaks(t)
	cl, daemon := zinittest.Start(t)
	addr := testutil.RedisServer(t)
	host, portText, _ := strings.Cut(addr, ":")
	port, _ := strconv.Atoi(portText)

	cfg := DefaultDebugConfig()
	cfg.NodeID = "node1"
	cfg.Command = []string{buildLogship(t)}
	cfg.ServicePrefix = testutil.Name(t, "dbg") + "-"
	cfg.ZinitSocket = daemon.Socket
	cfg.ZinitLogSocket = daemon.LogSocket
	p, err := NewDebug(cfg, cl)
	if err != nil {
		t.Fatal(err)
	}

	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	sub := rdb.Subscribe(t.Context(), "node1-logs")
	t.Cleanup(func() { sub.Close() })
	if _, err := sub.Receive(t.Context()); err != nil { // the subscription confirmation
		t.Fatal(err)
	}
	msgs := sub.Channel()

	d := deployment(t, 5, &gridtypes.Debug{Host: host, Port: uint16(port)})
	if _, err := p.Provision(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	svc := p.ServiceName(d.Name)
	if _, err := cl.WaitStatus(t.Context(), svc, 20*time.Millisecond, func(s zinit.ServiceStatus) bool {
		return s.State.Is(zinit.ServiceStateRunning)
	}); err != nil {
		t.Fatal(err)
	}

	// a service of the node says something
	talker := testutil.Name(t, "tlk")
	marker := "marker-" + talker
	if err := cl.AddService(talker, zinit.InitService{Exec: `sh -c "echo ` + marker + `; sleep 600"`}); err != nil {
		t.Fatal(err)
	}
	if err := cl.Monitor(talker); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Destroy(t.Context(), talker) })
	want := "[+] " + talker + ": " + marker
	timeout := time.After(20 * time.Second)
	for found := false; !found; {
		select {
		case m := <-msgs:
			found = m.Payload == want
			if strings.Contains(m.Payload, svc+":") {
				t.Errorf("the shipper shipped its own line %q", m.Payload)
			}
		case <-timeout:
			t.Fatalf("%q never published; zinit log:\n%s", want, daemon.Log())
		}
	}

	status, _ := cl.Status(svc)
	if err := p.Decommission(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Status(svc); !errors.Is(err, zinit.ErrUnknownService) {
		t.Fatalf("shipper service after decommission: %v", err)
	}
	if testutil.ProcessAlive(status.Pid) {
		t.Fatalf("shipper %d still running", status.Pid)
	}
	if _, err := os.Stat(filepath.Join(daemon.ConfigDir, svc+".yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("service file left: %v", err)
	}
}
