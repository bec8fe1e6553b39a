package zosd

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/identity"
	"github.com/zos-go/zos/pkg/provision"
)

type nopReporter struct{}

func (nopReporter) Report(context.Context, *gridtypes.Result) error { return nil }

// benchAgent is an agent with only its store, engine and identity: the
// local API over a real unix socket on a bolt store of n workloads.
func benchAgent(b *testing.B, n int) (*Agent, string) {
	dir := b.TempDir()
	store, err := provision.OpenBolt(filepath.Join(dir, "provision.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	seed, _ := identity.GenerateSeed()
	kp := identity.NewKeyPair(seed)
	for i := range n {
		var w gridtypes.Workload = &gridtypes.Volume{Size: 1, Type: gridtypes.DiskSSD}
		if i%2 == 1 {
			w = &gridtypes.Container{Flist: "http://hub/x.fl", Capacity: gridtypes.ContainerCapacity{CPU: 1, Memory: 256}}
		}
		r, err := gridtypes.NewReservation(kp.ID(), 7, w, time.Now(), time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		r.ID = uint64(i + 1)
		res, _ := gridtypes.NewResult(r, gridtypes.StateOK, "", gridtypes.VolumeResult{VolumeID: r.GWID()}, time.Now())
		res.Sign(ed25519.PrivateKey(kp.PrivateKey()))
		if err := store.Put(&provision.Record{Reservation: r, Name: r.GWID(), State: provision.StateDeployed, Result: res, Reported: true}); err != nil {
			b.Fatal(err)
		}
	}
	id, _ := identity.New(identity.DefaultConfig(), kp, slog.New(slog.DiscardHandler))
	a := &Agent{cfg: DefaultConfig(), log: slog.New(slog.DiscardHandler), nm: newNodeMetrics(), id: id, store: store}
	a.cfg.API = filepath.Join(dir, "zosd.sock")
	cfg := provision.DefaultConfig()
	cfg.NodeID, cfg.Key, cfg.VerifySignatures = kp.ID(), ed25519.PrivateKey(kp.PrivateKey()), false
	a.engine, err = provision.New(cfg, store, nil, nil, provision.NodeSecrets{Identity: id}, nopReporter{}, a.log)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- a.serveAPI(ctx) }()
	go func() { done <- a.engine.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done; <-done })
	for !a.engine.Recovered() {
		time.Sleep(time.Millisecond)
	}
	if used, _ := a.engine.Used(); used.CRU != 500 || used.SRU < 500*gridtypes.GiB {
		b.Fatalf("used %v: the engine does not account the stored workloads", used)
	}
	return a, a.cfg.API
}

func latencies(b *testing.B, hc *http.Client, path string, n int) []time.Duration {
	var out []time.Duration
	for range n {
		start := time.Now()
		resp, err := hc.Get("http://zosd" + path)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: %s", path, resp.Status)
		}
		out = append(out, time.Since(start))
	}
	slices.Sort(out)
	return out
}

func p(ls []time.Duration, q float64) float64 {
	return float64(ls[int(q*float64(len(ls)-1))]) / float64(time.Millisecond)
}

// BenchmarkRowStatusAPI measures GET /status (capacity computed from the
// store) on a node with 1,000 workloads, over the local API's unix socket.
// The baseline is GET /workloads/1, one record over the same socket.
func BenchmarkRowStatusAPI(b *testing.B) {
	_, sock := benchAgent(b, 1000)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		for range 100 {
			c, err := d.DialContext(ctx, "unix", sock)
			if err == nil {
				return c, nil
			}
			time.Sleep(10 * time.Millisecond)
		}
		return nil, fmt.Errorf("no socket %s", sock)
	}}}
	for b.Loop() {
		status := latencies(b, hc, "/status", 200)
		one := latencies(b, hc, "/workloads/1", 200)
		b.ReportMetric(p(status, 0.5), "status-p50-ms")
		b.ReportMetric(p(status, 0.99), "status-p99-ms")
		b.ReportMetric(p(one, 0.5), "baseline-status-p50-ms")
		b.ReportMetric(p(one, 0.99), "baseline-status-p99-ms")
	}
}
