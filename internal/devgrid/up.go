package devgrid

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/internal/netns"
	"github.com/zos-go/zos/internal/zosd"
	"github.com/zos-go/zos/pkg/explorer"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/identity"
	"github.com/zos-go/zos/pkg/zinit"
)

// Up builds and starts the grid. On error everything started is stopped.
func Up(ctx context.Context, cfg Config, log *slog.Logger) (_ *Grid, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Grid{cfg: cfg, log: log, inetNS: cfg.Prefix + "inet"}
	if err := os.MkdirAll(cfg.Root, 0o755); err != nil {
		return nil, err
	}
	// One grid per root: a second Up must not touch a running grid.
	lock, err := os.OpenFile(filepath.Join(cfg.Root, "zosdev.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("a grid already runs on %s: %w", cfg.Root, err)
	}
	g.lock = lock
	// Checks that must not tear down what they find: only after them does
	// a failure undo what this Up made.
	if left, _ := netns.List(cfg.Prefix); len(left) > 0 {
		lock.Close()
		return nil, fmt.Errorf("namespaces %v of a grid with prefix %q exist (another grid, or one that crashed: zosdev down)", left, cfg.Prefix)
	}
	if g.forward, err = net.Listen("tcp", cfg.APIAddr); err != nil {
		lock.Close()
		return nil, fmt.Errorf("explorer api address: %w", err)
	}
	defer func() {
		if err != nil {
			_ = g.Down(context.WithoutCancel(ctx))
		}
	}()
	if err := g.internet(); err != nil {
		return nil, fmt.Errorf("internet namespace: %w", err)
	}
	if err := g.startExplorer(ctx); err != nil {
		return nil, err
	}
	if g.farmID, err = g.ensureFarm(ctx); err != nil {
		return nil, fmt.Errorf("farm: %w", err)
	}
	for i := 1; i <= cfg.Nodes; i++ {
		n, err := g.startNode(ctx, i, g.farmID)
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", i, err)
		}
		g.nodes = append(g.nodes, n)
	}
	return g, nil
}

// internet makes the namespace that plays the internet: a bridge carrying
// the gateway address.
func (g *Grid) internet() error {
	if _, err := netns.Create(g.inetNS); err != nil {
		return err
	}
	ns := g.inetNS
	if err := run("ip", "-n", ns, "link", "set", "lo", "up"); err != nil {
		return err
	}
	if !linkExists(ns, "br0") {
		if err := run("ip", "-n", ns, "link", "add", "br0", "type", "bridge"); err != nil {
			return err
		}
		if err := run("ip", "-n", ns, "addr", "add", inetCIDR, "dev", "br0"); err != nil {
			return err
		}
	}
	return run("ip", "-n", ns, "link", "set", "br0", "up")
}

func linkExists(ns, link string) bool {
	return run("ip", "-n", ns, "link", "show", link) == nil
}

func (g *Grid) startExplorer(ctx context.Context) error {
	dir := filepath.Join(g.cfg.Root, "explorer")
	p, err := g.start("explorer", g.inetNS, filepath.Join(g.cfg.Root, "log", "explorer.log"),
		filepath.Join(g.cfg.Bin, "explorer"), "--data-dir", dir,
		"--listen", inetGW+":8080", "--nats-listen", inetGW+":4222")
	if err != nil {
		return err
	}
	g.explorer = p
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := waitHTTP(wctx, g.inetNS, "http://"+inetGW+":8080/api/v1/farms"); err != nil {
		return fmt.Errorf("explorer not answering: %w", err)
	}
	go g.serveForward(g.forward)
	return nil
}

// serveForward copies connections on the machine's loopback to the
// explorer inside the internet namespace.
func (g *Grid) serveForward(l net.Listener) {
	dial := dialIn(g.inetNS)
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			up, err := dial(context.Background(), "tcp", inetGW+":8080")
			if err != nil {
				return
			}
			defer up.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
			<-done
		}()
	}
}

// ensureFarm registers the grid's farmer and farm (once; kept under Root).
func (g *Grid) ensureFarm(ctx context.Context) (uint64, error) {
	seedPath := filepath.Join(g.cfg.Root, "farmer.seed")
	sf, err := identity.ReadSeedFile(seedPath)
	if errors.Is(err, os.ErrNotExist) {
		if sf, err = identity.Generate(); err != nil {
			return 0, err
		}
		if err := identity.CreateSeedFile(seedPath, sf); err != nil {
			return 0, err
		}
	} else if err != nil {
		return 0, err
	}
	kp := sf.KeyPair()
	cl := explorer.NewClient(g.ExplorerURL(), nil)
	user, err := cl.UserByName(ctx, "farmer")
	if errors.Is(err, explorer.ErrNotFound) {
		u := gridtypes.User{Name: "farmer", PublicKey: hex.EncodeToString(kp.PublicKey()), Created: time.Now().Unix()}
		u.Sign(ed25519.PrivateKey(kp.PrivateKey()))
		if u.ID, err = cl.CreateUser(ctx, u); err != nil {
			return 0, err
		}
		user = u
	} else if err != nil {
		return 0, err
	}
	farms, err := cl.Farms(ctx, user.ID)
	if err != nil {
		return 0, err
	}
	for _, f := range farms {
		if f.Name == g.cfg.FarmName {
			return f.ID, nil
		}
	}
	f := gridtypes.Farm{OwnerID: user.ID, Name: g.cfg.FarmName, Created: time.Now().Unix()}
	for i := 1; i <= 20; i++ {
		f.IPAddresses = append(f.IPAddresses, gridtypes.FarmIP{Address: fmt.Sprintf("10.99.250.%d/16", i), Gateway: inetGW})
	}
	f.Sign(ed25519.PrivateKey(kp.PrivateKey()))
	return cl.CreateFarm(ctx, f)
}

func (g *Grid) startNode(ctx context.Context, i int, farmID uint64) (*Node, error) {
	root := filepath.Join(g.cfg.Root, "node"+itoa(i))
	n := &Node{
		Index: i, Prefix: g.cfg.Prefix + itoa(i), NS: g.cfg.Prefix + "n" + itoa(i), Root: root,
		Config: filepath.Join(root, "zosd.toml"), API: filepath.Join(root, "run", "zosd.sock"),
		Zinit: filepath.Join(root, "run", "zinit.sock"), Address: fmt.Sprintf("10.99.%d.2/16", i),
	}
	for _, d := range []string{"disks", "run", "zinit", "log"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, err
		}
	}
	if _, err := netns.Create(n.NS); err != nil {
		return nil, err
	}
	if err := run("ip", "-n", n.NS, "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	veth := g.cfg.Prefix + "v" + itoa(i)
	if !linkExists(n.NS, "eth0") {
		// A new host namespace (first start, or after a power cut whose
		// veth may still be on its way out of the internet namespace).
		_ = run("ip", "-n", g.inetNS, "link", "del", veth)
		_ = waitFor(ctx, 10*time.Second, func() error {
			if linkExists(g.inetNS, veth) {
				return errors.New("old veth still there")
			}
			return nil
		})
	}
	if !linkExists(g.inetNS, veth) {
		if err := run("ip", "-n", g.inetNS, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", n.NS); err != nil {
			return nil, err
		}
	}
	if err := run("ip", "-n", g.inetNS, "link", "set", veth, "master", "br0", "up"); err != nil {
		return nil, err
	}
	if err := run("ip", "-n", n.NS, "link", "set", "eth0", "up"); err != nil {
		return nil, err
	}
	devices, err := g.disks(n)
	if err != nil {
		return nil, err
	}
	if err := g.writeNodeConfig(n, farmID, devices); err != nil {
		return nil, err
	}
	p, err := g.start("zinit-"+itoa(i), n.NS, filepath.Join(root, "log", "zinit.log"),
		filepath.Join(g.cfg.Bin, "zinit"), "-s", n.Zinit, "init", "-c", filepath.Join(root, "zinit"),
		"-state", filepath.Join(root, "run", "zinit-state"),
		// A crash-looping zosd is retried within 10 s here (a real node's
		// zinit caps the delay at a minute): development stays snappy.
		"-max-restart-delay", "10s")
	if err != nil {
		return nil, err
	}
	n.zinit = p
	var zc *zinit.Client
	if err := waitFor(ctx, time.Minute, func() error {
		c, err := zinit.New(n.Zinit, zinit.WithConfigDir(filepath.Join(root, "zinit")))
		if err != nil {
			return err
		}
		if _, err := c.ListContext(ctx); err != nil {
			c.Close()
			return err
		}
		zc = c
		return nil
	}); err != nil {
		return nil, fmt.Errorf("zinit: %w", err)
	}
	defer zc.Close()
	svc := zinit.InitService{Exec: filepath.Join(g.cfg.Bin, "zosd") + " --config " + n.Config, Log: zinit.StdoutLogType}
	if err := zc.AddService("zosd", svc); err != nil {
		return nil, err
	}
	if err := zc.Monitor("zosd"); err != nil && !errors.Is(err, zinit.ErrAlreadyMonitored) {
		return nil, err
	}
	if err := waitFor(ctx, 3*time.Minute, func() error {
		var st struct {
			Ready bool `json:"ready"`
		}
		if err := LocalAPI(ctx, n.API, "/status", &st); err != nil {
			return err
		}
		if !st.Ready {
			return errors.New("not ready")
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("zosd not ready (see %s): %w", filepath.Join(root, "log", "zinit.log"), err)
	}
	return n, nil
}

// disks attaches the node's disk files (created sparse on first use) to loop
// devices and returns them as zosd storage devices with their types.
func (g *Grid) disks(n *Node) ([]string, error) {
	var devices []string
	for _, d := range []struct {
		name string
		size int64
	}{{"ssd", g.cfg.SSDBytes}, {"hdd", g.cfg.HDDBytes}} {
		img := filepath.Join(n.Root, "disks", d.name+".img")
		if _, err := os.Stat(img); errors.Is(err, os.ErrNotExist) {
			f, err := os.Create(img)
			if err != nil {
				return nil, err
			}
			err = f.Truncate(d.size)
			f.Close()
			if err != nil {
				return nil, err
			}
		}
		dev, err := attachLoop(img)
		if err != nil {
			return nil, err
		}
		n.Loops = append(n.Loops, dev)
		devices = append(devices, dev+":"+d.name)
	}
	return devices, nil
}

func (g *Grid) writeNodeConfig(n *Node, farmID uint64, devices []string) error {
	var b strings.Builder
	q := func(s string) string { out, _ := json.Marshal(s); return string(out) }
	fmt.Fprintf(&b, "root = %s\nprefix = %s\nfarm_id = %d\ncmdline = \"\"\n", q(filepath.Join(n.Root, "root")), q(n.Prefix), farmID)
	fmt.Fprintf(&b, "hostname = %s\nexplorer = [%s]\nhub = %s\n", q(n.NS), q(g.NATSURL()), q(g.BlocksURL()))
	fmt.Fprintf(&b, "zinit = %s\nzinit_config_dir = %s\nbin_dir = %s\napi = %s\n",
		q(n.Zinit), q(filepath.Join(n.Root, "zinit")), q(g.cfg.Bin), q(n.API))
	fmt.Fprintf(&b, "report_interval = \"1m\"\nexpiry_interval = \"2s\"\ncpu_overcommit = 16\n\n[storage]\ndevices = [")
	for i, d := range devices {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(q(d))
	}
	fmt.Fprintf(&b, "]\ncache_size = %d\n\n", 2<<30)
	fmt.Fprintf(&b, "[network]\nuplink = \"eth0\"\naddress = %s\ngateway = %s\n", q(n.Address), q(inetGW))
	fmt.Fprintf(&b, "ndmz_address = %s\nndmz_gateway = %s\n", q(fmt.Sprintf("10.99.%d.3/16", n.Index)), q(inetGW))
	fmt.Fprintf(&b, "public_ipv4 = %s\npublic_gateway4 = %s\n", q(fmt.Sprintf("10.99.%d.4/16", n.Index)), q(inetGW))
	fmt.Fprintf(&b, "\n[zdb]\nlisten = %s\nport = 9900\n", q(strings.TrimSuffix(n.Address, "/16")))
	return os.WriteFile(n.Config, []byte(b.String()), 0o644)
}

// LocalAPI GETs path from a zosd local API socket into out (JSON).
func LocalAPI(ctx context.Context, socket, path string, out any) error {
	_, err := zosd.Get(ctx, socket, path, out)
	return err
}

func waitFor(ctx context.Context, timeout time.Duration, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}
