package stats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zos-go/zos/pkg/container/internal/redisurl"
)

// Metrics is the document published on each backend's channel, as the
// original's stats did.
type Metrics struct {
	// Timestamp is the time of the sample, in Unix seconds.
	Timestamp int64 `json:"timestamp"`
	// MemoryUsage is the container's memory use in bytes.
	MemoryUsage uint64 `json:"memory_usage"`
	// MemoryLimit is its memory limit in bytes.
	MemoryLimit uint64 `json:"memory_limit"`
	// MemoryCache is the page cache part of the usage, in bytes.
	MemoryCache uint64 `json:"memory_cache"`
	// CPUUsage is the cumulative CPU time of its processes, in nanoseconds.
	CPUUsage uint64 `json:"cpu_usage"`
	// PidsCurrent is its number of processes.
	PidsCurrent uint64 `json:"pids_current"`
}

// Publisher publishes Metrics on the redis channels of a container's
// stats backends. It is safe for concurrent use.
type Publisher struct {
	targets []target
}

type target struct {
	ep     redisurl.Endpoint
	client *redis.Client
}

// NewPublisher makes a Publisher for the backends; it connects lazily.
// An unknown type or a bad endpoint is an error.
func NewPublisher(backends []Stats) (*Publisher, error) {
	p := &Publisher{}
	for i, b := range backends {
		if b.Type != RedisType {
			return nil, fmt.Errorf("stats[%d]: unknown type %q", i, b.Type)
		}
		ep, err := redisurl.Parse(b.Data.Endpoint)
		if err != nil {
			return nil, fmt.Errorf("stats[%d]: %w", i, err)
		}
		p.targets = append(p.targets, target{ep: ep, client: redis.NewClient(&redis.Options{
			Addr: ep.Addr, Username: ep.Username, Password: ep.Password,
			DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
			MaxRetries: 1, PoolSize: 1, Protocol: 2, DisableIdentity: true,
		})})
	}
	return p, nil
}

// Publish sends m to every backend (PUBLISH <channel> <json>); it returns
// the errors of the backends that failed.
func (p *Publisher) Publish(ctx context.Context, m Metrics) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range p.targets {
		if err := t.client.Publish(ctx, t.ep.Channel, b).Err(); err != nil {
			errs = append(errs, fmt.Errorf("stats %s/%s: %w", t.ep.Addr, t.ep.Channel, err))
		}
	}
	return errors.Join(errs...)
}

// Close closes the connections.
func (p *Publisher) Close() error {
	var errs []error
	for _, t := range p.targets {
		errs = append(errs, t.client.Close())
	}
	return errors.Join(errs...)
}
