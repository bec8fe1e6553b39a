package storage

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"time"

	"github.com/shirou/gopsutil/v4/disk"

	"github.com/zos-go/zos/pkg"
)

// Monitor implements pkg.StorageModule: every MonitorInterval (the first
// at once) it sends, for each healthy pool, the usage of its mount and the
// IO counters of its devices, until ctx ends; then the channel is closed.
// Each send is a new map.
func (m *Module) Monitor(ctx context.Context) <-chan pkg.PoolsStats {
	ch := make(chan pkg.PoolsStats)
	go func() {
		defer close(ch)
		t := time.NewTicker(m.cfg.MonitorInterval)
		defer t.Stop()
		for {
			stats := m.poolsStats(ctx)
			select {
			case ch <- stats:
			case <-ctx.Done():
				return
			}
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

func (m *Module) poolsStats(ctx context.Context) pkg.PoolsStats {
	type snap struct {
		mnt     string
		devices []string
	}
	m.mu.Lock()
	pools := map[string]snap{}
	for label, p := range m.pools {
		if p.broken == nil {
			pools[label] = snap{mnt: p.mnt, devices: slices.Clone(p.devices)}
		}
	}
	m.mu.Unlock()
	out := pkg.PoolsStats{}
	for _, label := range slices.Sorted(maps.Keys(pools)) {
		s := pools[label]
		usage, err := disk.UsageWithContext(ctx, s.mnt)
		if err != nil {
			m.log.DebugContext(ctx, "pool usage", "pool", label, "err", err)
			continue
		}
		names := make([]string, 0, len(s.devices))
		for _, d := range s.devices {
			names = append(names, filepath.Base(d))
		}
		counters, err := disk.IOCountersWithContext(ctx, names...)
		if err != nil {
			m.log.DebugContext(ctx, "pool io counters", "pool", label, "err", err)
			counters = map[string]disk.IOCountersStat{}
		}
		out[label] = pkg.PoolStats{UsageStat: *usage, Counters: counters}
	}
	return out
}
