// Package logship ships zinit's log to a redis channel: every line zinit
// logs for the node's services is PUBLISHed as it comes. It is the logic of
// cmd/zos-logship, which debug workloads run (the original ran zlf).
//
// Reading and publishing are decoupled by a bounded queue: a slow or
// unreachable redis never slows zinit's log down; when the queue is full
// the oldest lines are dropped (and counted). A failed PUBLISH is retried
// with capped backoff; a closed log stream (zinit restarted) is reopened.
// zinit replays its ring buffer to every new reader, so lines of that
// buffer are shipped again after a reconnection.
package logship

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zos-go/zos/pkg/zinit"
)

// Config configures a Shipper.
type Config struct {
	// Channel is the redis channel the lines are published to.
	Channel string
	// Exclude lists services whose lines are not shipped: the shipper's
	// own service, so its complaints about redis never feed back into it.
	Exclude []string
	// Buffer is how many lines wait at most for redis.
	Buffer int
	// RetryMin and RetryMax bound the backoff of reconnections and
	// failed publications.
	RetryMin, RetryMax time.Duration
	// PublishTimeout bounds one PUBLISH.
	PublishTimeout time.Duration
}

// DefaultConfig returns the defaults; Channel must be set.
func DefaultConfig() Config {
	return Config{
		Buffer:         4096,
		RetryMin:       100 * time.Millisecond,
		RetryMax:       10 * time.Second,
		PublishTimeout: 5 * time.Second,
	}
}

// Validate reports an unusable configuration.
func (c Config) Validate() error {
	switch {
	case c.Channel == "":
		return errors.New("logship: channel not set")
	case c.Buffer <= 0:
		return errors.New("logship: buffer must be positive")
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin || c.PublishTimeout <= 0:
		return errors.New("logship: timeouts invalid")
	}
	return nil
}

// Source streams zinit's log; *zinit.Client implements it.
type Source interface {
	Logs(ctx context.Context, service string, fn func(zinit.LogLine) error) error
}

// Publisher publishes one message on a channel.
type Publisher interface {
	Publish(ctx context.Context, channel, msg string) error
}

// RedisPublisher is a Publisher over a go-redis client.
type RedisPublisher struct{ Client redis.UniversalClient }

// Publish implements Publisher.
func (p RedisPublisher) Publish(ctx context.Context, channel, msg string) error {
	return p.Client.Publish(ctx, channel, msg).Err()
}

// Shipper copies zinit's log lines to a redis channel.
type Shipper struct {
	cfg Config
	src Source
	pub Publisher
	log *slog.Logger

	mu     sync.Mutex
	queue  []string      // guarded by mu; oldest first
	signal chan struct{} // one token when the queue got a line

	shipped, dropped atomic.Uint64
}

// New returns a shipper; it starts nothing.
func New(cfg Config, src Source, pub Publisher, log *slog.Logger) (*Shipper, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if src == nil || pub == nil || log == nil {
		return nil, errors.New("logship: source, publisher and logger are required")
	}
	return &Shipper{cfg: cfg, src: src, pub: pub, log: log, signal: make(chan struct{}, 1)}, nil
}

// Stats returns how many lines were published and dropped so far.
func (s *Shipper) Stats() (shipped, dropped uint64) { return s.shipped.Load(), s.dropped.Load() }

// Run ships lines until ctx ends; it returns nil then.
func (s *Shipper) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { s.read(ctx) })
	s.publish(ctx)
	wg.Wait()
	return nil
}

// read follows zinit's log, reopening it when it ends.
func (s *Shipper) read(ctx context.Context) {
	delay := s.cfg.RetryMin
	for ctx.Err() == nil {
		got := false
		err := s.src.Logs(ctx, "", func(l zinit.LogLine) error {
			got = true
			if l.Service != "" && slices.Contains(s.cfg.Exclude, l.Service) {
				return nil
			}
			s.push(l.Raw)
			return nil
		})
		if ctx.Err() != nil {
			return
		}
		if got {
			delay = s.cfg.RetryMin
		}
		s.log.WarnContext(ctx, "zinit log stream ended", "err", err, "retry_in", delay)
		if !sleep(ctx, delay) {
			return
		}
		delay = min(2*delay, s.cfg.RetryMax)
	}
}

func (s *Shipper) push(line string) {
	s.mu.Lock()
	if len(s.queue) >= s.cfg.Buffer {
		s.queue = s.queue[1:]
		s.dropped.Add(1)
	}
	s.queue = append(s.queue, line)
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

// take removes the oldest line from the queue.
func (s *Shipper) take() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return "", false
	}
	line := s.queue[0]
	s.queue[0] = ""
	s.queue = s.queue[1:]
	return line, true
}

// requeue puts back a line that could not be published, in front, unless
// newer lines filled the queue meanwhile (then it is dropped).
func (s *Shipper) requeue(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) >= s.cfg.Buffer {
		s.dropped.Add(1)
		return
	}
	s.queue = append([]string{line}, s.queue...)
}

// publish sends the queued lines in order; a failed line is retried
// (first, unless newer lines filled the queue meanwhile).
func (s *Shipper) publish(ctx context.Context) {
	delay := s.cfg.RetryMin
	for {
		line, ok := s.take()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-s.signal:
			}
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, s.cfg.PublishTimeout)
		err := s.pub.Publish(pctx, s.cfg.Channel, line)
		cancel()
		if err == nil {
			s.shipped.Add(1)
			delay = s.cfg.RetryMin
			continue
		}
		s.requeue(line)
		if ctx.Err() != nil {
			return
		}
		s.log.WarnContext(ctx, "publish failed", "channel", s.cfg.Channel, "err", fmt.Sprint(err), "retry_in", delay)
		if !sleep(ctx, delay) {
			return
		}
		delay = min(2*delay, s.cfg.RetryMax)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
