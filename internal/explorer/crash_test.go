package explorer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/explorer"
	"github.com/zos-go/zos/pkg/gridtypes"
)

// explorerChildEnv carries the configuration of an explorer run by this test
// binary as a child process, so that a test can kill -9 it.
const explorerChildEnv = "ZOS_EXPLORER_TEST_EXPLORER"

type explorerChild struct {
	DataDir            string
	HTTPPort, NATSPort int
}

func runChildExplorer(c string) int {
	var cfg explorerChild
	if err := json.Unmarshal([]byte(c), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	conf := DefaultConfig()
	conf.Listen = fmt.Sprintf("127.0.0.1:%d", cfg.HTTPPort)
	conf.NATS.DataDir = cfg.DataDir
	conf.NATS.Listen = fmt.Sprintf("127.0.0.1:%d", cfg.NATSPort)
	conf.AckWait = 2 * time.Second
	x, err := New(conf, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := x.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func startChildExplorer(t *testing.T, cfg explorerChild) *testutil.Process {
	b, _ := json.Marshal(cfg)
	p := testutil.StartProcess(t, func(c *exec.Cmd) {
		c.Env = append(os.Environ(), explorerChildEnv+"="+string(b))
	}, os.Args[0], "-test.run=^$")
	testutil.WaitFor(t, 60*time.Second, "child explorer serving", func() error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", cfg.HTTPPort))
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	return p
}

// TestExplorerKill9LosesNothing kills the explorer process (embedded NATS
// included) with SIGKILL while reservations are being submitted, starts it
// again on the same data directory, and checks that every reservation it
// had accepted is still there and reaches its node.
func TestExplorerKill9LosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test in -short mode")
	}
	cfg := explorerChild{DataDir: testutil.TempDir(t), HTTPPort: testutil.FreePort(t), NATSPort: testutil.FreePort(t)}
	p := startChildExplorer(t, cfg)
	client := explorer.NewClient(fmt.Sprintf("http://127.0.0.1:%d", cfg.HTTPPort), &http.Client{Timeout: 10 * time.Second})
	r := &running{client: client}
	ctx := context.Background()
	g := &grid{r: r}
	g.user, g.userSK = createUser(t, client, "alice")
	f := gridtypes.Farm{OwnerID: g.user, Name: "farm1", Created: time.Now().Unix()}
	f.Sign(g.userSK)
	var err error
	if g.farm, err = client.CreateFarm(ctx, f); err != nil {
		t.Fatal(err)
	}
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", cfg.NATSPort)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sk := newKey(t)
	c, err := explorer.ConnectNode(cctx, []string{natsURL}, sk, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Register(cctx, explorer.Registration{FarmID: g.farm}); err != nil {
		t.Fatal(err)
	}
	if err := c.ReportCapacity(cctx, explorer.CapacityReport{Total: bigNode}); err != nil {
		t.Fatal(err)
	}
	node := &testNode{sk: sk, c: c}
	node.watch(t)

	// Four clients submit until the explorer dies under them.
	var mu sync.Mutex
	var accepted []uint64
	var wg sync.WaitGroup
	dead := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-dead:
					return
				default:
				}
				id, err := client.CreateReservation(ctx, g.reservation(t, c.NodeID(), volume(1)))
				if err == nil {
					mu.Lock()
					accepted = append(accepted, id)
					mu.Unlock()
				}
			}
		})
	}
	testutil.WaitFor(t, 60*time.Second, "100 reservations accepted", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(accepted) < 100 {
			return errors.New("not yet")
		}
		return nil
	})
	p.Kill()
	close(dead)
	wg.Wait()
	_ = p.Wait()
	t.Logf("killed the explorer after %d accepted reservations", len(accepted))

	startChildExplorer(t, cfg)
	for _, id := range accepted {
		res, err := client.Reservation(ctx, id)
		if err != nil {
			t.Fatalf("accepted reservation %d lost: %v", id, err)
		}
		if res.NextAction != gridtypes.ActionDeploy {
			t.Fatalf("reservation %d is %s", id, res.NextAction)
		}
	}
	// The node reconnects by itself and gets every one of them.
	testutil.WaitFor(t, 60*time.Second, "all accepted reservations delivered", func() error {
		got := map[uint64]bool{}
		for _, r := range node.received() {
			got[r.ID] = true
		}
		for _, id := range accepted {
			if !got[id] {
				return fmt.Errorf("reservation %d not delivered", id)
			}
		}
		return nil
	})
	// Capacity held matches what is stored.
	stored, err := client.Reservations(ctx, explorer.ReservationQuery{NodeID: c.NodeID()})
	if err != nil {
		t.Fatal(err)
	}
	n, err := client.Node(ctx, c.NodeID())
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(len(stored)) * gridtypes.GiB; n.ReservedResources.SRU != want {
		t.Fatalf("reserved %d bytes for %d stored reservations", n.ReservedResources.SRU, len(stored))
	}
}
