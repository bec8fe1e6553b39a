// Package zosd assembles the node agent: it brings up identity, storage,
// vdisks, network, flists, containers and VMs, the provision engine with a
// provisioner per workload type, the grid connection (register, heartbeat,
// capacity, reservations, results), the local API and metrics.
//
// A capability the host cannot support (no disks, no FUSE, no containerd, no
// QEMU) is reported and left off; the rest runs, and reservations needing the
// missing capability fail with a result that says so.
package zosd

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/container"
	"github.com/zos-go/zos/pkg/flist"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/identity"
	"github.com/zos-go/zos/pkg/network"
	"github.com/zos-go/zos/pkg/provision"
	"github.com/zos-go/zos/pkg/provision/primitives"
	"github.com/zos-go/zos/pkg/storage"
	"github.com/zos-go/zos/pkg/vdisk"
	"github.com/zos-go/zos/pkg/vm"
	"github.com/zos-go/zos/pkg/zinit"
)

// Capability is the state of one module of the node.
type Capability struct {
	Name  string `json:"name"`
	Up    bool   `json:"up"`
	Error string `json:"error,omitempty"`
}

// Agent is one node's zosd.
type Agent struct {
	cfg Config
	log *slog.Logger

	zinit     *zinit.Client
	id        *identity.Manager
	storage   *storage.Module
	vdisk     *vdisk.Module
	network   *network.Module
	flist     *flist.Module
	container *container.Module
	vm        *vm.Module
	engine    *provision.Engine
	store     provision.Store
	grid      *gridConn // nil without an explorer
	nm        *nodeMetrics

	mu   sync.Mutex
	caps []Capability // guarded by mu
}

// New checks the configuration; Run brings the node up.
func New(cfg Config, log *slog.Logger) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Agent{cfg: cfg, log: log, nm: newNodeMetrics()}, nil
}

func (a *Agent) report(name string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := Capability{Name: name, Up: err == nil}
	if err != nil {
		c.Error = err.Error()
		a.log.Error("capability unavailable", "capability", name, "err", err)
	} else {
		a.log.Info("capability up", "capability", name)
	}
	a.caps = append(a.caps, c)
}

// Capabilities lists the state of every module.
func (a *Agent) Capabilities() []Capability {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Capability(nil), a.caps...)
}

// runPath is a directory for runtime sockets of this node.
func (a *Agent) runPath(name string) string {
	prefix := a.cfg.Prefix
	if prefix == "" {
		prefix = "node"
	}
	return filepath.Join(a.cfg.RunDir, prefix, name)
}

func (a *Agent) path(parts ...string) string {
	return filepath.Join(append([]string{a.cfg.Root}, parts...)...)
}

// Run brings the node up and serves until ctx ends. Workloads keep running
// after it returns: they live in zinit services.
func (a *Agent) Run(ctx context.Context) error {
	if err := os.MkdirAll(a.cfg.Root, 0o755); err != nil {
		return err
	}
	zc, err := zinit.New(a.cfg.Zinit, zinit.WithConfigDir(a.cfg.ZinitConfigDir))
	if err != nil {
		return fmt.Errorf("zinit: %w", err)
	}
	a.zinit = zc
	g, ctx := errgroup.WithContext(ctx)

	cacheDir := a.startStorage(ctx, g)
	if err := a.loadIdentity(ctx, cacheDir); err != nil {
		return err // no identity, no node
	}
	a.startNetwork(ctx, g)
	a.startFlist(ctx, g)
	a.startContainers(ctx, g)
	a.startVMs(ctx, g)

	store, err := provision.OpenBolt(filepath.Join(cacheDir, "provision.db"))
	if err != nil {
		return err
	}
	a.store = store
	defer store.Close()

	grid, err := a.connectGrid(ctx)
	if err != nil {
		return err
	}
	if grid != nil {
		a.grid = grid
		defer grid.Close()
	}
	if err := a.startEngine(ctx, g, grid); err != nil {
		return err
	}
	g.Go(func() error { return a.serveAPI(ctx) })
	if grid != nil {
		g.Go(func() error { return a.reportLoop(ctx, grid) })
	}
	return g.Wait()
}

// startStorage scans the disks and returns the directory of the node's
// persistent state: the cache volume, or <root>/state when there is none.
func (a *Agent) startStorage(ctx context.Context, g *errgroup.Group) string {
	cfg := storage.DefaultConfig()
	cfg.Root = a.cfg.Root
	cfg.LabelPrefix = a.cfg.Prefix
	cfg.Discover = a.cfg.Storage.Discover
	if a.cfg.Storage.CacheSize > 0 {
		cfg.CacheSizeBytes = a.cfg.Storage.CacheSize
	}
	cfg.DeviceTypes = map[string]pkg.DeviceType{}
	for _, d := range a.cfg.Storage.Devices {
		path, kind, _ := strings.Cut(d, ":")
		cfg.Devices = append(cfg.Devices, path)
		if kind != "" {
			cfg.DeviceTypes[path] = pkg.DeviceType(kind)
		}
	}
	state := a.path("state")
	m, err := storage.New(cfg, a.log.With("module", "storage"))
	if err == nil {
		err = m.Scan(ctx)
	}
	if err != nil {
		a.report("storage", err)
		_ = os.MkdirAll(state, 0o700)
		return state
	}
	a.storage = m
	g.Go(func() error { return m.Run(ctx) })
	a.report("storage", nil)
	if fs, err := m.GetCacheFS(); err == nil && !m.CacheDegraded() {
		state = filepath.Join(fs.Path, "zos")
	} else {
		a.log.Warn("no cache volume: node state kept on the root filesystem", "dir", state)
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		a.log.Error("state dir", "dir", state, "err", err)
	}
	if vd, err := vdisk.New(vdisk.DefaultConfig(), m, a.log.With("module", "vdisk")); err != nil {
		a.report("vdisk", err)
	} else {
		a.vdisk = vd
		a.report("vdisk", nil)
	}
	return state
}

// loadIdentity loads (or creates on first start) the node key. The seed is
// kept on the cache volume and mirrored under the root.
func (a *Agent) loadIdentity(ctx context.Context, stateDir string) error {
	cfg := identity.DefaultConfig()
	cfg.SeedPath = filepath.Join(stateDir, "identity", "seed.txt")
	if mirror := a.path("identity", "seed.txt"); mirror != cfg.SeedPath {
		cfg.MirrorPaths = []string{mirror}
	}
	cfg.FarmID = a.cfg.FarmID
	if a.cfg.Cmdline != "" {
		cfg.Cmdline = identity.CmdlineFile(a.cfg.Cmdline)
	}
	id, err := identity.Load(ctx, cfg, a.log.With("module", "identity"))
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	a.id = id
	a.log.Info("node identity", "node_id", string(id.NodeID()))
	return nil
}

func (a *Agent) startNetwork(ctx context.Context, g *errgroup.Group) {
	cfg := network.DefaultConfig()
	cfg.NodeID = string(a.id.NodeID())
	cfg.NamePrefix = a.cfg.Prefix
	cfg.StateDir = a.path("network")
	cfg.Uplink = a.cfg.Network.Uplink
	if a.cfg.Network.WireGuard != "" {
		cfg.WireGuard = a.cfg.Network.WireGuard
	}
	cfg.WGCommand = []string{a.cfg.binary("zos-wg")}
	cfg.ZOSAddress, _ = netip.ParsePrefix(a.cfg.Network.Address)
	cfg.ZOSGateway, _ = netip.ParseAddr(a.cfg.Network.Gateway)
	cfg.NDMZ4Address, _ = netip.ParsePrefix(a.cfg.Network.NDMZAddress)
	cfg.NDMZ4Gateway, _ = netip.ParseAddr(a.cfg.Network.NDMZGateway)
	if a.cfg.Network.PublicIPv4 != "" {
		pub := &network.PublicConfig{}
		pub.IPv4, _ = netip.ParsePrefix(a.cfg.Network.PublicIPv4)
		pub.GW4, _ = netip.ParseAddr(a.cfg.Network.PublicGateway4)
		cfg.Public = pub
	}
	m, err := network.New(cfg, a.id, flist.ZinitRunner{Client: a.zinit}, a.log.With("module", "network"))
	if err != nil {
		a.report("network", err)
		return
	}
	a.network = m
	g.Go(func() error { return m.Run(ctx) })
	a.report("network", nil)
}

func (a *Agent) startFlist(ctx context.Context, g *errgroup.Group) {
	if a.storage == nil {
		a.report("flist", errors.New("needs storage"))
		return
	}
	fs, err := a.storage.GetCacheFS()
	if err != nil {
		a.report("flist", err)
		return
	}
	cfg := flist.DefaultConfig(filepath.Join(fs.Path, "flist"))
	cfg.Binary = a.cfg.binary("flistfs")
	if a.cfg.Hub != "" {
		cfg.DefaultStorage = a.cfg.Hub
	}
	cfg.ServicePrefix = a.cfg.Prefix + "flistfs@"
	m, err := flist.New(cfg, a.storage, flist.ZinitRunner{Client: a.zinit}, a.log.With("module", "flist"))
	if err != nil {
		a.report("flist", err)
		return
	}
	a.flist = m
	g.Go(func() error { return m.Run(ctx) })
	a.report("flist", nil)
}

// startContainers runs the node's own containerd as a zinit service, then
// the container module on it.
func (a *Agent) startContainers(ctx context.Context, g *errgroup.Group) {
	d := container.DaemonConfig{Dir: a.path("containerd")}
	err := d.Validate()
	if err == nil {
		_, err = d.WriteConfig()
	}
	var svc zinit.InitService
	if err == nil {
		svc, err = d.Service()
	}
	name := a.cfg.Prefix + "containerd"
	if err == nil {
		err = a.zinit.AddService(name, svc)
	}
	if err == nil {
		if merr := a.zinit.Monitor(name); merr != nil && !errors.Is(merr, zinit.ErrAlreadyMonitored) {
			err = merr
		}
	}
	if err != nil {
		a.report("container", fmt.Errorf("containerd: %w", err))
		return
	}
	cfg := container.DefaultConfig(a.path("container"))
	cfg.Address = d.Address()
	cfg.RuncRoot = d.RuncRoot()
	cfg.ShimLogs = a.cfg.binary("zos-shimlogs")
	cfg.Corex = a.cfg.binary("zos-corex")
	cfg.CgroupParent = "/" + a.cfg.Prefix + "zos"
	m, err := container.New(cfg, a.log.With("module", "container"))
	if err != nil {
		a.report("container", err)
		return
	}
	a.container = m
	g.Go(func() error { return m.Watch(ctx) })
	a.report("container", nil)
}

func (a *Agent) startVMs(ctx context.Context, g *errgroup.Group) {
	if a.storage == nil {
		a.report("vm", errors.New("needs storage"))
		return
	}
	cfg := vm.DefaultConfig()
	cfg.Root = a.path("vm")
	cfg.RunDir = a.runPath("vm")
	cfg.ServicePrefix = a.cfg.Prefix + "qemu@"
	if a.flist != nil {
		if fs, err := a.storage.GetCacheFS(); err == nil {
			cfg.ImageDirs = []string{filepath.Join(fs.Path, "flist")}
		}
	}
	m, err := vm.New(cfg, vm.NewQEMU(cfg, a.log.With("module", "qemu")), vm.ZinitLauncher{Client: a.zinit}, a.storage, a.log.With("module", "vm"))
	if err != nil {
		a.report("vm", err)
		return
	}
	a.vm = m
	g.Go(func() error { return m.Serve(ctx) })
	a.report("vm", nil)
}

// provisioners registers a provisioner for each workload type whose
// capabilities are up.
func (a *Agent) provisioners() map[gridtypes.WorkloadType]provision.Provisioner {
	p := map[gridtypes.WorkloadType]provision.Provisioner{}
	if a.storage != nil {
		p[gridtypes.TypeVolume] = primitives.Volume{Storage: a.storage, StateDir: a.path("provision", "volumes")}
	}
	if a.network != nil {
		p[gridtypes.TypeNetwork] = primitives.Network{Networker: a.network}
	}
	if a.network != nil && a.flist != nil && a.storage != nil && a.container != nil {
		p[gridtypes.TypeContainer] = primitives.Container{
			Networker: a.network, Flister: a.flist, Storage: a.storage, Runtime: a.container, DefaultHub: a.cfg.Hub,
			StateDir: a.path("provision", "containers"),
		}
	}
	if a.network != nil {
		p[gridtypes.TypePublicIP] = primitives.PublicIP{Networker: a.network, Filter: primitives.NFTFilter{}}
	}
	if a.storage != nil {
		if z, err := a.zdbProvisioner(); err != nil {
			a.report("zdb", err)
		} else {
			p[gridtypes.TypeZDB] = z
			a.report("zdb", nil)
		}
	}
	if a.network != nil && a.flist != nil && a.vdisk != nil && a.vm != nil {
		c := primitives.DefaultVMConfig()
		c.StateDir = a.path("provision", "vms")
		c.DefaultHub = a.cfg.Hub
		if gw, err := netip.ParseAddr(a.cfg.Network.PublicGateway4); err == nil {
			c.PublicGateway4 = gw
		}
		deps := primitives.VMDeps{Networker: a.network, Flister: a.flist, VDisks: a.vdisk, VMs: a.vm}
		if a.grid != nil {
			deps.Gateways = a.grid
		}
		if vmp, k8s, err := primitives.NewVMProvisioners(c, deps, a.log.With("module", "vm")); err != nil {
			a.report("vm provisioner", err)
		} else {
			p[gridtypes.TypeVM], p[gridtypes.TypeKubernetes] = vmp, k8s
		}
	}
	dcfg := primitives.DefaultDebugConfig()
	dcfg.NodeID = string(a.id.NodeID())
	dcfg.Command = []string{a.cfg.binary("zos-logship")}
	dcfg.ServicePrefix = a.cfg.Prefix
	dcfg.ZinitSocket = a.cfg.Zinit
	if d, err := primitives.NewDebug(dcfg, a.zinit); err != nil {
		a.report("debug", err)
	} else {
		p[gridtypes.TypeDebug] = d
	}
	return p
}

// zdbProvisioner runs 0-db servers as the original (in a namespace made by
// the network module, port 9900) on a real node, or on the node's address
// with one port per volume when Config.ZDB.Listen is a specific address
// (the development grid).
func (a *Agent) zdbProvisioner() (*primitives.ZDB, error) {
	cfg := primitives.DefaultZDBConfig()
	cfg.Command = []string{a.cfg.binary("zdb")}
	cfg.ServicePrefix = a.cfg.Prefix
	cfg.RunDir = a.runPath("zdb")
	cfg.Port = a.cfg.ZDB.Port
	if l := a.cfg.ZDB.Listen; l != "" && l != "::" && l != "0.0.0.0" {
		cfg.NetNS = false
		cfg.Listen = l
		cfg.Addresses = []string{l}
	}
	var nw pkg.Networker
	if a.network != nil {
		nw = a.network
	} else if cfg.NetNS {
		return nil, errors.New("needs the network module")
	}
	return primitives.NewZDB(cfg, a.storage, a.zinit, nw, a.log.With("module", "zdb"))
}

func (a *Agent) startEngine(ctx context.Context, g *errgroup.Group, grid *gridConn) error {
	cfg := provision.DefaultConfig()
	cfg.ExpiryInterval = time.Duration(a.cfg.ExpiryInterval)
	cfg.NodeID = string(a.id.NodeID())
	cfg.Key = ed25519.PrivateKey(a.id.PrivateKey())
	total, err := a.totalCapacity()
	if err != nil {
		a.log.Warn("node capacity unknown: admission off", "err", err)
	}
	cfg.Total = total
	cfg.Observe = a.nm.observe
	var users provision.Users
	var reporter provision.Reporter = logReporter{log: a.log}
	var sources []provision.Source
	if grid != nil {
		users, reporter = grid, grid
		sources = append(sources, grid)
	} else {
		cfg.VerifySignatures = false
		a.log.Warn("no grid configured: reservations are not signature-checked")
	}
	if a.cfg.ReservationDir != "" {
		sources = append(sources, provision.DirSource{Dir: a.cfg.ReservationDir, Log: a.log})
	}
	secrets := provision.NodeSecrets{Identity: a.id, Users: users}
	e, err := provision.New(cfg, a.store, a.provisioners(), users, secrets, reporter, a.log.With("module", "provision"))
	if err != nil {
		return err
	}
	a.engine = e
	g.Go(func() error { return e.Run(ctx, sources...) })
	return nil
}

// logReporter is the reporter of a node without a grid: results are logged.
type logReporter struct{ log *slog.Logger }

func (l logReporter) Report(ctx context.Context, r *gridtypes.Result) error {
	l.log.InfoContext(ctx, "result", "reservation", r.ReservationID, "state", r.State.String(), "message", r.Message)
	return nil
}

// waitReady polls ready until it returns nil or ctx ends.
func waitReady(ctx context.Context, every time.Duration, ready func() error) error {
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(every):
		}
	}
}
