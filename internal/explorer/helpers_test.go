package explorer

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/explorer"
	"github.com/zos-go/zos/pkg/gridtypes"
)

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func newKey(t testing.TB) ed25519.PrivateKey {
	_, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

// running is an explorer started by a test.
type running struct {
	x      *Explorer
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // what Run returned
	client *explorer.Client
}

func (r *running) stop(t testing.TB) {
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("explorer run: %v", r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("explorer did not stop")
	}
}

// startExplorer runs an explorer with an embedded NATS server in dir,
// listening for nodes on natsPort (0: any).
func startExplorer(t testing.TB, dir string, natsPort int, mod func(*Config)) *running {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.NATS.DataDir = dir
	cfg.NATS.Listen = net.JoinHostPort("127.0.0.1", strconv.Itoa(natsPort))
	cfg.AckWait = 2 * time.Second
	if mod != nil {
		mod(&cfg)
	}
	x, err := New(cfg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{x: x, cancel: cancel, done: make(chan struct{})}
	go func() { r.err = x.Run(ctx); close(r.done) }()
	select {
	case <-x.Ready():
	case <-r.done:
		cancel()
		t.Fatalf("explorer: %v", r.err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("explorer not ready")
	}
	t.Cleanup(func() { r.stop(t) })
	r.client = explorer.NewClient("http://"+x.HTTPAddr(), nil)
	return r
}

// grid is a user, a farm and nodes registered on an explorer.
type grid struct {
	r      *running
	user   uint64
	userSK ed25519.PrivateKey
	farm   uint64
	nodes  []*testNode
}

// testNode is a node connected to the explorer that records what it
// receives and can answer with results.
type testNode struct {
	sk     ed25519.PrivateKey
	c      *explorer.NodeClient
	mu     sync.Mutex
	got    []*gridtypes.Reservation // guarded by mu
	cancel context.CancelFunc
	done   chan struct{}
}

func (n *testNode) id() string { return n.c.NodeID() }

func (n *testNode) received() []*gridtypes.Reservation {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*gridtypes.Reservation(nil), n.got...)
}

// waitReceived waits until the node got reservation id with action.
func (n *testNode) waitReceived(t testing.TB, id uint64, action gridtypes.NextAction) *gridtypes.Reservation {
	t.Helper()
	var found *gridtypes.Reservation
	testutil.WaitFor(t, 20*time.Second, fmt.Sprintf("node receives %d %s", id, action), func() error {
		for _, r := range n.received() {
			if r.ID == id && r.NextAction == action {
				found = r
				return nil
			}
		}
		return errors.New("not yet")
	})
	return found
}

func createUser(t testing.TB, c *explorer.Client, name string) (uint64, ed25519.PrivateKey) {
	t.Helper()
	sk := newKey(t)
	u := gridtypes.User{Name: name, PublicKey: hex.EncodeToString(sk.Public().(ed25519.PublicKey)), Created: time.Now().Unix()}
	u.Sign(sk)
	id, err := c.CreateUser(context.Background(), u)
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	return id, sk
}

func newGrid(t testing.TB, r *running, nodes int, total gridtypes.Capacity) *grid {
	t.Helper()
	ctx := context.Background()
	g := &grid{r: r}
	g.user, g.userSK = createUser(t, r.client, "alice")
	f := gridtypes.Farm{OwnerID: g.user, Name: "farm1", Created: time.Now().Unix(),
		IPAddresses: []gridtypes.FarmIP{{Address: "185.69.166.7/24", Gateway: "185.69.166.1"}}}
	f.Sign(g.userSK)
	var err error
	if g.farm, err = r.client.CreateFarm(ctx, f); err != nil {
		t.Fatalf("create farm: %v", err)
	}
	for range nodes {
		g.nodes = append(g.nodes, g.addNode(t, newKey(t), total))
	}
	return g
}

// addNode connects, registers and reports capacity for a node with key sk,
// and starts watching its deliveries.
func (g *grid) addNode(t testing.TB, sk ed25519.PrivateKey, total gridtypes.Capacity) *testNode {
	n := g.addIdleNode(t, sk, total)
	n.watch(t)
	return n
}

// addIdleNode is addNode without watching the deliveries.
func (g *grid) addIdleNode(t testing.TB, sk ed25519.PrivateKey, total gridtypes.Capacity) *testNode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := explorer.ConnectNode(ctx, []string{g.r.x.NATSURL()}, sk, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if _, err := c.Register(ctx, explorer.Registration{FarmID: g.farm, Hostname: "n"}); err != nil {
		t.Fatalf("register: %v", err)
	}
	if err := c.ReportCapacity(ctx, explorer.CapacityReport{Total: total}); err != nil {
		t.Fatalf("capacity: %v", err)
	}
	return &testNode{sk: sk, c: c}
}

func (n *testNode) watch(t testing.TB) {
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel, n.done = cancel, make(chan struct{})
	go func() {
		defer close(n.done)
		_ = n.c.Watch(ctx, func(_ context.Context, r *gridtypes.Reservation) error {
			n.mu.Lock()
			n.got = append(n.got, r)
			n.mu.Unlock()
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-n.done })
}

var reservationSeq atomic.Uint64

var bigNode = gridtypes.Capacity{CRU: 64, MRU: 256 * gridtypes.GiB, SRU: 4096 * gridtypes.GiB, HRU: 4096 * gridtypes.GiB, IPV4U: 8}

func (g *grid) reservation(t testing.TB, node string, w gridtypes.Workload) *gridtypes.Reservation {
	t.Helper()
	r, err := gridtypes.NewReservation(node, g.user, w, time.Now(), 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// Two equal requests signed in the same second are one request (a
	// replay): make each one distinct.
	r.Description = "test " + strconv.FormatUint(reservationSeq.Add(1), 10)
	if err := r.Sign(g.userSK); err != nil {
		t.Fatal(err)
	}
	return r
}

func (g *grid) deploy(t testing.TB, node string, w gridtypes.Workload) uint64 {
	t.Helper()
	id, err := g.r.client.CreateReservation(context.Background(), g.reservation(t, node, w))
	if err != nil {
		t.Fatalf("create reservation: %v", err)
	}
	return id
}

func (g *grid) deleteSig(t testing.TB, r *gridtypes.Reservation) gridtypes.Signature {
	t.Helper()
	s, err := r.SignAction(gridtypes.SignDelete, g.user, g.userSK, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (n *testNode) result(t testing.TB, r *gridtypes.Reservation, state gridtypes.ResultState, data any) {
	t.Helper()
	res, err := gridtypes.NewResult(r, state, "", data, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.c.PostResult(ctx, res); err != nil {
		t.Fatalf("post result: %v", err)
	}
}

func volume(gib uint64) *gridtypes.Volume {
	return &gridtypes.Volume{Size: gib, Type: gridtypes.DiskSSD}
}
