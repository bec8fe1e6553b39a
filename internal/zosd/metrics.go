package zosd

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/provision"
)

// nodeMetrics holds what the engine feeds; the rest is read at scrape time.
type nodeMetrics struct {
	latency  *prometheus.HistogramVec
	failures *prometheus.CounterVec
}

func newNodeMetrics() *nodeMetrics {
	return &nodeMetrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "zos_provision_latency_seconds",
			Help:    "Time from receiving a reservation to its deployment.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 16),
		}, []string{"type"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "zos_provision_failures_total",
			Help: "Reservations that failed for good.",
		}, []string{"type"}),
	}
}

// observe is the engine's Observe hook.
func (m *nodeMetrics) observe(t gridtypes.WorkloadType, s provision.State, d time.Duration) {
	switch s {
	case provision.StateDeployed:
		m.latency.WithLabelValues(string(t)).Observe(d.Seconds())
	case provision.StateFailed:
		m.failures.WithLabelValues(string(t)).Inc()
	}
}

var (
	capacityDesc = prometheus.NewDesc("zos_capacity", "Node capacity by kind (total, system, used) and unit (bytes for memory and disks).",
		[]string{"kind", "unit"}, nil)
	workloadsDesc = prometheus.NewDesc("zos_workloads", "Workloads on the node by type and state.",
		[]string{"type", "state"}, nil)
)

// collector reads capacity and workloads from the store at scrape time.
type collector struct{ a *Agent }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- capacityDesc
	ch <- workloadsDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	if c.a.engine == nil {
		return
	}
	if rep, err := c.a.capacityReport(); err == nil {
		for kind, v := range map[string]gridtypes.Capacity{"total": rep.Total, "system": rep.System, "used": rep.Used} {
			for unit, n := range map[string]uint64{"cru": v.CRU, "mru": v.MRU, "sru": v.SRU, "hru": v.HRU, "ipv4u": v.IPV4U} {
				ch <- prometheus.MustNewConstMetric(capacityDesc, prometheus.GaugeValue, float64(n), kind, unit)
			}
		}
	}
	for t, byState := range c.a.engine.Counts() {
		for st, n := range byState {
			ch <- prometheus.MustNewConstMetric(workloadsDesc, prometheus.GaugeValue, float64(n), string(t), string(st))
		}
	}
}

func (a *Agent) metrics() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collector{a}, a.nm.latency, a.nm.failures)
	return reg
}
