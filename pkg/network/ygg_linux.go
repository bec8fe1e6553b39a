package network

import (
	"context"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/mr-tron/base58"
	"github.com/vishvananda/netlink"

	"github.com/zos-go/zos/internal/atomicfile"
	"github.com/zos-go/zos/internal/netns"
)

// YggdrasilConfig enables the yggdrasil overlay: Debian's yggdrasil runs
// (supervised) in the ndmz namespace with the node's identity key (spec
// §4.3), containers and 0-db namespaces get addresses of the node's
// yggdrasil subnet.
type YggdrasilConfig struct {
	// Command is the yggdrasil binary.
	Command string
	// PrivateKey is the node's ed25519 identity key.
	PrivateKey ed25519.PrivateKey
	// Peers are yggdrasil peer URIs ("tcp://host:9943").
	Peers []string
}

// ErrNoYggdrasil: an yggdrasil address was asked for on a node without
// yggdrasil, or yggdrasil has no address yet.
var ErrNoYggdrasil = errors.New("yggdrasil not available")

var yggNet = netip.MustParsePrefix("200::/7")

func (m *Module) yggConfPath() string { return filepath.Join(m.cfg.StateDir, "yggdrasil.conf") }

// yggConfig renders the yggdrasil 0.4 configuration (JSON is valid HJSON).
func yggConfig(c *YggdrasilConfig, admin string) ([]byte, error) {
	pub := c.PrivateKey.Public().(ed25519.PublicKey)
	name := base58.Encode(pub)
	if len(name) > 6 {
		name = name[:6]
	}
	peers := c.Peers
	if peers == nil {
		peers = []string{}
	}
	return json.MarshalIndent(map[string]any{
		"Peers":          peers,
		"InterfacePeers": map[string]any{},
		"Listen":         []string{"tcp://[::]:9943", "tls://[::]:9944"},
		"AdminListen":    "unix://" + admin,
		"MulticastInterfaces": []map[string]any{
			{"Regex": "npub[46]", "Beacon": true, "Listen": true, "Port": 9945, "Priority": 0},
		},
		"AllowedPublicKeys": []string{},
		"PublicKey":         hex.EncodeToString(pub),
		"PrivateKey":        hex.EncodeToString(c.PrivateKey),
		"IfName":            yggIface,
		"IfMTU":             65535,
		"NodeInfoPrivacy":   false,
		"NodeInfo":          map[string]any{"name": name},
	}, "", "  ")
}

// ensureYggdrasil starts yggdrasil in ndmz and, once it has its address,
// puts the gateway of the node's yggdrasil subnet (<subnet>::1/64) on npub6.
func (m *Module) ensureYggdrasil(ctx context.Context) error {
	c := m.cfg.Yggdrasil
	if c == nil {
		return nil
	}
	conf, err := yggConfig(c, filepath.Join(m.cfg.StateDir, "yggdrasil.sock"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(m.cfg.StateDir, 0o700); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(m.yggConfPath(), conf, 0o600); err != nil {
		return fmt.Errorf("yggdrasil: %w", err)
	}
	ns := m.names.ndmzNS()
	argv := []string{"ip", "netns", "exec", ns, c.Command, "-useconffile", m.yggConfPath(), "-loglevel", "info"}
	if err := m.sup.Start(ctx, m.names.yggService(), argv); err != nil {
		return fmt.Errorf("yggdrasil: %w", err)
	}
	var sub netip.Prefix
	if err := waitFor(ctx, 20*time.Second, func() error { sub, err = m.yggSubnet(); return err }); err != nil {
		return fmt.Errorf("yggdrasil: %w", err)
	}
	return netns.Do(ns, func() error {
		l, err := netlink.LinkByName(npub6Iface)
		if err != nil {
			return err
		}
		return ensureAddrs(l, []netip.Prefix{yggGateway(sub)}, false)
	})
}

// yggSubnet returns the node's yggdrasil /64 (300::/8 space): the first 8
// bytes of ygg0's address with the lowest bit of the first byte set.
func (m *Module) yggSubnet() (netip.Prefix, error) {
	var out netip.Prefix
	err := netns.Do(m.names.ndmzNS(), func() error {
		as, err := addrsOf(yggIface)
		if err != nil {
			return err
		}
		for _, a := range as {
			ip, ok := netip.AddrFromSlice(a.IP)
			if ok && yggNet.Contains(ip) && ip.Is6() {
				b := ip.As16()
				b[0] |= 0x01
				out = netip.PrefixFrom(netip.AddrFrom16(b), 64).Masked()
				return nil
			}
		}
		return ErrNoYggdrasil
	})
	return out, err
}

// yggGateway is <subnet>::1/64.
func yggGateway(sub netip.Prefix) netip.Prefix {
	b := sub.Addr().As16()
	b[15] = 1
	return netip.PrefixFrom(netip.AddrFrom16(b), 64)
}

// yggHostAddr is the spec's host address in the node's subnet for input:
// the subnet's 8 bytes followed by the first 8 bytes of SHA-512(input).
func yggHostAddr(sub netip.Prefix, input []byte) netip.Prefix {
	b := sub.Addr().As16()
	h := sha512.Sum512(input)
	copy(b[8:], h[:8])
	return netip.PrefixFrom(netip.AddrFrom16(b), 64)
}

// addYgg gives the link (in the calling thread's namespace) its yggdrasil
// address for mac and the route to 200::/7 through the node's gateway.
func addYgg(l netlink.Link, sub netip.Prefix, mac net.HardwareAddr) (netip.Prefix, error) {
	addr := yggHostAddr(sub, mac)
	if err := ensureAddrs(l, []netip.Prefix{addr}, false); err != nil {
		return netip.Prefix{}, err
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return netip.Prefix{}, err
	}
	return addr, replaceRoute(l, yggNet, yggGateway(sub).Addr())
}
