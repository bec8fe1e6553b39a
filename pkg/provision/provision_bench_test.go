package provision_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/identity"
	"github.com/zos-go/zos/pkg/provision"
	"github.com/zos-go/zos/pkg/provision/primitives"
	"github.com/zos-go/zos/pkg/storage"
)

// benchNode is an engine on real btrfs (a loop disk) with a bolt store on
// disk, deploying volumes with the real provisioner.
type benchNode struct {
	node    identity.KeyPair
	user    ed25519.PrivateKey
	storage *storage.Module
	dir     string
}

type noUsers struct{ pk ed25519.PublicKey }

func (u noUsers) PublicKey(context.Context, uint64) (ed25519.PublicKey, error) { return u.pk, nil }

type nopReporter struct{}

func (nopReporter) Report(context.Context, *gridtypes.Result) error { return nil }

func newBenchNode(b *testing.B) *benchNode {
	testutil.RequireRoot(b, "mkfs.btrfs")
	dir := testutil.TempDir(b)
	cfg := storage.DefaultConfig()
	cfg.Root = dir
	cfg.Devices = []string{testutil.LoopDisk(b, 256<<30, false)}
	cfg.TypeProbe = storage.ProbeRotational
	cfg.LabelPrefix = testutil.Prefix()
	cfg.CacheSizeBytes = 64 << 20
	m, err := storage.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close(context.Background()) })
	if err := m.Scan(b.Context()); err != nil {
		b.Fatal(err)
	}
	seed, _ := identity.GenerateSeed()
	_, user, _ := ed25519.GenerateKey(nil)
	return &benchNode{node: identity.NewKeyPair(seed), user: user, storage: m, dir: dir}
}

// engine runs an engine on a fresh bolt store at path with workers.
// deployed, when set, gets each reservation's latency (received →
// deployed) as it is deployed.
func (n *benchNode) engine(b *testing.B, path string, workers int, deployed chan<- time.Duration) (*provision.Engine, chan provision.Delivery, func()) {
	store, err := provision.OpenBolt(path)
	if err != nil {
		b.Fatal(err)
	}
	cfg := provision.DefaultConfig()
	cfg.NodeID = n.node.ID()
	cfg.Key = ed25519.PrivateKey(n.node.PrivateKey())
	cfg.Workers = workers
	if deployed != nil {
		cfg.Observe = func(_ gridtypes.WorkloadType, st provision.State, lat time.Duration) {
			if st == provision.StateDeployed {
				deployed <- lat
			} else {
				b.Errorf("a volume ended %s", st)
				deployed <- lat
			}
		}
	}
	idm, _ := identity.New(identity.DefaultConfig(), n.node, slog.New(slog.DiscardHandler))
	users := noUsers{n.user.Public().(ed25519.PublicKey)}
	e, err := provision.New(cfg, store, map[gridtypes.WorkloadType]provision.Provisioner{
		gridtypes.TypeVolume: primitives.Volume{Storage: n.storage},
	}, users, provision.NodeSecrets{Identity: idm, Users: users}, nopReporter{}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	in := make(chan provision.Delivery)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = e.Run(ctx, chanSource(in)); close(done) }()
	return e, in, func() { cancel(); <-done; store.Close() }
}

type chanSource chan provision.Delivery

func (c chanSource) Run(ctx context.Context, out chan<- provision.Delivery) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case d := <-c:
			select {
			case out <- d:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

func (n *benchNode) volumes(b *testing.B, first uint64, count int) []*gridtypes.Reservation {
	var rs []*gridtypes.Reservation
	for i := range count {
		r, err := gridtypes.NewReservation(n.node.ID(), 7, &gridtypes.Volume{Size: 1, Type: gridtypes.DiskSSD}, time.Now(), time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		r.ID = first + uint64(i)
		r.NextAction = gridtypes.ActionDeploy
		_ = r.Sign(n.user)
		rs = append(rs, r)
	}
	return rs
}

// deployAll delivers rs (all at once, or one after the other waiting for
// each) and returns the total time and each reservation's latency
// (received → deployed), taken from the engine's Observe hook: polling the
// store for 100 records would cost more than what it measures.
func deployAll(b *testing.B, in chan provision.Delivery, deployed <-chan time.Duration, rs []*gridtypes.Reservation, serial bool) (time.Duration, []time.Duration) {
	var ls []time.Duration
	timeout := time.After(2 * time.Minute)
	wait := func(n int) {
		for range n {
			select {
			case l := <-deployed:
				ls = append(ls, l)
			case <-timeout:
				b.Fatalf("%d of %d reservations deployed", len(ls), len(rs))
			}
		}
	}
	start := time.Now()
	for _, r := range rs {
		in <- provision.Delivery{Reservation: r}
		if serial {
			wait(1)
		}
	}
	if !serial {
		wait(len(rs))
	}
	total := time.Since(start)
	slices.Sort(ls)
	return total, ls
}

func pct(ls []time.Duration, p float64) float64 {
	if len(ls) == 0 {
		return 0
	}
	return float64(ls[int(p*float64(len(ls)-1))]) / float64(time.Millisecond)
}

// BenchmarkRowVolumes100 deploys 100 independent volume reservations on real
// btrfs with a bolt store, concurrently (16 workers, delivered together) and,
// as the baseline, serialized (one worker, each waited for, as the original
// engine). Latency is received → deployed.
func BenchmarkRowVolumes100(b *testing.B) {
	n := newBenchNode(b)
	round := 0
	for b.Loop() {
		// Fresh stores and ids each round: known ids would be ignored.
		round++
		first := uint64(round) * 10_000
		deployed := make(chan time.Duration, 100)
		_, in, stop := n.engine(b, filepath.Join(n.dir, fmt.Sprintf("serial-%d.db", round)), 1, deployed)
		serial, sl := deployAll(b, in, deployed, n.volumes(b, first, 100), true)
		stop()
		_, in, stop = n.engine(b, filepath.Join(n.dir, fmt.Sprintf("conc-%d.db", round)), 16, deployed)
		conc, cl := deployAll(b, in, deployed, n.volumes(b, first+1000, 100), false)
		stop()
		b.StopTimer()
		for _, id := range []uint64{first, first + 1000} {
			for i := range uint64(100) {
				r := gridtypes.Reservation{ID: id + i}
				if err := n.storage.ReleaseFilesystem(r.GWID()); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StartTimer()
		b.ReportMetric(float64(conc)/float64(time.Millisecond), "ms-100-volumes")
		b.ReportMetric(float64(serial)/float64(time.Millisecond), "baseline-ms-100-volumes")
		b.ReportMetric(pct(cl, 0.5), "volume-p50-ms")
		b.ReportMetric(pct(cl, 0.99), "volume-p99-ms")
		b.ReportMetric(pct(sl, 0.5), "volume-serial-p50-ms")
		b.ReportMetric(pct(sl, 0.99), "volume-serial-p99-ms")
	}
}

// BenchmarkRowRestart100 restarts the engine over a store holding 100
// deployed volumes, as zosd does after a restart, and measures the time
// until every one is re-ensured on btrfs (ready). The baseline is opening
// the store and listing the records alone.
func BenchmarkRowRestart100(b *testing.B) {
	n := newBenchNode(b)
	path := filepath.Join(n.dir, "restart.db")
	deployed := make(chan time.Duration, 100)
	_, in, stop := n.engine(b, path, 16, deployed)
	deployAll(b, in, deployed, n.volumes(b, 1, 100), false)
	stop()
	for b.Loop() {
		start := time.Now()
		store, err := provision.OpenBolt(path)
		if err != nil {
			b.Fatal(err)
		}
		if recs, err := store.List(); err != nil || len(recs) != 100 {
			b.Fatalf("records %d %v", len(recs), err)
		}
		store.Close()
		base := time.Since(start)

		start = time.Now()
		e, _, stop := n.engine(b, path, 16, nil)
		for !e.Recovered() {
			time.Sleep(100 * time.Microsecond)
		}
		ready := time.Since(start)
		stop()
		b.ReportMetric(float64(ready)/float64(time.Millisecond), "ready-ms")
		b.ReportMetric(float64(base)/float64(time.Millisecond), "baseline-ready-ms")
	}
}
