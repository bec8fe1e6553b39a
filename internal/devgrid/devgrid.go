// Package devgrid runs a complete zos grid on one machine: an explorer with
// its embedded NATS server and hub, and N nodes, each in its own network
// namespace (its "host"), with its own zinit, zosd, state root and loop-file
// disks (one SSD-typed, one HDD-typed). The nodes' uplinks are veths to a
// bridge inside another namespace that plays the internet, where the explorer
// listens; a TCP forwarder makes the explorer's HTTP API reachable on the
// machine's loopback for the zos CLI. Nothing of the machine's own network is
// touched.
//
// State (disk images, node roots, the explorer's data) lives under Root and
// survives a restart of the grid: the next Up re-adopts pools, identities and
// workloads. Down stops every process, unmounts, detaches the loop devices and
// removes the namespaces.
package devgrid

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zos-go/zos/internal/netns"
)

// Config describes the grid.
type Config struct {
	// Root holds all state (default /var/lib/zos-dev).
	Root string
	// Nodes is the number of nodes (1..50).
	Nodes int
	// Bin is the directory of the built binaries (explorer, zinit, zosd,
	// flistfs, zdb, zos-wg, ...).
	Bin string
	// Prefix starts every namespace, link and service name of the grid
	// (at most 3 characters).
	Prefix string
	// APIAddr is where the explorer's HTTP API is forwarded on the
	// machine's loopback.
	APIAddr string
	// SSDBytes and HDDBytes are the sizes of each node's sparse disk files.
	SSDBytes, HDDBytes int64
	// FarmName is the farm created for the nodes.
	FarmName string
}

// DefaultConfig is one node under /var/lib/zos-dev, API on 127.0.0.1:8080.
func DefaultConfig() Config {
	return Config{
		Root: "/var/lib/zos-dev", Nodes: 1, Prefix: "zd", APIAddr: "127.0.0.1:8080",
		SSDBytes: 20 << 30, HDDBytes: 40 << 30, FarmName: "devfarm",
	}
}

// Validate reports an unusable configuration.
func (c Config) Validate() error {
	switch {
	case !filepath.IsAbs(c.Root):
		return fmt.Errorf("root %q: must be absolute", c.Root)
	case c.Nodes < 1 || c.Nodes > 50:
		return fmt.Errorf("nodes %d: between 1 and 50", c.Nodes)
	case c.Prefix == "" || len(c.Prefix) > 3:
		return fmt.Errorf("prefix %q: 1 to 3 characters", c.Prefix)
	case c.Bin == "":
		return errors.New("bin: directory of the zos binaries required")
	case c.SSDBytes < 1<<30 || c.HDDBytes < 1<<30:
		return errors.New("disk sizes: at least 1 GiB each")
	}
	return nil
}

// Addresses of the simulated internet.
const (
	inetCIDR = "10.99.0.1/16"
	inetGW   = "10.99.0.1"
)

// Grid is a running development grid.
type Grid struct {
	cfg Config
	log *slog.Logger

	inetNS   string
	farmID   uint64
	lock     *os.File // flock of Root, held while the grid runs
	explorer *proc
	forward  net.Listener
	nodes    []*Node

	mu    sync.Mutex
	procs []*proc // guarded by mu; everything started, for Down
}

// Node is one simulated node.
type Node struct {
	Index int
	// Prefix starts the names of the node's namespaces and services.
	Prefix string
	// NS is the node's host namespace.
	NS string
	// Root is its state root; Config its zosd configuration file.
	Root, Config string
	// API is its zosd local API socket; Zinit its zinit control socket.
	API, Zinit string
	// Address is its zos bridge address on the simulated internet.
	Address string
	// Loops are its disks' loop devices.
	Loops []string

	zinit *proc
}

// NodeID returns the node's id once zosd has created its identity.
func (n *Node) NodeID(ctx context.Context) (string, error) {
	var st struct {
		NodeID string `json:"node_id"`
	}
	if err := LocalAPI(ctx, n.API, "/status", &st); err != nil {
		return "", err
	}
	return st.NodeID, nil
}

// Nodes returns the grid's nodes.
func (g *Grid) Nodes() []*Node { return g.nodes }

// ExplorerURL is the explorer's HTTP API as seen from the machine.
func (g *Grid) ExplorerURL() string { return "http://" + g.forward.Addr().String() }

// NATSURL is the grid's NATS address as seen from the nodes.
func (g *Grid) NATSURL() string { return "nats://" + inetGW + ":4222" }

// HubURL is the hub's HTTP address as seen from the nodes.
func (g *Grid) HubURL() string { return "http://" + inetGW + ":8080/hub" }

// BlocksURL is the hub's block store as seen from the nodes: flists that
// name no store of their own fetch their blocks there. A user on this
// machine uploads blocks through the forwarded API and records this URL in
// the flist: zos flist create --store <ExplorerURL>/hub/blocks --route
// 00-ff=<BlocksURL>.
func (g *Grid) BlocksURL() string { return g.HubURL() + "/blocks" }

// InetNS is the namespace that plays the internet.
func (g *Grid) InetNS() string { return g.inetNS }

// proc is a process the grid started, in its own process group.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// start runs argv inside network namespace ns (nsenter, network only: the
// mount namespace stays the machine's, so mounts are visible and cleaned up
// from here), logging to logPath.
func (g *Grid) start(name, ns, logPath string, argv ...string) (*proc, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	full := append([]string{"--net=" + netns.Path(ns), "--"}, argv...)
	cmd := exec.Command("nsenter", full...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	g.mu.Lock()
	g.procs = append(g.procs, p)
	g.mu.Unlock()
	return p, nil
}

// stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
}

// waitHTTP polls url until it answers or ctx ends.
func waitHTTP(ctx context.Context, ns, url string) error {
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: dialIn(ns)}}
	for {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", url, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// dialIn returns a dialer whose sockets are created in namespace ns.
func dialIn(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := netns.Do(netns.Path(ns), func() error {
			var err error
			c, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func itoa(i int) string { return strconv.Itoa(i) }

// Root is the grid's state directory.
func (g *Grid) Root() string { return g.cfg.Root }
