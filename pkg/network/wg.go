package network

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/zos-go/zos/pkg"
)

// wgSpec is the desired state of the WireGuard device of a network resource.
type wgSpec struct {
	netID  pkg.NetID
	nrNS   string // namespace of the device
	sockNS string // namespace of its UDP socket ("" = the host namespace)
	key    wgtypes.Key
	port   int
	peers  []wgtypes.PeerConfig
	addr   netip.Prefix // 100.64.<o2>.<o3>/16
	route  netip.Prefix // the network range, via the device
}

// wgBackend makes WireGuard devices: kernel links or userspace processes.
type wgBackend interface {
	// Ensure creates the device when missing and converges it to s
	// (key, port, peers, address, route, up) without disturbing peers that
	// did not change.
	Ensure(ctx context.Context, s wgSpec) error
	// Remove removes everything the backend made for the network outside
	// its namespace (processes, configuration files, sockets).
	Remove(ctx context.Context, id pkg.NetID) error
	// Device returns the device's current WireGuard state.
	Device(ctx context.Context, s wgSpec) (*wgtypes.Device, error)
	// Name tells which backend this is ("kernel" or "userspace").
	Name() string
}

// peersOf converts the resource's peers to WireGuard peer configs.
func peersOf(nr pkg.NetResource) ([]wgtypes.PeerConfig, error) {
	keepalive := wgKeepalive
	var out []wgtypes.PeerConfig
	for i, p := range nr.Peers {
		k, err := wgtypes.ParseKey(p.WGPublicKey)
		if err != nil {
			return nil, fmt.Errorf("peer %d: %w", i, ErrInvalidKey)
		}
		pc := wgtypes.PeerConfig{PublicKey: k, ReplaceAllowedIPs: true, PersistentKeepaliveInterval: &keepalive}
		for _, a := range p.AllowedIPs {
			ap, ok := prefixOf(a.IPNet)
			if !ok {
				return nil, fmt.Errorf("peer %d: allowed ip %s: %w", i, a, ErrInvalidSubnet)
			}
			pc.AllowedIPs = append(pc.AllowedIPs, ipNetOf(ap))
		}
		if p.Endpoint != "" {
			ap, err := parseEndpoint(p.Endpoint)
			if err != nil {
				return nil, err
			}
			pc.Endpoint = net.UDPAddrFromAddrPort(ap)
		}
		out = append(out, pc)
	}
	return out, nil
}

// diffConfig returns the configuration that turns cur into s: only peers
// that are new or changed are (re)set, peers that are gone are removed, so
// sessions of unchanged peers are kept.
func diffConfig(cur *wgtypes.Device, s wgSpec) wgtypes.Config {
	var cfg wgtypes.Config
	if cur == nil || cur.PrivateKey != s.key {
		cfg.PrivateKey = &s.key
	}
	if cur == nil || cur.ListenPort != s.port {
		cfg.ListenPort = &s.port
	}
	have := map[wgtypes.Key]wgtypes.Peer{}
	if cur != nil {
		for _, p := range cur.Peers {
			have[p.PublicKey] = p
		}
	}
	want := map[wgtypes.Key]bool{}
	for _, p := range s.peers {
		want[p.PublicKey] = true
		if h, ok := have[p.PublicKey]; ok && samePeer(h, p) {
			continue
		}
		cfg.Peers = append(cfg.Peers, p)
	}
	for k := range have {
		if !want[k] {
			cfg.Peers = append(cfg.Peers, wgtypes.PeerConfig{PublicKey: k, Remove: true})
		}
	}
	return cfg
}

func samePeer(h wgtypes.Peer, p wgtypes.PeerConfig) bool {
	if p.PersistentKeepaliveInterval != nil && h.PersistentKeepaliveInterval != *p.PersistentKeepaliveInterval {
		return false
	}
	if p.Endpoint != nil && (h.Endpoint == nil || unmapped(h.Endpoint) != unmapped(p.Endpoint)) {
		return false
	}
	a := ipNetStrings(h.AllowedIPs)
	b := ipNetStrings(p.AllowedIPs)
	return slices.Equal(a, b)
}

func ipNetStrings(ns []net.IPNet) []string {
	var out []string
	for _, n := range ns {
		if p, ok := prefixOf(n); ok {
			out = append(out, p.String())
		}
	}
	slices.Sort(out)
	return out
}

// uapiConfig renders the full configuration of s in the WireGuard
// cross-platform UAPI "set" format, as the userspace device process reads
// it when it (re)starts.
func uapiConfig(s wgSpec) string {
	var b strings.Builder
	fmt.Fprintf(&b, "private_key=%s\nlisten_port=%d\nreplace_peers=true\n", hex.EncodeToString(s.key[:]), s.port)
	for _, p := range s.peers {
		fmt.Fprintf(&b, "public_key=%s\nreplace_allowed_ips=true\n", hex.EncodeToString(p.PublicKey[:]))
		for _, a := range p.AllowedIPs {
			fmt.Fprintf(&b, "allowed_ip=%s\n", a.String())
		}
		if p.Endpoint != nil {
			fmt.Fprintf(&b, "endpoint=%s\n", unmapped(p.Endpoint))
		}
		if p.PersistentKeepaliveInterval != nil {
			fmt.Fprintf(&b, "persistent_keepalive_interval=%d\n", int(p.PersistentKeepaliveInterval.Seconds()))
		}
	}
	return b.String()
}

// configure applies diffConfig through wgctrl to device name, in the calling
// thread's namespace.
func configure(name string, s wgSpec) error {
	c, err := wgctrl.New()
	if err != nil {
		return fmt.Errorf("wireguard %s: %w", name, err)
	}
	defer c.Close()
	cur, err := c.Device(name)
	if err != nil {
		return fmt.Errorf("wireguard %s: %w", name, err)
	}
	cfg := diffConfig(cur, s)
	if cfg.PrivateKey == nil && cfg.ListenPort == nil && len(cfg.Peers) == 0 {
		return nil
	}
	if err := c.ConfigureDevice(name, cfg); err != nil {
		return fmt.Errorf("wireguard %s: configure: %w", name, err)
	}
	return nil
}

// deviceOf reads device name through wgctrl in the calling thread's
// namespace.
func deviceOf(name string) (*wgtypes.Device, error) {
	c, err := wgctrl.New()
	if err != nil {
		return nil, fmt.Errorf("wireguard %s: %w", name, err)
	}
	defer c.Close()
	d, err := c.Device(name)
	if err != nil {
		return nil, fmt.Errorf("wireguard %s: %w", name, err)
	}
	return d, nil
}

// waitFor polls cond every 20 ms until it returns nil, ctx ends or timeout.
func waitFor(ctx context.Context, timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// unmapped returns the endpoint with an IPv4 address in its 4-byte form.
func unmapped(a *net.UDPAddr) netip.AddrPort {
	ap := a.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
