package explorer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/explorer"
	"github.com/zos-go/zos/pkg/gridtypes"
)

// childEnv carries the configuration of a NATS server run by this test
// binary as a child process (so that a test can kill -9 it).
const childEnv = "ZOS_EXPLORER_TEST_NATS_SERVER"

type childConfig struct {
	Name, StoreDir, Explorer, Issuer string
	ClientPort, ClusterPort          int
	Routes                           []string
}

func TestMain(m *testing.M) {
	if c := os.Getenv(childEnv); c != "" {
		os.Exit(runChildServer(c))
	}
	if c := os.Getenv(explorerChildEnv); c != "" {
		os.Exit(runChildExplorer(c))
	}
	os.Exit(m.Run())
}

func runChildServer(c string) int {
	var cfg childConfig
	if err := json.Unmarshal([]byte(c), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	o, err := ServerOptions(cfg.Name, cfg.StoreDir, net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.ClientPort)), cfg.Explorer, cfg.Issuer)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	o.Cluster.Name = "zos-test"
	o.Cluster.Host = "127.0.0.1"
	o.Cluster.Port = cfg.ClusterPort
	for _, r := range cfg.Routes {
		u, _ := url.Parse(r)
		o.Routes = append(o.Routes, u)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := StartServer(context.Background(), o, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	s.Shutdown()
	return 0
}

// startCluster runs 3 NATS servers as child processes and returns their
// client URLs and processes.
func startCluster(t *testing.T, explorerPub, issuerPub string) ([]string, []*testutil.Process) {
	dir := testutil.TempDir(t)
	var clientPorts, clusterPorts []int
	for range 3 {
		clientPorts = append(clientPorts, testutil.FreePort(t))
		clusterPorts = append(clusterPorts, testutil.FreePort(t))
	}
	var urls []string
	var procs []*testutil.Process
	for i := range 3 {
		var routes []string
		for j := range 3 {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", clusterPorts[j]))
			}
		}
		cfg, _ := json.Marshal(childConfig{Name: fmt.Sprintf("n%d", i), StoreDir: filepath.Join(dir, strconv.Itoa(i)),
			Explorer: explorerPub, Issuer: issuerPub, ClientPort: clientPorts[i], ClusterPort: clusterPorts[i], Routes: routes})
		procs = append(procs, testutil.StartProcess(t, func(c *exec.Cmd) {
			c.Env = append(os.Environ(), childEnv+"="+string(cfg))
		}, os.Args[0], "-test.run=^$"))
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]))
	}
	return urls, procs
}

// TestClusterSurvivesServerKill runs the explorer on a 3-server NATS
// cluster (JetStream replicas 3), kills one server with SIGKILL while
// reservations and results flow, and checks that every accepted
// reservation reached its node and every result was stored.
func TestClusterSurvivesServerKill(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test in -short mode")
	}
	userKP, _ := nkeys.CreateUser()
	issuerKP, _ := nkeys.CreateAccount()
	userSeed, _ := userKP.Seed()
	issuerSeed, _ := issuerKP.Seed()
	userPub, _ := userKP.PublicKey()
	issuerPub, _ := issuerKP.PublicKey()
	urls, procs := startCluster(t, userPub, issuerPub)

	r := startExplorer(t, testutil.TempDir(t), 0, func(c *Config) {
		c.NATS.URLs = urls
		c.NATS.UserSeed, c.NATS.IssuerSeed = string(userSeed), string(issuerSeed)
		c.NATS.Replicas = 3
	})
	ctx := context.Background()
	g := &grid{r: r}
	g.user, g.userSK = createUser(t, r.client, "alice")
	f := gridtypes.Farm{OwnerID: g.user, Name: "farm1", Created: time.Now().Unix()}
	f.Sign(g.userSK)
	var err error
	if g.farm, err = r.client.CreateFarm(ctx, f); err != nil {
		t.Fatal(err)
	}

	// Nodes answer every deployment with a result, like a real node.
	const nodes, total, killAt = 4, 240, 80
	type nodeState struct {
		c   *explorer.NodeClient
		mu  sync.Mutex
		got map[uint64]bool
	}
	var ns []*nodeState
	var wg sync.WaitGroup
	wctx, stopNodes := context.WithCancel(ctx)
	defer func() { stopNodes(); wg.Wait() }()
	for i := range nodes {
		sk := newKey(t)
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		c, err := explorer.ConnectNode(cctx, []string{urls[i%3]}, sk, testLog(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		if _, err := c.Register(cctx, explorer.Registration{FarmID: g.farm}); err != nil {
			t.Fatal(err)
		}
		if err := c.ReportCapacity(cctx, explorer.CapacityReport{Total: bigNode}); err != nil {
			t.Fatal(err)
		}
		cancel()
		n := &nodeState{c: c, got: map[uint64]bool{}}
		ns = append(ns, n)
		wg.Go(func() {
			_ = c.Watch(wctx, func(hctx context.Context, res *gridtypes.Reservation) error {
				result, err := gridtypes.NewResult(res, gridtypes.StateOK, "", gridtypes.VolumeResult{VolumeID: res.GWID()}, time.Now())
				if err != nil {
					return err
				}
				pctx, cancel := context.WithTimeout(hctx, 60*time.Second)
				defer cancel()
				if err := c.PostResult(pctx, result); err != nil {
					return err
				}
				n.mu.Lock()
				n.got[res.ID] = true
				n.mu.Unlock()
				return nil
			})
		})
	}

	accepted := map[uint64]string{} // id → node
	for i := range total {
		if i == killAt {
			procs[1].Kill()
			t.Logf("killed nats server n1 after %d reservations", i)
		}
		node := ns[i%nodes].c.NodeID()
		res := g.reservation(t, node, volume(1))
		id := createWithRetry(t, r.client, res)
		accepted[id] = node
	}

	// Every accepted reservation reaches its node and its result is stored.
	testutil.WaitFor(t, 120*time.Second, "all results stored", func() error {
		for id := range accepted {
			res, err := r.client.Reservation(ctx, id)
			if err != nil {
				return err
			}
			if res.Result == nil || res.Result.State != gridtypes.StateOK {
				return fmt.Errorf("reservation %d has no result yet", id)
			}
		}
		return nil
	})
	for id, node := range accepted {
		for _, n := range ns {
			if n.c.NodeID() != node {
				continue
			}
			n.mu.Lock()
			ok := n.got[id]
			n.mu.Unlock()
			if !ok {
				t.Errorf("node %s never received %d", node, id)
			}
		}
	}
	rs, err := r.client.Reservations(ctx, explorer.ReservationQuery{UserID: g.user})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != total || len(accepted) != total {
		t.Fatalf("%d stored, %d accepted, want %d", len(rs), len(accepted), total)
	}
}

// createWithRetry submits res until the explorer has it: an unavailable
// cluster is retried, a replay means an earlier attempt got through.
func createWithRetry(t *testing.T, c *explorer.Client, res *gridtypes.Reservation) uint64 {
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		id, err := c.CreateReservation(ctx, res)
		cancel()
		switch {
		case err == nil:
			return id
		case errors.Is(err, explorer.ErrReplay) && id != 0:
			return id
		case time.Now().After(deadline):
			t.Fatalf("reservation never accepted: %v", err)
		case errors.Is(err, explorer.ErrUnavailable), errors.Is(err, explorer.ErrReplay), errors.Is(err, explorer.ErrInternal):
			time.Sleep(200 * time.Millisecond)
		default:
			t.Fatalf("create: %v", err)
		}
	}
}
