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

// TestAgentKill9 kills the agent of node a with SIGKILL while a container on
// a pings one on b, restarts it, and checks that at most one second of
// pings was lost and that the restarted agent left the WireGuard process,
// its peers and the container namespace as they were.
func TestAgentKill9(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t, "ip", "nft", "ping")
	g := newGrid(t, 2)
	a, b := g.nodes[0], g.nodes[1]
	b.start()
	id := pkg.NetID("Kill9net0001")
	ra, rb := pair(a, b, id)
	if _, err := b.mod.CreateNR(rb); err != nil {
		t.Fatal(err)
	}
	mb, err := b.mod.Join(id, "cb", pkg.ContainerNetworkConfig{IPs: []string{"10.20.2.5"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.mod.Leave(id, "cb") })
	_ = mb

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
	agent := startAgent()
	nsA := a.cfg.NamePrefix + "ca"
	testutil.WaitFor(t, 20*time.Second, "a→b", func() error { return ping(nsA, "10.20.2.5", 1, time.Second) })
	wgName := a.cfg.NamePrefix + "wg@" + string(id)
	pidBefore := a.sup.Pid(wgName)
	peerBefore, _ := peerState(t, a, id, rb.WGPublicKey)
	if pidBefore == 0 || peerBefore.LastHandshakeTime.IsZero() {
		t.Fatalf("wireguard process %d, peer %+v", pidBefore, peerBefore)
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
	if p, _ := peerState(t, a, id, rb.WGPublicKey); !p.LastHandshakeTime.Equal(peerBefore.LastHandshakeTime) {
		t.Errorf("peer session reset by restart: %v → %v", peerBefore.LastHandshakeTime, p.LastHandshakeTime)
	}
	if err := ping(nsA, "10.20.2.5", 2, time.Second); err != nil {
		t.Error(err)
	}
	agent.Kill()
}
