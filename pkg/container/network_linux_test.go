package container_test

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/netns"
	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/container/containertest"
)

// link joins the container's namespace (eth0, 198.18.0.2/24) to a new
// "gateway" namespace (gw0, 198.18.0.1/24) with a veth pair that never
// exists in the host namespace. It returns the gateway namespace.
func link(t *testing.T, e env) string {
	t.Helper()
	gw := testutil.NetNS(t)
	for _, args := range [][]string{
		{"-n", e.netns, "link", "add", "eth0", "type", "veth", "peer", "name", "gw0", "netns", gw},
		{"-n", e.netns, "addr", "add", "198.18.0.2/24", "dev", "eth0"},
		{"-n", gw, "addr", "add", "198.18.0.1/24", "dev", "gw0"},
		{"-n", e.netns, "link", "set", "eth0", "up"},
		{"-n", gw, "link", "set", "gw0", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	return gw
}

func TestNetworkJoined(t *testing.T) {
	testutil.CheckLeaks(t)
	e := setup(t)
	link(t, e)
	m, _ := containertest.NewModule(t, e.cfg)
	ns := run(t, m, e.container("net", `sh -c 'ip addr show eth0; ping -c 2 -W 2 198.18.0.1 && echo PING-OK; exec sleep 3600'`))
	log := waitLog(t, m, ns, "net", "packet loss")
	if !strings.Contains(log, "PING-OK") || !strings.Contains(log, "198.18.0.2/24") {
		t.Fatalf("the container did not reach its gateway:\n%s", log)
	}
}

func TestInteractiveCorex(t *testing.T) {
	testutil.CheckLeaks(t)
	e := setup(t)
	gw := link(t, e)
	m, _ := containertest.NewModule(t, e.cfg)
	c := e.container("shell", `sh -c 'echo entry-ran; exec sleep 3600'`)
	c.Interactive = true
	ns := run(t, m, c)
	waitLog(t, m, ns, "shell", "entry-ran")
	got, err := m.Inspect(ns, "shell")
	if err != nil || !got.Interactive {
		t.Fatalf("Inspect = %+v, %v", got, err)
	}
	var conn net.Conn
	testutil.WaitFor(t, 15*time.Second, "corex listening", func() error {
		return netns.Do(gw, func() (err error) {
			conn, err = net.DialTimeout("tcp", fmt.Sprintf("198.18.0.2:%d", e.cfg.CorexPort), time.Second)
			return err
		})
	})
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := fmt.Fprintf(conn, "echo corex-$((6*7)) in $(hostname); exit\n"); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(conn)
	var seen []string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		seen = append(seen, line)
		if line == "corex-42 in shell" {
			return
		}
	}
	t.Fatalf("no answer from the shell; got %q (%v)", seen, sc.Err())
}
