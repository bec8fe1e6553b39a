package container

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/typeurl/v2"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/container/stats"
)

// errNotRunning is returned by sample when the container has no running
// task: nothing is published then.
var errNotRunning = errors.New("container not running")

// publishStats publishes the container's metrics on its stats backends
// every StatsInterval until ctx ends (Delete, or Watch ends).
func (m *Module) publishStats(ctx context.Context, ns, id string, c pkg.Container) {
	pub, err := stats.NewPublisher(c.Stats)
	if err != nil {
		m.log.WarnContext(ctx, "stats backends refused", "namespace", ns, "container", id, "err", err)
		return
	}
	defer pub.Close()
	tick := time.NewTicker(m.cfg.StatsInterval)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		met, err := m.sample(ctx, ns, id)
		if err != nil {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, m.cfg.StatsInterval)
		err = pub.Publish(pctx, met)
		cancel()
		if err != nil && !failing && ctx.Err() == nil {
			m.log.WarnContext(ctx, "stats not published", "namespace", ns, "container", id, "err", err)
		}
		failing = err != nil
	}
}

// sample reads the cgroup metrics of the container's task.
func (m *Module) sample(ctx context.Context, ns, id string) (stats.Metrics, error) {
	ctx = namespaces.WithNamespace(ctx, ns)
	cont, err := m.client.LoadContainer(ctx, id)
	if err != nil {
		return stats.Metrics{}, err
	}
	task, err := cont.Task(ctx, nil)
	if err != nil {
		return stats.Metrics{}, errNotRunning
	}
	raw, err := task.Metrics(ctx)
	if err != nil {
		return stats.Metrics{}, errNotRunning
	}
	v, err := typeurl.UnmarshalAny(raw.Data)
	if err != nil {
		return stats.Metrics{}, fmt.Errorf("metrics of %s/%s: %w", ns, id, err)
	}
	out := stats.Metrics{Timestamp: time.Now().Unix()}
	switch s := v.(type) {
	case *v1.Metrics:
		if mem := s.GetMemory(); mem != nil {
			out.MemoryUsage = mem.GetUsage().GetUsage()
			out.MemoryLimit = mem.GetUsage().GetLimit()
			out.MemoryCache = mem.GetTotalCache()
		}
		out.CPUUsage = s.GetCPU().GetUsage().GetTotal()
		out.PidsCurrent = s.GetPids().GetCurrent()
	case *v2.Metrics:
		if mem := s.GetMemory(); mem != nil {
			out.MemoryUsage = mem.GetUsage()
			out.MemoryLimit = mem.GetUsageLimit()
			out.MemoryCache = mem.GetFile()
		}
		out.CPUUsage = s.GetCPU().GetUsageUsec() * 1000
		out.PidsCurrent = s.GetPids().GetCurrent()
	default:
		return stats.Metrics{}, fmt.Errorf("metrics of %s/%s: unknown type %T", ns, id, v)
	}
	return out, nil
}
