package network_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/zos-go/zos/internal/netns"
	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/network"
	"github.com/zos-go/zos/pkg/network/networktest"
)

// linkExists reports whether link name exists in namespace ns.
func linkExists(ns, name string) (bool, error) {
	var ok bool
	err := netns.Do(ns, func() error {
		_, err := netlink.LinkByName(name)
		ok = err == nil
		return nil
	})
	return ok, err
}

// agentSpec is what the agent process ("<test binary> zosd <file>") runs:
// a node's module, its network resources and containers.
type agentSpec struct {
	Config     network.Config
	ServiceDir string
	NRs        []pkg.NetResource
	Joins      []agentJoin
	ReadyFile  string
}

type agentJoin struct {
	NetID     pkg.NetID
	Container string
	IP        string
}

// agentMain plays zosd for the kill -9 test: it runs the module, applies
// the resources, joins the containers whose namespace does not exist yet,
// writes ReadyFile and serves until killed.
func agentMain(args []string) int {
	b, err := os.ReadFile(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var s agentSpec
	if err := json.Unmarshal(b, &s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	m, err := network.New(s.Config, networktest.PlainIdentity{}, network.ProcessSupervisor{Dir: s.ServiceDir}, log)
	if err != nil {
		log.Error("new", "err", err)
		return 1
	}
	ctx := context.Background()
	errc := make(chan error, 1)
	go func() { errc <- m.Run(ctx) }()
	for m.Ready() != nil {
		select {
		case err := <-errc:
			log.Error("run", "err", err)
			return 1
		case <-time.After(20 * time.Millisecond):
		}
	}
	for _, nr := range s.NRs {
		if _, err := m.CreateNR(nr); err != nil {
			log.Error("create", "err", err)
			return 1
		}
	}
	for _, j := range s.Joins {
		if netns.Exists(s.Config.NamePrefix + j.Container) {
			continue
		}
		if _, err := m.Join(j.NetID, j.Container, pkg.ContainerNetworkConfig{IPs: []string{j.IP}}); err != nil {
			log.Error("join", "err", err)
			return 1
		}
	}
	if err := os.WriteFile(s.ReadyFile, []byte("ready"), 0o600); err != nil {
		return 1
	}
	return map[bool]int{true: 1}[(<-errc) != nil]
}

// handshakeSettle is how old the last WireGuard handshake must be before
// TestAgentKill9 measures: REKEY_TIMEOUT (5 s) plus the largest retransmit
// jitter (1/3 s) plus a margin. wireguard-go arms its retransmit timer after
// sending an initiation, so when the response is handled first (likely on
// a busy machine with a 1 ms round trip) a spurious retransmission, and so
// a new handshake, follows 5 s later; and initiations that cross at start
// can cost a one-way stall healed by a new handshake after 15 s. Neither
// involves the agent; once the last handshake is older than this, no such
// handshake is pending and any new one during the test is the agent's doing.
const handshakeSettle = 6 * time.Second

// TestAgentKill9 kills the agent of node a with SIGKILL while a container on
// a pings one on b, restarts it, and checks that at most one second of
// pings was lost and that the restarted agent left the WireGuard process,
// its configuration, its peer and that peer's session as they were.
func TestAgentKill9(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t, "ip", "nft", "ping")
	g := newGrid(t, 2)
	a, b := g.nodes[0], g.nodes[1]
	id := pkg.NetID("Kill9net0001")
	for _, nd := range g.nodes {
		// Handshakes and timers in the device logs, shown on failure.
		nd.cfg.WGCommand = append(nd.cfg.WGCommand, "--verbose")
	}
	b.start()
	ra, rb := pair(a, b, id)
	if _, err := b.mod.CreateNR(rb); err != nil {
		t.Fatal(err)
	}
	if _, err := b.mod.Join(id, "cb", pkg.ContainerNetworkConfig{IPs: []string{"10.20.2.5"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.mod.Leave(id, "cb") })

	dir := testutil.TempDir(t)
	spec := agentSpec{Config: a.cfg, ServiceDir: a.sup.Dir, NRs: []pkg.NetResource{ra},
		Joins: []agentJoin{{id, "ca", "10.20.1.5"}}, ReadyFile: filepath.Join(dir, "ready")}
	specFile := filepath.Join(dir, "spec.json")
	js, _ := json.Marshal(spec)
	if err := os.WriteFile(specFile, js, 0o600); err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	startAgent := func() *testutil.Process {
		_ = os.Remove(spec.ReadyFile)
		p := testutil.StartProcess(t, nil, exe, "zosd", specFile)
		testutil.WaitFor(t, 60*time.Second, "agent ready", func() error {
			if p.Exited() {
				t.Fatalf("agent exited: %s", p.Log())
			}
			_, err := os.Stat(spec.ReadyFile)
			return err
		})
		return p
	}
	t.Cleanup(func() {
		// Tear node a down with a module of its own once the agent is gone.
		m, err := network.New(a.cfg, networktest.PlainIdentity{}, a.sup, slog.New(slog.NewTextHandler(t.Output(), nil)))
		if err == nil {
			_ = netns.Delete(a.cfg.NamePrefix + "ca")
			err = m.Teardown(context.Background())
		}
		if err != nil {
			t.Errorf("teardown a: %v", err)
		}
	})
	wgName := a.cfg.NamePrefix + "wg@" + string(id)
	t.Cleanup(func() {
		if t.Failed() {
			for _, nd := range g.nodes {
				log := filepath.Join(nd.sup.Dir, nd.cfg.NamePrefix+"wg@"+string(id)+".log")
				data, err := os.ReadFile(log)
				t.Logf("node %d device log %s (%v):\n%s", nd.i, log, err, data)
			}
		}
	})
	agent := startAgent()
	nsA := a.cfg.NamePrefix + "ca"
	var before *wgtypes.Device
	var peerBefore wgtypes.Peer
	testutil.WaitFor(t, 60*time.Second, "a→b with a settled WireGuard session", func() error {
		if err := ping(nsA, "10.20.2.5", 1, time.Second); err != nil {
			return err
		}
		d, p, err := wgState(a, id, rb.WGPublicKey)
		if err != nil {
			return err
		}
		if age := time.Since(p.LastHandshakeTime); p.LastHandshakeTime.IsZero() || age < handshakeSettle {
			return fmt.Errorf("last handshake %v ago", age.Round(time.Millisecond))
		}
		before, peerBefore = d, p
		return nil
	})
	pidBefore := a.sup.Pid(wgName)
	if pidBefore == 0 {
		t.Fatalf("wireguard process of %s not running", id)
	}

	wait := pinger(t, nsA, "10.20.2.5", 6*time.Second)
	time.Sleep(time.Second)
	agent.Kill()
	time.Sleep(time.Second)
	agent = startAgent()
	sent, recv := wait()
	t.Logf("pings during kill -9 and restart: %d/%d answered", recv, sent)
	if sent-recv > 10 {
		t.Errorf("lost %d pings (%d sent) across kill -9; want at most 1 s (10)", sent-recv, sent)
	}
	if pid := a.sup.Pid(wgName); pid != pidBefore {
		t.Errorf("wireguard process changed across agent restart: %d → %d", pidBefore, pid)
	}
	after, peerAfter, err := wgState(a, id, rb.WGPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if after.PrivateKey != before.PrivateKey || after.ListenPort != before.ListenPort {
		t.Errorf("device key or port changed across restart: port %d → %d", before.ListenPort, after.ListenPort)
	}
	if !samePeerConfig(peerBefore, peerAfter) {
		t.Errorf("peer configuration changed across restart:\n%s\n→\n%s", dump(peerBefore), dump(peerAfter))
	}
	if !peerAfter.LastHandshakeTime.Equal(peerBefore.LastHandshakeTime) {
		t.Errorf("peer session reset by restart: %v → %v", peerBefore.LastHandshakeTime, peerAfter.LastHandshakeTime)
	}
	if err := ping(nsA, "10.20.2.5", 2, time.Second); err != nil {
		t.Error(err)
	}
	agent.Kill()
}

// wgState reads node nd's WireGuard device of network id and its peer key.
func wgState(nd *node, id pkg.NetID, key string) (*wgtypes.Device, wgtypes.Peer, error) {
	c, err := wgctrl.New()
	if err != nil {
		return nil, wgtypes.Peer{}, err
	}
	defer c.Close()
	d, err := c.Device(nd.cfg.NamePrefix + "w-" + string(id))
	if err != nil {
		return nil, wgtypes.Peer{}, err
	}
	for _, p := range d.Peers {
		if p.PublicKey.String() == key {
			return d, p, nil
		}
	}
	return nil, wgtypes.Peer{}, fmt.Errorf("device of %s has no peer %s", id, key)
}

// samePeerConfig compares what the agent configures on a peer.
func samePeerConfig(x, y wgtypes.Peer) bool {
	return x.PublicKey == y.PublicKey && x.PersistentKeepaliveInterval == y.PersistentKeepaliveInterval &&
		x.Endpoint.String() == y.Endpoint.String() && fmt.Sprint(x.AllowedIPs) == fmt.Sprint(y.AllowedIPs)
}
