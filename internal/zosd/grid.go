package zosd

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"time"

	"github.com/shirou/gopsutil/v4/mem"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/explorer"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/identity"
	"github.com/zos-go/zos/pkg/monitord"
	"github.com/zos-go/zos/pkg/provision"
)

// Version is the agent's version, reported to the explorer.
var Version = "0.1.0"

// gridConn is the node's side of the grid: the provision engine's source of
// reservations, its reporter of results and its directory of users.
type gridConn struct {
	*explorer.NodeClient
	ackTimeout time.Duration
	log        *slog.Logger
}

var (
	_ provision.Source   = (*gridConn)(nil)
	_ provision.Reporter = (*gridConn)(nil)
	_ provision.Users    = (*gridConn)(nil)
)

// connectGrid connects to the explorer and registers the node, retrying
// until it succeeds or ctx ends. No explorer configured: nil.
func (a *Agent) connectGrid(ctx context.Context) (*gridConn, error) {
	if len(a.cfg.Explorer) == 0 {
		return nil, nil
	}
	nc, err := explorer.ConnectNode(ctx, a.cfg.Explorer, ed25519.PrivateKey(a.id.PrivateKey()), a.log.With("module", "explorer"))
	if err != nil {
		return nil, fmt.Errorf("explorer %v: %w", a.cfg.Explorer, err)
	}
	farm, err := a.id.FarmID()
	if errors.Is(err, identity.ErrOrphan) {
		a.log.Error("node has no farm: set farm_id in the config or farmer_id= on the kernel command line")
	} else if err != nil {
		nc.Close()
		return nil, err
	}
	host := a.cfg.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	err = waitReady(ctx, 5*time.Second, func() error {
		_, err := nc.Register(ctx, explorer.Registration{FarmID: uint64(farm), Hostname: host, OSVersion: Version})
		if err != nil {
			a.log.Warn("registration retried", "err", err)
		}
		return err
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("register node: %w", err)
	}
	a.log.Info("node registered", "node_id", nc.NodeID(), "farm_id", uint64(farm))
	return &gridConn{NodeClient: nc, ackTimeout: 30 * time.Second, log: a.log}, nil
}

// Run implements provision.Source. It first hands the engine the node's
// whole live state as the explorer knows it (so a node whose store was lost
// or damaged rebuilds it; the engine ignores what it already has), then
// every delivery of the node's stream, acknowledged to JetStream once the
// engine recorded it.
func (g *gridConn) Run(ctx context.Context, out chan<- provision.Delivery) error {
	all, err := g.Reservations(ctx)
	if err != nil {
		g.log.WarnContext(ctx, "resync from the explorer skipped", "err", err)
	}
	if err == nil {
		for _, r := range all {
			select {
			case out <- provision.Delivery{Reservation: r}:
			case <-ctx.Done():
				return nil
			}
		}
	}
	return g.Watch(ctx, func(ctx context.Context, r *gridtypes.Reservation) error {
		acked := make(chan struct{})
		d := provision.Delivery{Reservation: r, Ack: func() { close(acked) }}
		select {
		case out <- d:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case <-acked:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(g.ackTimeout):
			return fmt.Errorf("reservation %d not recorded in %v", r.ID, g.ackTimeout)
		}
	})
}

// Report implements provision.Reporter.
func (g *gridConn) Report(ctx context.Context, r *gridtypes.Result) error {
	return g.PostResult(ctx, r)
}

// PublicKey implements provision.Users.
func (g *gridConn) PublicKey(ctx context.Context, userID uint64) (ed25519.PublicKey, error) {
	u, err := g.User(ctx, userID)
	if err != nil {
		return nil, err
	}
	pk, err := hex.DecodeString(u.PublicKey)
	if err != nil || len(pk) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("user %d: bad public key", userID)
	}
	return pk, nil
}

// totalCapacity is what the node has: cores (times the configured
// overcommit), memory and the pools' sizes.
// Public IPv4 addresses belong to the farm, so the node does not limit them.
func (a *Agent) totalCapacity() (gridtypes.Capacity, error) {
	c := gridtypes.Capacity{CRU: uint64(runtime.NumCPU()) * a.cfg.CPUOvercommit, IPV4U: ^uint64(0)}
	m, err := mem.VirtualMemory()
	if err != nil {
		return gridtypes.Capacity{}, err
	}
	c.MRU = m.Total
	if a.storage != nil {
		if c.SRU, err = a.storage.Total(pkg.SSDDevice); err != nil {
			return gridtypes.Capacity{}, err
		}
		if c.HRU, err = a.storage.Total(pkg.HDDDevice); err != nil {
			return gridtypes.Capacity{}, err
		}
	}
	return c, nil
}

// reportLoop sends the heartbeat (uptime) and capacity at start and every
// ReportInterval.
func (a *Agent) reportLoop(ctx context.Context, g *gridConn) error {
	t := time.NewTicker(time.Duration(a.cfg.ReportInterval))
	defer t.Stop()
	for {
		if up, err := (monitord.Host{}).Uptime(ctx); err == nil {
			if err := g.Uptime(ctx, up); err != nil {
				a.log.Warn("uptime report", "err", err)
			}
		}
		if rep, err := a.capacityReport(); err == nil {
			if err := g.ReportCapacity(ctx, rep); err != nil {
				a.log.Warn("capacity report", "err", err)
			}
		}
		if a.network != nil {
			// The WireGuard ports in use, so users pick free ones.
			if err := g.SetPorts(ctx, a.network.WGPorts()); err != nil {
				a.log.Warn("ports report", "err", err)
			}
			if ifs := a.interfaces(); len(ifs) > 0 {
				if err := g.SetInterfaces(ctx, ifs); err != nil {
					a.log.Warn("interfaces report", "err", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (a *Agent) capacityReport() (explorer.CapacityReport, error) {
	total, err := a.totalCapacity()
	if err != nil {
		return explorer.CapacityReport{}, err
	}
	used, err := a.engine.Used()
	if err != nil {
		return explorer.CapacityReport{}, err
	}
	counts := map[gridtypes.WorkloadType]uint64{}
	for t, byState := range a.engine.Counts() {
		for st, n := range byState {
			if st.Live() {
				counts[t] += uint64(n)
			}
		}
	}
	return explorer.CapacityReport{Total: total, System: provision.DefaultConfig().SystemReserve, Used: used, Workloads: counts}, nil
}

// PublicGateway implements primitives.PublicGateways from the farm's IP
// pool on the explorer.
func (g *gridConn) PublicGateway(ctx context.Context, ip netip.Prefix) (netip.Addr, error) {
	farm, err := g.Farm(ctx)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, f := range farm.IPAddresses {
		p, err := netip.ParsePrefix(f.Address)
		if err != nil || p.Addr() != ip.Addr() {
			continue
		}
		gw, err := netip.ParseAddr(f.Gateway)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("farm ip %s: gateway %q: %w", f.Address, f.Gateway, err)
		}
		return gw, nil
	}
	return netip.Addr{}, fmt.Errorf("public ip %s: not in the farm's pool: %w", ip, os.ErrNotExist)
}

// interfaces lists the node's zos bridge addresses (what the original
// reported as the node's interfaces).
func (a *Agent) interfaces() []gridtypes.Iface {
	ips, err := a.network.Addrs("zos", "")
	if err != nil || len(ips) == 0 {
		return nil
	}
	iface := gridtypes.Iface{Name: "zos"}
	for _, ip := range ips {
		iface.Addrs = append(iface.Addrs, ip.String())
	}
	if gw := a.cfg.Network.Gateway; gw != "" {
		iface.Gateway = []string{gw}
	}
	return []gridtypes.Iface{iface}
}
