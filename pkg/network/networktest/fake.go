// Package networktest offers a stateful in-memory Networker (Fake) for the
// unit tests of packages that use the network module, helpers that build
// valid network resources with real WireGuard keys, and a conformance suite
// (Run) that the Fake and the real module both pass.
package networktest

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/network"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

var (
	_ pkg.Networker  = (*Fake)(nil)
	_ network.VMTaps = (*Fake)(nil)
)

// Fake is an in-memory pkg.Networker and network.VMTaps. It validates input
// exactly as the real module does (network.CheckNetResource, CheckJoin,
// CheckUpdate, CheckVMTap) and keeps network resources, joined containers,
// taps (the seed's per network and the per-VM ones), public taps and 0-db
// namespaces, so tests see the same errors and state transitions. It is safe
// for concurrent use.
type Fake struct {
	mu        sync.Mutex
	nrs       map[pkg.NetID]pkg.NetResource // guarded by mu
	members   map[string]pkg.NetID          // container id → network; guarded by mu
	memberIPs map[string][]string           // container id → its IPs; guarded by mu
	taps      map[pkg.NetID]bool            // guarded by mu
	vmTaps    map[string]fakeVMTap          // tap name → owner; guarded by mu
	pubTaps   map[string]bool               // reservation → attached to br-pub; guarded by mu
	zdbs      map[string]bool               // guarded by mu
	publicV6  net.IPNet                     // guarded by mu
	ipv4Only  bool                          // guarded by mu
	ready     error                         // guarded by mu
	reserved  []uint16
	identity  network.Decrypter
	interval  time.Duration
	zosAddrs  pkg.NetlinkAddresses // guarded by mu
	dmzAddrs  pkg.NetlinkAddresses // guarded by mu
	yggAddrs  pkg.NetlinkAddresses // guarded by mu
	pubAddrs  pkg.NetlinkAddresses // guarded by mu
	ifaceAddr map[string][]net.IP  // "netns/iface" → addresses; guarded by mu
}

// NewFake returns an empty Fake of a dual-stack node whose public IPv6
// subnet is 2001:db8:1::/64 and whose address streams tick every 10 ms.
func NewFake() *Fake {
	_, v6, _ := net.ParseCIDR("2001:db8:1::/64")
	return &Fake{
		nrs:       map[pkg.NetID]pkg.NetResource{},
		members:   map[string]pkg.NetID{},
		memberIPs: map[string][]string{},
		taps:      map[pkg.NetID]bool{},
		vmTaps:    map[string]fakeVMTap{},
		pubTaps:   map[string]bool{},
		zdbs:      map[string]bool{},
		publicV6:  *v6,
		reserved:  []uint16{9943, 9944, 9945},
		identity:  PlainIdentity{},
		interval:  10 * time.Millisecond,
		ifaceAddr: map[string][]net.IP{},
	}
}

// SetIPv4Only makes the fake node IPv4-only (no public IPv6): Join gives no
// IPv6 and refuses PublicIP6, GetPublicIPv6Subnet fails.
func (f *Fake) SetIPv4Only(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ipv4Only = v
}

// SetIdentity sets the identity that decrypts WireGuard private keys
// (PlainIdentity by default).
func (f *Fake) SetIdentity(id network.Decrypter) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.identity = id
}

// SetReady sets what Ready returns.
func (f *Fake) SetReady(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ready = err
}

// SetAddrs sets what Addrs(iface, netns) returns.
func (f *Fake) SetAddrs(iface, netns string, ips []net.IP) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ifaceAddr[netns+"/"+iface] = ips
}

// SetStreamAddrs sets what the ZOS, DMZ, Ygg and Public streams send next.
func (f *Fake) SetStreamAddrs(zos, dmz, ygg, public pkg.NetlinkAddresses) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.zosAddrs, f.dmzAddrs, f.yggAddrs, f.pubAddrs = zos, dmz, ygg, public
}

// NetResources returns the stored network resources.
func (f *Fake) NetResources() []pkg.NetResource {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []pkg.NetResource
	for _, nr := range f.nrs {
		out = append(out, nr)
	}
	return out
}

// Members returns the joined container ids of a network.
func (f *Fake) Members(id pkg.NetID) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for c, n := range f.members {
		if n == id {
			out = append(out, c)
		}
	}
	return out
}

// Ready implements pkg.Networker.
func (f *Fake) Ready() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

// CreateNR implements pkg.Networker.
func (f *Fake) CreateNR(nr pkg.NetResource) (string, error) {
	if err := network.CheckNetResource(nr, f.reserved...); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := network.PrivateKey(f.identity, nr); err != nil {
		return "", err
	}
	var stored *pkg.NetResource
	if old, ok := f.nrs[nr.NetID]; ok {
		stored = &old
	}
	ports := map[uint16]pkg.NetID{}
	for id, o := range f.nrs {
		ports[o.WGListenPort] = id
	}
	if err := network.CheckUpdate(nr, stored, ports); err != nil {
		return "", err
	}
	f.nrs[nr.NetID] = nr
	return "n-" + string(nr.NetID), nil
}

// DeleteNR implements pkg.Networker. Deleting an unknown resource is not an
// error; containers joined to it are detached.
func (f *Fake) DeleteNR(nr pkg.NetResource) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.nrs, nr.NetID)
	delete(f.taps, nr.NetID)
	for name, t := range f.vmTaps {
		if t.netID == nr.NetID {
			delete(f.vmTaps, name)
		}
	}
	for c, n := range f.members {
		if n == nr.NetID {
			delete(f.members, c)
			delete(f.memberIPs, c)
		}
	}
	return nil
}

func (f *Fake) getLocked(id pkg.NetID) (pkg.NetResource, error) {
	nr, ok := f.nrs[id]
	if !ok {
		return pkg.NetResource{}, fmt.Errorf("network %s: %w", id, network.ErrUnknownNetwork)
	}
	return nr, nil
}

// Join implements pkg.Networker.
func (f *Fake) Join(id pkg.NetID, containerID string, cfg pkg.ContainerNetworkConfig) (pkg.Member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	nr, err := f.getLocked(id)
	if err != nil {
		return pkg.Member{}, err
	}
	ips, err := network.CheckJoin(nr, containerID, cfg)
	if err != nil {
		return pkg.Member{}, err
	}
	if cfg.PublicIP6 && f.ipv4Only {
		return pkg.Member{}, fmt.Errorf("container %s: %w", containerID, network.ErrIPv4Only)
	}
	if have, ok := f.members[containerID]; ok && (have != id || !slices.Equal(f.memberIPs[containerID], cfg.IPs)) {
		return pkg.Member{}, fmt.Errorf("container %s: %w", containerID, network.ErrExists)
	}
	f.memberIPs[containerID] = slices.Clone(cfg.IPs)
	f.members[containerID] = id
	m := pkg.Member{Namespace: containerID, IPv4: ips[len(ips)-1]}
	if !f.ipv4Only && !cfg.PublicIP6 {
		m.IPv6 = network.Convert4to6(id, ips[0])
	}
	if cfg.YggdrasilIP {
		m.YggdrasilIP = net.ParseIP("300:1:2:3::1")
	}
	return m, nil
}

// Leave implements pkg.Networker; leaving twice is not an error.
func (f *Fake) Leave(id pkg.NetID, containerID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.members, containerID)
	delete(f.memberIPs, containerID)
	return nil
}

// ZDBPrepare implements pkg.Networker.
func (f *Fake) ZDBPrepare(hw net.HardwareAddr) (string, error) {
	if len(hw) != 6 {
		return "", fmt.Errorf("zdb: hardware address %q: %w", hw, network.ErrInvalidAddress)
	}
	ns := "zdb-ns-" + strings.ReplaceAll(hw.String(), ":", "")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.zdbs[ns] = true
	return ns, nil
}

// ZDBDestroy implements pkg.Networker.
func (f *Fake) ZDBDestroy(ns string) error {
	if !strings.HasPrefix(ns, "zdb-ns-") {
		return fmt.Errorf("zdb namespace %q: %w", ns, network.ErrInvalidName)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.zdbs, ns)
	return nil
}

// SetupTap implements pkg.Networker.
func (f *Fake) SetupTap(id pkg.NetID) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.getLocked(id); err != nil {
		return "", err
	}
	if f.taps[id] {
		return "", fmt.Errorf("tap t-%s: %w", id, network.ErrExists)
	}
	f.taps[id] = true
	return "t-" + string(id), nil
}

// TapExists implements pkg.Networker.
func (f *Fake) TapExists(id pkg.NetID) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.taps[id], nil
}

// RemoveTap implements pkg.Networker.
func (f *Fake) RemoveTap(id pkg.NetID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.taps, id)
	return nil
}

// PublicIPv4Support implements pkg.Networker.
func (f *Fake) PublicIPv4Support() bool { return true }

type fakeVMTap struct {
	netID pkg.NetID
	vm    string
}

// SetupVMTap implements network.VMTaps: network.VMTapName(id, vm) on a
// known network; idempotent.
func (f *Fake) SetupVMTap(id pkg.NetID, vm string) (string, error) {
	if err := network.CheckVMTap(id, vm); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.getLocked(id); err != nil {
		return "", err
	}
	name := network.VMTapName(id, vm)
	want := fakeVMTap{netID: id, vm: vm}
	if have, ok := f.vmTaps[name]; ok && have != want {
		return "", fmt.Errorf("vm tap %s: %w", name, network.ErrExists)
	}
	f.vmTaps[name] = want
	return name, nil
}

// VMTapExists implements network.VMTaps.
func (f *Fake) VMTapExists(id pkg.NetID, vm string) (bool, error) {
	if err := network.CheckVMTap(id, vm); err != nil {
		return false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.vmTaps[network.VMTapName(id, vm)] == fakeVMTap{netID: id, vm: vm}, nil
}

// RemoveVMTap implements network.VMTaps; removing a missing tap is not an
// error.
func (f *Fake) RemoveVMTap(id pkg.NetID, vm string) error {
	if err := network.CheckVMTap(id, vm); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	name := network.VMTapName(id, vm)
	if f.vmTaps[name] == (fakeVMTap{netID: id, vm: vm}) {
		delete(f.vmTaps, name)
	}
	return nil
}

// VMTapsOf returns the names of the VMs that have a tap on network id,
// sorted.
func (f *Fake) VMTapsOf(id pkg.NetID) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, t := range f.vmTaps {
		if t.netID == id {
			out = append(out, t.vm)
		}
	}
	slices.Sort(out)
	return out
}

// SetupPubTap implements pkg.Networker.
func (f *Fake) SetupPubTap(res string) (string, error) {
	if err := network.CheckPubTapID(res); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.pubTaps[res]; ok {
		return "", fmt.Errorf("tap p-%s: %w", res, network.ErrExists)
	}
	f.pubTaps[res] = true
	return "p-" + res, nil
}

// PubTapExists implements pkg.Networker.
func (f *Fake) PubTapExists(res string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.pubTaps[res]
	return ok, nil
}

// RemovePubTap implements pkg.Networker.
func (f *Fake) RemovePubTap(res string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.pubTaps, res)
	return nil
}

// DisconnectPubTap implements pkg.Networker.
func (f *Fake) DisconnectPubTap(res string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.pubTaps[res]; ok {
		f.pubTaps[res] = false
	}
	return nil
}

// PubTapAttached reports whether the public tap is attached to br-pub.
func (f *Fake) PubTapAttached(res string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pubTaps[res]
}

// GetSubnet implements pkg.Networker.
func (f *Fake) GetSubnet(id pkg.NetID) (net.IPNet, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	nr, err := f.getLocked(id)
	if err != nil {
		return net.IPNet{}, err
	}
	return network.Subnet(nr), nil
}

// GetNet implements pkg.Networker.
func (f *Fake) GetNet(id pkg.NetID) (net.IPNet, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	nr, err := f.getLocked(id)
	if err != nil {
		return net.IPNet{}, err
	}
	return network.Range(nr), nil
}

// GetPublicIPv6Subnet implements pkg.Networker.
func (f *Fake) GetPublicIPv6Subnet() (net.IPNet, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ipv4Only {
		return net.IPNet{}, network.ErrNoPublicIPv6
	}
	return f.publicV6, nil
}

// GetDefaultGwIP implements pkg.Networker.
func (f *Fake) GetDefaultGwIP(id pkg.NetID) (net.IP, net.IP, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	nr, err := f.getLocked(id)
	if err != nil {
		return nil, nil, err
	}
	gw4, gw6 := network.GatewayIPs(nr)
	return gw4, gw6, nil
}

// GetIPv6From4 implements pkg.Networker.
func (f *Fake) GetIPv6From4(id pkg.NetID, ip net.IP) (net.IPNet, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.getLocked(id); err != nil {
		return net.IPNet{}, err
	}
	return network.IPv6From4(id, ip)
}

// Addrs implements pkg.Networker with the addresses set by SetAddrs.
func (f *Fake) Addrs(iface, netns string) ([]net.IP, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ips, ok := f.ifaceAddr[netns+"/"+iface]
	if !ok {
		return nil, fmt.Errorf("interface %s in %q: %w", iface, netns, network.ErrUnknownInterface)
	}
	return ips, nil
}

func (f *Fake) stream(ctx context.Context, get func() pkg.NetlinkAddresses) <-chan pkg.NetlinkAddresses {
	ch := make(chan pkg.NetlinkAddresses)
	go func() {
		t := time.NewTicker(f.interval)
		defer t.Stop()
		for {
			f.mu.Lock()
			v := get()
			f.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case ch <- v:
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return ch
}

// ZOSAddresses implements pkg.Networker. The channel stays open until ctx
// ends (the real streams never close; readers stop on ctx).
func (f *Fake) ZOSAddresses(ctx context.Context) <-chan pkg.NetlinkAddresses {
	return f.stream(ctx, func() pkg.NetlinkAddresses { return f.zosAddrs })
}

// DMZAddresses implements pkg.Networker.
func (f *Fake) DMZAddresses(ctx context.Context) <-chan pkg.NetlinkAddresses {
	return f.stream(ctx, func() pkg.NetlinkAddresses { return f.dmzAddrs })
}

// YggAddresses implements pkg.Networker.
func (f *Fake) YggAddresses(ctx context.Context) <-chan pkg.NetlinkAddresses {
	return f.stream(ctx, func() pkg.NetlinkAddresses { return f.yggAddrs })
}

// PublicAddresses implements pkg.Networker.
func (f *Fake) PublicAddresses(ctx context.Context) <-chan pkg.NetlinkAddresses {
	return f.stream(ctx, func() pkg.NetlinkAddresses { return f.pubAddrs })
}

// Key is a WireGuard key pair for tests.
type Key struct {
	Private wgtypes.Key
	Public  wgtypes.Key
}

// NewKey generates a WireGuard key pair.
func NewKey() Key {
	k, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		panic(err)
	}
	return Key{Private: k, Public: k.PublicKey()}
}

// NR returns a valid network resource of network name/netID with range rng
// (an IPv4 /16), subnet (a /24 of it), listen port and key. Its
// WGPrivateKey is hex(encrypt(base64 private key)); pass nil for encrypt
// with PlainIdentity (no encryption).
func NR(netID pkg.NetID, name, rng, subnet string, port uint16, key Key, encrypt func([]byte) ([]byte, error)) pkg.NetResource {
	if encrypt == nil {
		encrypt = PlainIdentity{}.Encrypt
	}
	sealed, err := encrypt([]byte(key.Private.String()))
	if err != nil {
		panic(err)
	}
	return pkg.NetResource{
		Name:           name,
		NetID:          netID,
		NetworkIPRange: mustIPNet(rng),
		NodeID:         "node",
		Subnet:         mustIPNet(subnet),
		WGPrivateKey:   hex.EncodeToString(sealed),
		WGPublicKey:    key.Public.String(),
		WGListenPort:   port,
	}
}

// PeerOf returns the peer entry that points at nr: its subnet, its key, the
// allowed IPs clients build (the subnet and 100.64.<o2>.<o3>/32) and
// endpoint (may be empty).
func PeerOf(nr pkg.NetResource, endpoint string) pkg.Peer {
	ip := nr.Subnet.IP.To4()
	return pkg.Peer{
		Subnet:      nr.Subnet,
		WGPublicKey: nr.WGPublicKey,
		AllowedIPs:  []typesIPNet{nr.Subnet, mustIPNet(fmt.Sprintf("100.64.%d.%d/32", ip[1], ip[2]))},
		Endpoint:    endpoint,
	}
}

// PlainIdentity "encrypts" by copying: a stand-in for the node identity in
// tests that do not test encryption.
type PlainIdentity struct{}

// Encrypt returns a copy of msg.
func (PlainIdentity) Encrypt(msg []byte) ([]byte, error) { return append([]byte(nil), msg...), nil }

// Decrypt returns a copy of msg.
func (PlainIdentity) Decrypt(msg []byte) ([]byte, error) { return append([]byte(nil), msg...), nil }
