package network_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/netns"
	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/network"
	"github.com/zos-go/zos/pkg/network/networktest"
)

// The simulated internet: a bridge in its own namespace, 198.18.0.1/24
// (the benchmarking range, never routed outside), nodes at .11, .12, …
// (zos bridge) and .111, .112, … (npub4 in ndmz).
const inetGW = "198.18.0.1"

type grid struct {
	t     testing.TB
	inet  string
	nodes []*node
}

type node struct {
	t      testing.TB
	i      int
	hostNS string
	cfg    network.Config
	sup    network.ProcessSupervisor
	mod    *network.Module
	cancel context.CancelFunc
	done   chan error
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newGrid makes the internet namespace and n node host namespaces, each
// wired to the internet bridge with a veth; it does not start modules.
func newGrid(t testing.TB, n int) *grid {
	t.Helper()
	g := &grid{t: t, inet: testutil.NetNS(t)}
	run(t, "ip", "-n", g.inet, "link", "add", "inet", "type", "bridge")
	run(t, "ip", "-n", g.inet, "addr", "add", inetGW+"/24", "dev", "inet")
	run(t, "ip", "-n", g.inet, "link", "set", "inet", "up")
	for i := 1; i <= n; i++ {
		host := testutil.NetNS(t)
		port := fmt.Sprintf("port%d", i)
		run(t, "ip", "-n", g.inet, "link", "add", port, "type", "veth", "peer", "name", "uplink", "netns", host)
		run(t, "ip", "-n", g.inet, "link", "set", port, "master", "inet", "up")
		cfg := network.DefaultConfig()
		cfg.NodeID = fmt.Sprintf("node%d-%s", i, testutil.Prefix())
		cfg.NamePrefix = testutil.Name(t, "nd") + "-"
		cfg.HostNS = host
		cfg.StateDir = testutil.TempDir(t)
		cfg.Uplink = "uplink"
		cfg.ZOSAddress = netip.MustParsePrefix(fmt.Sprintf("198.18.0.%d/24", 10+i))
		cfg.ZOSGateway = netip.MustParseAddr(inetGW)
		cfg.NDMZ4Address = netip.MustParsePrefix(fmt.Sprintf("198.18.0.%d/24", 110+i))
		cfg.NDMZ4Gateway = netip.MustParseAddr(inetGW)
		cfg.DHCP = false
		cfg.WireGuard = network.WGUserspace
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cfg.WGCommand = []string{exe, "zos-wg"}
		cfg.OpTimeout = time.Minute
		cfg.FastInterval = 100 * time.Millisecond
		cfg.SlowInterval = 200 * time.Millisecond
		nd := &node{t: t, i: i, hostNS: host, cfg: cfg, sup: network.ProcessSupervisor{Dir: filepath.Join(cfg.StateDir, "services")}}
		g.nodes = append(g.nodes, nd)
	}
	return g
}

// start creates and runs the node's module and waits until it is ready. At
// the end of the test the module is stopped and torn down.
func (nd *node) start() {
	t := nd.t
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", nd.i)
	m, err := network.New(nd.cfg, networktest.PlainIdentity{}, nd.sup, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	nd.mod, nd.cancel, nd.done = m, cancel, done
	go func() { done <- m.Run(ctx); close(done) }()
	t.Cleanup(nd.stop)
	testutil.WaitFor(t, 60*time.Second, fmt.Sprintf("node %d ready", nd.i), func() error {
		select {
		case err := <-done:
			t.Fatalf("node %d Run: %v", nd.i, err)
		default:
		}
		return m.Ready()
	})
}

// stop ends Run and tears the node down (every resource, ndmz, bridges).
func (nd *node) stop() {
	if nd.cancel == nil {
		return
	}
	nd.cancel()
	for range nd.done {
	}
	nd.cancel = nil
	if err := nd.mod.Teardown(context.Background()); err != nil {
		nd.t.Errorf("node %d teardown: %v", nd.i, err)
	}
}

// endpoint is the WireGuard endpoint of the node for port.
func (nd *node) endpoint(port uint16) string {
	return fmt.Sprintf("%s:%d", nd.cfg.ZOSAddress.Addr(), port)
}

// ping runs ping in namespace ns and reports whether target answered.
func ping(ns, target string, count int, wait time.Duration) error {
	out, err := exec.Command("ip", "netns", "exec", ns, "ping", "-n", "-q", "-c", fmt.Sprint(count),
		"-W", fmt.Sprint(int(wait.Seconds())), target).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ping %s from %s: %v: %s", target, ns, err, out)
	}
	return nil
}

// canConnect reports whether a TCP connection from namespace ns to
// target:port succeeds within a second.
func canConnect(ns, target string, port int) bool {
	return exec.Command("ip", "netns", "exec", ns, "timeout", "1", "bash", "-c",
		fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", target, port)).Run() == nil
}

// listen accepts (and closes) TCP connections on addr inside namespace ns
// until the test ends.
func listen(t testing.TB, ns, addr string) {
	t.Helper()
	var l net.Listener
	if err := netns.Do(ns, func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("listen %s in %s: %v", addr, ns, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
}

// nsList returns the namespaces whose name starts with prefix.
func nsList(t *testing.T, prefix string) []string {
	l, err := netns.List(prefix)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func dump(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func mustAddr(s string) netip.Addr     { return netip.MustParseAddr(s) }

// halt ends Run without tearing anything down, as a crash or a stop of the
// agent would.
func (nd *node) halt() {
	nd.cancel()
	for range nd.done {
	}
	nd.cancel = nil
}

// procArgv returns the command line of a process.
func procArgv(t testing.TB, pid int) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}
