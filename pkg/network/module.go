package network

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"

	"github.com/zos-go/zos/pkg"
)

var _ pkg.Networker = (*Module)(nil)

// Module is the network module of a node. Create it with New, start it with
// Run; the seed methods (pkg.Networker) fail with ErrNotReady until Run has
// bootstrapped the node. All methods are safe for concurrent use; changes
// to network resources are serialised.
type Module struct {
	cfg    Config
	names  names
	id     Decrypter
	sup    Supervisor
	log    *slog.Logger
	store  nrStore
	leases leaseStore
	vmTaps vmTapStore

	mu     sync.Mutex           // serialises changes
	runCtx context.Context      // module lifetime; guarded by mu
	ready  bool                 // guarded by mu
	wg     wgBackend            // guarded by mu (set by Run)
	ports  map[uint16]pkg.NetID // listen ports of stored resources; guarded by mu

	watch *addrWatcher

	nodeMu      sync.Mutex   // serialises ndmz ruleset updates
	nodeSeen    []netip.Addr // node addresses in the ndmz ruleset; guarded by nodeMu
	yggSeen     netip.Prefix // yggdrasil subnet in the ndmz ruleset; guarded by nodeMu
	nodeApplied bool         // guarded by nodeMu
}

// New returns a module for cfg. id decrypts the WireGuard private keys of
// network resources (the node identity); sup runs the helper processes
// (userspace WireGuard devices, DHCP clients). It starts nothing.
func New(cfg Config, id Decrypter, sup Supervisor, log *slog.Logger) (*Module, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if id == nil || sup == nil || log == nil {
		return nil, fmt.Errorf("network: identity, supervisor and logger are required: %w", ErrInvalidConfig)
	}
	m := &Module{
		cfg:    cfg,
		names:  names{prefix: cfg.NamePrefix},
		id:     id,
		sup:    sup,
		log:    log,
		store:  nrStore{dir: filepath.Join(cfg.StateDir, "networks"), nodeID: cfg.NodeID},
		leases: leaseStore{dir: filepath.Join(cfg.StateDir, "ndmz-lease")},
		vmTaps: vmTapStore{dir: filepath.Join(cfg.StateDir, "vmtaps")},
		ports:  map[uint16]pkg.NetID{},
	}
	m.watch = newAddrWatcher(m)
	return m, nil
}

// op returns a context for one seed call: bounded by the module's lifetime
// and OpTimeout. It fails with ErrNotReady before Run has bootstrapped.
func (m *Module) op() (context.Context, context.CancelFunc, error) {
	m.mu.Lock()
	ready, rc := m.ready, m.runCtx
	m.mu.Unlock()
	if !ready || rc.Err() != nil {
		return nil, nil, ErrNotReady
	}
	ctx, cancel := context.WithTimeout(rc, m.cfg.OpTimeout)
	return ctx, cancel, nil
}

// Ready implements pkg.Networker: nil once Run has bootstrapped the node.
func (m *Module) Ready() error {
	_, cancel, err := m.op()
	if err != nil {
		return err
	}
	cancel()
	return nil
}

// WireGuardBackend returns "kernel" or "userspace" once Run has started.
func (m *Module) WireGuardBackend() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.wg == nil {
		return ""
	}
	return m.wg.Name()
}

// CreateNR implements pkg.Networker: it creates or updates the network
// resource and returns the name of its namespace. Invalid input is refused
// before anything changes; a failed creation is undone.
func (m *Module) CreateNR(nr pkg.NetResource) (string, error) {
	ctx, cancel, err := m.op()
	if err != nil {
		return "", err
	}
	defer cancel()
	return m.createNR(ctx, nr)
}

// DeleteNR implements pkg.Networker: it removes every namespace, link,
// process, lease and file of the resource. Deleting an unknown resource is
// not an error.
func (m *Module) DeleteNR(nr pkg.NetResource) error {
	ctx, cancel, err := m.op()
	if err != nil {
		return err
	}
	defer cancel()
	if err := checkName(string(nr.NetID), "n-"); err != nil {
		return fmt.Errorf("network %q: %w", nr.NetID, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.deleteNRLocked(ctx, nr.NetID)
}

// Join implements pkg.Networker. It is an ensure: joining again with the
// same configuration returns the existing member untouched (the agent
// re-ensures its containers after a restart); another configuration for a
// member that exists is ErrExists.
func (m *Module) Join(id pkg.NetID, containerID string, cfg pkg.ContainerNetworkConfig) (pkg.Member, error) {
	ctx, cancel, err := m.op()
	if err != nil {
		return pkg.Member{}, err
	}
	defer cancel()
	return m.join(ctx, id, containerID, cfg)
}

// Leave implements pkg.Networker: it deletes the container's namespace
// (nil when it is already gone).
func (m *Module) Leave(id pkg.NetID, containerID string) error {
	ctx, cancel, err := m.op()
	if err != nil {
		return err
	}
	defer cancel()
	return m.leave(ctx, id, containerID)
}

// ZDBPrepare implements pkg.Networker.
func (m *Module) ZDBPrepare(hw net.HardwareAddr) (string, error) {
	ctx, cancel, err := m.op()
	if err != nil {
		return "", err
	}
	defer cancel()
	return m.zdbPrepare(ctx, hw)
}

// ZDBDestroy implements pkg.Networker.
func (m *Module) ZDBDestroy(ns string) error {
	ctx, cancel, err := m.op()
	if err != nil {
		return err
	}
	defer cancel()
	return m.zdbDestroy(ctx, ns)
}

// SetupTap implements pkg.Networker.
func (m *Module) SetupTap(id pkg.NetID) (string, error) {
	ctx, cancel, err := m.op()
	if err != nil {
		return "", err
	}
	defer cancel()
	return m.setupTap(ctx, id)
}

// TapExists implements pkg.Networker.
func (m *Module) TapExists(id pkg.NetID) (bool, error) {
	if _, cancel, err := m.op(); err != nil {
		return false, err
	} else {
		cancel()
	}
	if err := checkName(string(id), "t-"); err != nil {
		return false, err
	}
	return linkExistsIn(m.cfg.HostNS, tapIface(string(id)))
}

// RemoveTap implements pkg.Networker.
func (m *Module) RemoveTap(id pkg.NetID) error {
	if _, cancel, err := m.op(); err != nil {
		return err
	} else {
		cancel()
	}
	if err := checkName(string(id), "t-"); err != nil {
		return err
	}
	return m.inHost(func() error { return deleteLink(tapIface(string(id))) })
}

// PublicIPv4Support implements pkg.Networker: always true with the
// dual-stack ndmz.
func (m *Module) PublicIPv4Support() bool { return true }

// SetupPubTap implements pkg.Networker.
func (m *Module) SetupPubTap(res string) (string, error) {
	ctx, cancel, err := m.op()
	if err != nil {
		return "", err
	}
	defer cancel()
	return m.setupPubTap(ctx, res)
}

// PubTapExists implements pkg.Networker.
func (m *Module) PubTapExists(res string) (bool, error) {
	if err := CheckPubTapID(res); err != nil {
		return false, err
	}
	return linkExistsIn(m.cfg.HostNS, pubTapIface(res))
}

// RemovePubTap implements pkg.Networker; it also removes the tap's public
// IP filter (SetupPubIPFilter).
func (m *Module) RemovePubTap(res string) error {
	ctx, cancel, err := m.op()
	if err != nil {
		return err
	}
	defer cancel()
	if err := CheckPubTapID(res); err != nil {
		return err
	}
	if err := m.inHost(func() error { return deleteLink(pubTapIface(res)) }); err != nil {
		return err
	}
	return m.RemovePubIPFilter(ctx, res)
}

// DisconnectPubTap implements pkg.Networker.
func (m *Module) DisconnectPubTap(res string) error {
	if err := CheckPubTapID(res); err != nil {
		return err
	}
	return m.disconnectPubTap(res)
}

// GetSubnet implements pkg.Networker.
func (m *Module) GetSubnet(id pkg.NetID) (net.IPNet, error) {
	nr, err := m.store.Get(id)
	if err != nil {
		return net.IPNet{}, err
	}
	return Subnet(nr), nil
}

// GetNet implements pkg.Networker.
func (m *Module) GetNet(id pkg.NetID) (net.IPNet, error) {
	nr, err := m.store.Get(id)
	if err != nil {
		return net.IPNet{}, err
	}
	return Range(nr), nil
}

// GetPublicIPv6Subnet implements pkg.Networker: the first global unicast
// address of npub6 that is neither ULA nor yggdrasil, as a prefix.
func (m *Module) GetPublicIPv6Subnet() (net.IPNet, error) {
	return m.publicIPv6()
}

// GetDefaultGwIP implements pkg.Networker.
func (m *Module) GetDefaultGwIP(id pkg.NetID) (net.IP, net.IP, error) {
	nr, err := m.store.Get(id)
	if err != nil {
		return nil, nil, err
	}
	gw4, gw6 := GatewayIPs(nr)
	return gw4, gw6, nil
}

// GetIPv6From4 implements pkg.Networker.
func (m *Module) GetIPv6From4(id pkg.NetID, ip net.IP) (net.IPNet, error) {
	if _, err := m.store.Get(id); err != nil {
		return net.IPNet{}, err
	}
	return IPv6From4(id, ip)
}

// Addrs implements pkg.Networker: the addresses of iface, in namespace
// netns (a name as returned by the module, e.g. a Join namespace) or in the
// host namespace when netns is empty.
func (m *Module) Addrs(iface string, netns string) ([]net.IP, error) {
	return m.addrs(iface, netns)
}

// ZOSAddresses implements pkg.Networker.
func (m *Module) ZOSAddresses(ctx context.Context) <-chan pkg.NetlinkAddresses {
	return m.watch.stream(ctx, streamZOS)
}

// DMZAddresses implements pkg.Networker.
func (m *Module) DMZAddresses(ctx context.Context) <-chan pkg.NetlinkAddresses {
	return m.watch.stream(ctx, streamDMZ)
}

// YggAddresses implements pkg.Networker.
func (m *Module) YggAddresses(ctx context.Context) <-chan pkg.NetlinkAddresses {
	return m.watch.stream(ctx, streamYgg)
}

// PublicAddresses implements pkg.Networker.
func (m *Module) PublicAddresses(ctx context.Context) <-chan pkg.NetlinkAddresses {
	return m.watch.stream(ctx, streamPublic)
}

// WGPorts returns the WireGuard listen ports of the node's network
// resources, sorted (what the agent publishes to the explorer, spec §4
// step 9).
func (m *Module) WGPorts() []uint16 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]uint16, 0, len(m.ports))
	for p := range m.ports {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
