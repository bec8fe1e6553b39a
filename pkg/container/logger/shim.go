package logger

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zos-go/zos/internal/atomicfile"
	"github.com/zos-go/zos/pkg/container/internal/redisurl"
)

// ConfigPath is where the container module writes the log backends of
// container id in ns, for the shim logger to read at each task start.
func ConfigPath(root, ns, id string) string {
	return filepath.Join(root, "config", ns, id+"-logs.json")
}

// RingPath is the log ring of container id in ns.
func RingPath(root, ns, id string) string {
	return filepath.Join(root, "logs", ns, id+".log")
}

// SysLogPath is where the shim logger of container id writes its own
// messages.
func SysLogPath(root, ns, id string) string {
	return filepath.Join(root, "logs", ns, id+"-sys.log")
}

// WriteConfig writes the backends of a container for its shim logger
// (atomically, 0644).
func WriteConfig(root, ns, id string, backends []Logs) error {
	b, err := json.Marshal(backends)
	if err != nil {
		return fmt.Errorf("log config %s/%s: %w", ns, id, err)
	}
	p := ConfigPath(root, ns, id)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("log config %s/%s: %w", ns, id, err)
	}
	if err := atomicfile.WriteFile(p, b, 0o644); err != nil {
		return fmt.Errorf("log config %s/%s: %w", ns, id, err)
	}
	return nil
}

// ShimConfig is what the shim logger needs. containerd's shim passes the
// query of the binary:// log URI as arguments (key value pairs, in random
// order) and the container in CONTAINER_ID and CONTAINER_NAMESPACE.
type ShimConfig struct {
	// Root is the container module's root (Config.Root).
	Root string
	// RingBytes and RingFiles size the ring (see Ring).
	RingBytes int64
	RingFiles int
	// Namespace and ID name the container.
	Namespace, ID string
}

// Args returns the log URI query that ParseShimArgs reads back.
func (c ShimConfig) Args() map[string]string {
	return map[string]string{
		"root":       c.Root,
		"ring-bytes": strconv.FormatInt(c.RingBytes, 10),
		"ring-files": strconv.Itoa(c.RingFiles),
	}
}

// ErrShimArgs is wrapped by the errors of ParseShimArgs.
var ErrShimArgs = errors.New("bad shim logger arguments")

// ParseShimArgs reads the arguments and environment the shim gives.
func ParseShimArgs(args []string, getenv func(string) string) (ShimConfig, error) {
	if len(args)%2 != 0 {
		return ShimConfig{}, fmt.Errorf("odd argument count %d: %w", len(args), ErrShimArgs)
	}
	c := ShimConfig{Namespace: getenv("CONTAINER_NAMESPACE"), ID: getenv("CONTAINER_ID"), RingBytes: 1 << 20, RingFiles: 2}
	for i := 0; i < len(args); i += 2 {
		k, v := args[i], args[i+1]
		var err error
		switch k {
		case "root":
			c.Root = v
		case "ring-bytes":
			c.RingBytes, err = strconv.ParseInt(v, 10, 64)
		case "ring-files":
			c.RingFiles, err = strconv.Atoi(v)
		default:
			err = errors.New("unknown key")
		}
		if err != nil {
			return ShimConfig{}, fmt.Errorf("%s=%q: %v: %w", k, v, err, ErrShimArgs)
		}
	}
	if !filepath.IsAbs(c.Root) || c.RingBytes < 1 || c.RingFiles < 1 {
		return ShimConfig{}, fmt.Errorf("root %q, ring %d×%d: %w", c.Root, c.RingFiles, c.RingBytes, ErrShimArgs)
	}
	for _, s := range []string{c.Namespace, c.ID} {
		if s == "" || s == "." || s == ".." || filepath.Base(s) != s {
			return ShimConfig{}, fmt.Errorf("container %q/%q: %w", c.Namespace, c.ID, ErrShimArgs)
		}
	}
	return c, nil
}

// maxLine is the longest line published as one message; longer lines are
// split.
const maxLine = 64 << 10

// publisher sends lines to one redis channel without ever blocking the
// container: lines beyond its queue are dropped (and counted).
type publisher struct {
	ep      redisurl.Endpoint
	client  *redis.Client
	q       chan []byte
	dropped atomic.Int64
}

func (p *publisher) run(ctx context.Context, log *slog.Logger) {
	failing := false
	for line := range p.q {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := p.client.Publish(cctx, p.ep.Channel, line).Err()
		cancel()
		if err != nil && !failing {
			log.Warn("redis publish failed", "addr", p.ep.Addr, "channel", p.ep.Channel, "err", err)
		}
		failing = err != nil
	}
}

func (p *publisher) send(line []byte) {
	select {
	case p.q <- line:
	default:
		p.dropped.Add(1)
	}
}

// RunShim copies the container's stdout and stderr, line by line, to the
// ring and to the redis channels of its backends, until both streams end.
// It closes ready once set up, as the shim waits for that. Publishing never
// slows the container down: lines a slow or absent redis cannot take are
// dropped. After the streams end, queued lines are sent for at most
// drainTimeout.
func RunShim(ctx context.Context, cfg ShimConfig, stdout, stderr io.Reader, ready io.Closer, log *slog.Logger) error {
	ring, err := OpenRing(RingPath(cfg.Root, cfg.Namespace, cfg.ID), cfg.RingBytes, cfg.RingFiles)
	if err != nil {
		ready.Close()
		return err
	}
	defer ring.Close()
	var backends []Logs
	if b, err := os.ReadFile(ConfigPath(cfg.Root, cfg.Namespace, cfg.ID)); err == nil {
		if err := json.Unmarshal(b, &backends); err != nil {
			log.Warn("bad log config, only the ring is written", "err", err)
			backends = nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		log.Warn("log config unreadable, only the ring is written", "err", err)
	}
	outPubs, errPubs, all := publishers(backends, log)
	pubCtx, cancelPub := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelPub()
	var pubWG sync.WaitGroup
	for _, p := range all {
		pubWG.Go(func() { p.run(pubCtx, log) })
	}
	if err := ready.Close(); err != nil {
		log.Warn("close ready pipe", "err", err)
	}

	var wg sync.WaitGroup
	copyStream := func(r io.Reader, pubs []*publisher) {
		br := bufio.NewReaderSize(r, maxLine)
		for {
			line, err := br.ReadSlice('\n')
			if len(line) > 0 {
				if _, werr := ring.Write(line); werr != nil {
					log.Warn("ring write failed", "err", werr)
				}
				msg := trimEOL(line)
				for _, p := range pubs {
					p.send(append([]byte(nil), msg...))
				}
			}
			if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
				return
			}
		}
	}
	if stdout != nil {
		wg.Go(func() { copyStream(stdout, outPubs) })
	}
	if stderr != nil {
		wg.Go(func() { copyStream(stderr, errPubs) })
	}
	wg.Wait()
	for _, p := range all {
		close(p.q)
	}
	done := make(chan struct{})
	go func() { pubWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drainTimeout):
		cancelPub()
		<-done
	}
	for _, p := range all {
		if n := p.dropped.Load(); n > 0 {
			log.Warn("log lines dropped", "addr", p.ep.Addr, "channel", p.ep.Channel, "lines", n)
		}
		p.client.Close()
	}
	return nil
}

// drainTimeout bounds the sending of queued lines after the streams end.
const drainTimeout = 3 * time.Second

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// publishers makes one publisher per redis URL of the backends, split by
// stream. Bad URLs (the module checks them before) are skipped.
func publishers(backends []Logs, log *slog.Logger) (out, errs, all []*publisher) {
	mk := func(u string) *publisher {
		ep, err := redisurl.Parse(u)
		if err != nil {
			log.Warn("bad redis url skipped", "err", err)
			return nil
		}
		p := &publisher{ep: ep, q: make(chan []byte, 1024), client: redis.NewClient(&redis.Options{
			Addr: ep.Addr, Username: ep.Username, Password: ep.Password,
			DialTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second,
			MaxRetries: 1, PoolSize: 1, DisableIdentity: true, Protocol: 2,
		})}
		all = append(all, p)
		return p
	}
	for _, b := range backends {
		if b.Type != RedisType {
			continue
		}
		if b.Data.Stdout != "" {
			if p := mk(b.Data.Stdout); p != nil {
				out = append(out, p)
			}
		}
		if b.Data.Stderr != "" {
			if p := mk(b.Data.Stderr); p != nil {
				errs = append(errs, p)
			}
		}
	}
	return out, errs, all
}
