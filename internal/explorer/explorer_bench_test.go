package explorer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/explorer"
	"github.com/zos-go/zos/pkg/gridtypes"
)

// benchExplorer starts an explorer whose NATS keys the benchmark knows, and
// returns a full-permission in-process JetStream client for the baseline.
func benchExplorer(b *testing.B) (*running, jetstream.JetStream) {
	userKP, _ := nkeys.CreateUser()
	issuerKP, _ := nkeys.CreateAccount()
	us, _ := userKP.Seed()
	is, _ := issuerKP.Seed()
	r := startExplorer(b, testutil.TempDir(b), 0, func(c *Config) {
		c.NATS.UserSeed, c.NATS.IssuerSeed = string(us), string(is)
		c.Workers = 32
	})
	pub, _ := userKP.PublicKey()
	nc, err := nats.Connect("", nats.InProcessServer(r.x.srv), nats.Nkey(pub, userKP.Sign))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	return r, js
}

// signedBatch pre-signs n volume reservations spread over the nodes, so
// that signing (a client cost) is not measured.
func signedBatch(b *testing.B, g *grid, nodes []string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range n {
		res := g.reservation(b, nodes[i%len(nodes)], volume(1))
		out[i], _ = json.Marshal(res)
	}
	return out
}

// runConcurrent calls fn(i) for i in [0, n) from workers goroutines and
// returns the elapsed time; the first error fails the benchmark.
func runConcurrent(b *testing.B, n, workers int, fn func(i int) error) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		b.Fatal(first)
	}
	return time.Since(start)
}

// BenchmarkRowReservationsAccepted measures signed reservations accepted
// per second over HTTP (decode, validate, verify the signature, replay
// guard, capacity compare-and-set, store, publish to the node's durable
// consumer) by 32 concurrent clients, over 50 registered nodes that do not
// consume during the run (delivery is asynchronous; see
// BenchmarkAcceptWhileNodesConsume for the whole system on one machine).
// Baseline: the same payloads published raw to a JetStream file stream
// with publish acks by 32 goroutines, i.e. the cost of durably storing
// them once with none of the explorer's work; the ratio is the explorer's
// overhead.
func BenchmarkRowReservationsAccepted(b *testing.B) {
	acceptBench(b, false)
}

// BenchmarkAcceptWhileNodesConsume is BenchmarkRowReservationsAccepted
// with the 50 nodes consuming and acknowledging their deliveries during
// the run, on the same machine.
func BenchmarkAcceptWhileNodesConsume(b *testing.B) {
	acceptBench(b, true)
}

func acceptBench(b *testing.B, consume bool) {
	const n, workers, nodes = 3000, 32, 50
	r, js := benchExplorer(b)
	g := newGrid(b, r, 0, bigNode)
	var ids []string
	for range nodes {
		node := g.addIdleNode(b, newKey(b), bigNode)
		if consume {
			node.watch(b)
		}
		ids = append(ids, node.id())
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BASELINE", Subjects: []string{"baseline.>"},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute}); err != nil {
		b.Fatal(err)
	}
	var ours, base time.Duration
	round := 0
	for b.Loop() {
		round++
		bodies := signedBatch(b, g, ids, n)
		ours = runConcurrent(b, n, workers, func(i int) error {
			_, err := r.client.CreateReservationJSON(ctx, bodies[i])
			return err
		})
		base = runConcurrent(b, n, workers, func(i int) error {
			m := nats.NewMsg("baseline." + ids[i%nodes])
			m.Data = bodies[i]
			m.Header.Set(explorer.MsgIDHeader, fmt.Sprint(round, "-", i))
			_, err := js.PublishMsg(ctx, m)
			return err
		})
	}
	b.ReportMetric(float64(n)/ours.Seconds(), "reservations/s")
	b.ReportMetric(float64(n)/base.Seconds(), "baseline-reservations/s")
}

// BenchmarkRowDeliveryLatency measures, with 1,000 simulated nodes
// connected (each its own NATS connection, authenticated through the auth
// callout, pulling from its durable consumer), the time from a client
// submitting a signed reservation to the explorer until the node's handler
// has it: p50 and p99 over 2,000 reservations paced at 400/s. Baseline:
// the same payloads published raw on the nodes' delivery subjects
// (JetStream publish with ack) and received by the same 1,000 consumers,
// measured the same way; the ratio is what the explorer's HTTP API,
// checks and storage add to the delivery path.
func BenchmarkRowDeliveryLatency(b *testing.B) {
	const nodes, n, rate = 1000, 2000, 400
	r, js := benchExplorer(b)
	g := newGrid(b, r, 0, bigNode)
	var mu sync.Mutex
	recv := map[uint64]time.Time{} // guarded by mu; first receipt of each id
	onReceive := func(id uint64) {
		now := time.Now()
		mu.Lock()
		if _, ok := recv[id]; !ok {
			recv[id] = now
		}
		mu.Unlock()
	}
	ns := addNodesParallel(b, g, nodes, onReceive)
	ctx := context.Background()

	// measure sends n payloads paced at rate; send returns the id and the
	// time the submission started. Latency = first receipt - start.
	measure := func(send func(i int) (uint64, time.Time, error)) (p50, p99 float64) {
		sent := make(map[uint64]time.Time, n)
		var smu sync.Mutex
		tick := time.NewTicker(time.Second / rate)
		defer tick.Stop()
		var wg sync.WaitGroup
		for i := range n {
			<-tick.C
			wg.Go(func() {
				id, t0, err := send(i)
				if err != nil {
					b.Error(err)
					return
				}
				smu.Lock()
				sent[id] = t0
				smu.Unlock()
			})
		}
		wg.Wait()
		var lat []time.Duration
		testutil.WaitFor(b, 60*time.Second, "all deliveries", func() error {
			lat = lat[:0]
			mu.Lock()
			defer mu.Unlock()
			for id, t0 := range sent {
				t1, ok := recv[id]
				if !ok {
					return fmt.Errorf("reservation %d not delivered", id)
				}
				lat = append(lat, t1.Sub(t0))
			}
			return nil
		})
		slices.Sort(lat)
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		return ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100])
	}

	var p50, p99, bp50, bp99 float64
	var baseID atomic.Uint64
	baseID.Store(1 << 40)
	for b.Loop() {
		bodies := signedBatch(b, g, ns, n)
		p50, p99 = measure(func(i int) (uint64, time.Time, error) {
			t0 := time.Now()
			id, err := r.client.CreateReservationJSON(ctx, bodies[i])
			return id, t0, err
		})
		bp50, bp99 = measure(func(i int) (uint64, time.Time, error) {
			res, err := gridtypes.Decode(bodies[i])
			if err != nil {
				return 0, time.Time{}, err
			}
			res.ID, res.NextAction = baseID.Add(1), gridtypes.ActionDeploy
			payload, _ := json.Marshal(res)
			m := nats.NewMsg(explorer.DeliverySubject(res.NodeID))
			m.Data = payload
			t0 := time.Now()
			_, err = js.PublishMsg(ctx, m)
			return res.ID, t0, err
		})
	}
	b.ReportMetric(p50, "p50-ms")
	b.ReportMetric(p99, "p99-ms")
	b.ReportMetric(bp50, "baseline-p50-ms")
	b.ReportMetric(bp99, "baseline-p99-ms")
}

// addNodesParallel connects and registers count nodes whose handler calls
// onReceive with each reservation id, and returns their ids.
func addNodesParallel(b *testing.B, g *grid, count int, onReceive func(uint64)) []string {
	ids := make([]string, count)
	errs := make(chan error, count)
	runConcurrent(b, count, 16, func(i int) error {
		sk := newKey(b)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		c, err := explorer.ConnectNode(ctx, []string{g.r.x.NATSURL()}, sk, testLog(b))
		if err != nil {
			return err
		}
		b.Cleanup(c.Close)
		if _, err := c.Register(ctx, explorer.Registration{FarmID: g.farm}); err != nil {
			return err
		}
		if err := c.ReportCapacity(ctx, explorer.CapacityReport{Total: bigNode}); err != nil {
			return err
		}
		wctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := c.Watch(wctx, func(_ context.Context, r *gridtypes.Reservation) error {
				onReceive(r.ID)
				return nil
			}); err != nil && !errors.Is(err, context.Canceled) {
				errs <- err
			}
		}()
		b.Cleanup(func() { stop(); <-done })
		ids[i] = c.NodeID()
		return nil
	})
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	return ids
}
