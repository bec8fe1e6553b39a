// Package monitord streams the node's own statistics: the seed's SystemMonitor
// (memory, CPU, disk and NIC counters), HostMonitor (uptime) and
// VersionMonitor (the running software version).
//
// Every stream ticks at Config.Interval (2 s as the original), is unbuffered,
// has its own producer goroutine per subscriber and is closed when the
// subscriber's ctx ends. A sample that cannot be read is skipped, never sent
// half-filled. Units follow the original: memory in bytes, CPU times in
// cumulative seconds with Percent the busy share since the previous sample,
// disk and NIC counters cumulative, NIC rates in bytes per second over the
// whole seconds elapsed between samples (0 for an interface's first sample).
package monitord

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/net"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/types"
)

// Config configures the monitors.
type Config struct {
	// Interval between two samples of a stream.
	Interval time.Duration
}

// DefaultConfig returns the original's 2 s period.
func DefaultConfig() Config { return Config{Interval: 2 * time.Second} }

// Validate reports a configuration the monitors cannot run with.
func (c Config) Validate() error {
	if c.Interval <= 0 {
		return fmt.Errorf("monitord interval %v: must be positive", c.Interval)
	}
	return nil
}

// Source reads the raw counters. The Host implementation reads the running
// kernel; tests substitute their own.
type Source interface {
	Memory(ctx context.Context) (*mem.VirtualMemoryStat, error)
	// CPU returns the aggregate CPU times of all cores.
	CPU(ctx context.Context) (cpu.TimesStat, error)
	// Disks lists the block devices to report; called once per stream.
	Disks(ctx context.Context) ([]string, error)
	DiskCounters(ctx context.Context, names []string) (map[string]disk.IOCountersStat, error)
	NicCounters(ctx context.Context) ([]net.IOCountersStat, error)
	Uptime(ctx context.Context) (time.Duration, error)
}

// System implements pkg.SystemMonitor and pkg.HostMonitor.
type System struct {
	cfg Config
	src Source
	now func() time.Time
}

var (
	_ pkg.SystemMonitor = (*System)(nil)
	_ pkg.HostMonitor   = (*System)(nil)
)

// New returns monitors reading src. It starts nothing: each stream starts when
// subscribed.
func New(cfg Config, src Source) (*System, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if src == nil {
		return nil, errors.New("monitord: nil source")
	}
	return &System{cfg: cfg, src: src, now: time.Now}, nil
}

// stream runs sample at every tick and sends what it returns, until ctx ends.
// ok=false skips the tick.
func stream[T any](ctx context.Context, interval time.Duration, sample func() (T, bool)) <-chan T {
	ch := make(chan T)
	go func() {
		defer close(ch)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			v, ok := sample()
			if !ok {
				continue
			}
			select {
			case <-ctx.Done():
				return
			case ch <- v:
			}
		}
	}()
	return ch
}

// Memory streams the node's memory usage in bytes.
func (s *System) Memory(ctx context.Context) <-chan pkg.VirtualMemoryStat {
	return stream(ctx, s.cfg.Interval, func() (pkg.VirtualMemoryStat, bool) {
		m, err := s.src.Memory(ctx)
		if err != nil || m == nil {
			return pkg.VirtualMemoryStat{}, false
		}
		return pkg.VirtualMemoryStat(*m), true
	})
}

// CPU streams the aggregate CPU times with the busy percentage since the
// previous sample (the first sample's percentage is since boot).
func (s *System) CPU(ctx context.Context) <-chan pkg.TimesStat {
	var prev *cpu.TimesStat
	return stream(ctx, s.cfg.Interval, func() (pkg.TimesStat, bool) {
		cur, err := s.src.CPU(ctx)
		if err != nil {
			return pkg.TimesStat{}, false
		}
		var base cpu.TimesStat
		if prev != nil {
			base = *prev
		}
		prev = &cur
		return pkg.TimesStat{TimesStat: cur, Percent: busyPercent(base, cur), Time: s.now()}, true
	})
}

func cpuTotal(t cpu.TimesStat) float64 {
	return t.User + t.System + t.Idle + t.Nice + t.Iowait + t.Irq + t.Softirq + t.Steal
}

// busyPercent is the share of non-idle time between two samples, in percent.
// Guest time is already part of user time in /proc/stat and is not added.
func busyPercent(prev, cur cpu.TimesStat) float64 {
	total := cpuTotal(cur) - cpuTotal(prev)
	idle := (cur.Idle + cur.Iowait) - (prev.Idle + prev.Iowait)
	if total <= 0 {
		return 0
	}
	p := (total - idle) / total * 100
	return min(max(p, 0), 100)
}

// Disks streams the cumulative IO counters of the block devices listed when
// the stream starts.
func (s *System) Disks(ctx context.Context) <-chan pkg.DisksIOCountersStat {
	var names []string
	listed := false
	return stream(ctx, s.cfg.Interval, func() (pkg.DisksIOCountersStat, bool) {
		if !listed {
			n, err := s.src.Disks(ctx)
			if err != nil {
				return nil, false
			}
			names, listed = n, true
		}
		counters, err := s.src.DiskCounters(ctx, names)
		if err != nil {
			return nil, false
		}
		now := s.now()
		out := make(pkg.DisksIOCountersStat, len(counters))
		for name, c := range counters {
			out[name] = pkg.DiskIOCountersStat{IOCountersStat: c, Time: now}
		}
		return out, true
	})
}

// Nics streams the cumulative counters of every interface with its rates in
// bytes per second.
func (s *System) Nics(ctx context.Context) <-chan pkg.NicsIOCounterStat {
	type seen struct {
		c net.IOCountersStat
		t time.Time
	}
	prev := map[string]seen{}
	return stream(ctx, s.cfg.Interval, func() (pkg.NicsIOCounterStat, bool) {
		counters, err := s.src.NicCounters(ctx)
		if err != nil {
			return nil, false
		}
		now := s.now()
		out := make(pkg.NicsIOCounterStat, 0, len(counters))
		next := make(map[string]seen, len(counters))
		for _, c := range counters {
			stat := pkg.NicIOCounterStat{IOCountersStat: c}
			if p, ok := prev[c.Name]; ok {
				secs := uint64(now.Sub(p.t) / time.Second)
				if secs > 0 && c.BytesSent >= p.c.BytesSent && c.BytesRecv >= p.c.BytesRecv {
					stat.RateOut = (c.BytesSent - p.c.BytesSent) / secs
					stat.RateIn = (c.BytesRecv - p.c.BytesRecv) / secs
				}
			}
			next[c.Name] = seen{c: c, t: now}
			out = append(out, stat)
		}
		prev = next
		return out, true
	})
}

// Uptime streams the host's uptime.
func (s *System) Uptime(ctx context.Context) <-chan time.Duration {
	return stream(ctx, s.cfg.Interval, func() (time.Duration, bool) {
		d, err := s.src.Uptime(ctx)
		return d, err == nil
	})
}

// Version implements pkg.VersionMonitor: it re-emits the current version at
// every interval and at once to every subscriber when Set changes it.
type Version struct {
	interval time.Duration

	mu      sync.Mutex
	current types.Version               // guarded by mu
	subs    map[chan types.Version]bool // guarded by mu
}

var _ pkg.VersionMonitor = (*Version)(nil)

// NewVersion returns a version monitor starting at v.
func NewVersion(cfg Config, v types.Version) (*Version, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Version{interval: cfg.Interval, current: v, subs: map[chan types.Version]bool{}}, nil
}

// Set changes the running version and notifies every subscriber.
func (m *Version) Set(v types.Version) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.current = v
	for ch := range m.subs {
		select { // a subscriber busy with a value gets the new one at its next tick
		case ch <- v:
		default:
		}
	}
}

func (m *Version) get() types.Version {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.current
}

// Version streams the running version.
func (m *Version) Version(ctx context.Context) <-chan types.Version {
	out := make(chan types.Version)
	changed := make(chan types.Version, 1)
	m.mu.Lock()
	m.subs[changed] = true
	m.mu.Unlock()
	go func() {
		defer close(out)
		defer func() {
			m.mu.Lock()
			delete(m.subs, changed)
			m.mu.Unlock()
		}()
		t := time.NewTicker(m.interval)
		defer t.Stop()
		for {
			var v types.Version
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				v = m.get()
			case v = <-changed:
			}
			select {
			case <-ctx.Done():
				return
			case out <- v:
			}
		}
	}()
	return out
}
