package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/zos-go/zos/internal/zdb/resp"
)

// hookRecord is one hook execution, listed by HOOKS.
type hookRecord struct {
	event    string
	args     []string
	pid      int
	created  time.Time
	finished time.Time
	status   int
}

// hookRunner runs the --hook executable: hook <event> <instance-id> [args].
type hookRunner struct {
	path     string
	instance string
	log      *slog.Logger

	wg      sync.WaitGroup
	mu      sync.Mutex
	records []*hookRecord // the most recent hooks; guarded by mu
}

const maxHookRecords = 128

func (h *hookRunner) start(ctx context.Context, event string, args []string) (*exec.Cmd, *hookRecord, error) {
	argv := append([]string{event, h.instance}, args...)
	cmd := exec.CommandContext(ctx, h.path, argv...)
	rec := &hookRecord{event: event, args: argv, created: time.Now(), status: -1}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("hook %s %s: %w", h.path, event, err)
	}
	rec.pid = cmd.Process.Pid
	h.mu.Lock()
	h.records = append(h.records, rec)
	if len(h.records) > maxHookRecords {
		h.records = h.records[len(h.records)-maxHookRecords:]
	}
	h.mu.Unlock()
	return cmd, rec, nil
}

func (h *hookRunner) finish(cmd *exec.Cmd, rec *hookRecord) error {
	err := cmd.Wait()
	h.mu.Lock()
	rec.finished = time.Now()
	rec.status = 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		rec.status = ee.ExitCode()
	} else if err != nil {
		rec.status = -1
	}
	h.mu.Unlock()
	return err
}

// runWait runs the hook and waits for it; a non-zero exit is an error.
func (h *hookRunner) runWait(ctx context.Context, event string, args ...string) error {
	if h.path == "" {
		return nil
	}
	cmd, rec, err := h.start(ctx, event, args)
	if err != nil {
		return err
	}
	if err := h.finish(cmd, rec); err != nil {
		return fmt.Errorf("hook %s %s: %w", h.path, event, err)
	}
	return nil
}

// run runs the hook in the background.
func (h *hookRunner) run(event string, args ...string) {
	if h.path == "" {
		return
	}
	cmd, rec, err := h.start(context.Background(), event, args)
	if err != nil {
		h.log.Warn("hook failed", "event", event, "err", err)
		return
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		if err := h.finish(cmd, rec); err != nil {
			h.log.Warn("hook failed", "event", event, "err", err)
		}
	}()
}

// wait waits for the background hooks.
func (h *hookRunner) wait() { h.wg.Wait() }

func cmdHooks(s *Server, c *client, _ [][]byte) {
	if !s.requireAdmin(c) {
		return
	}
	s.hooks.mu.Lock()
	defer s.hooks.mu.Unlock()
	c.out = resp.AppendArray(c.out, len(s.hooks.records))
	for _, r := range s.hooks.records {
		c.out = resp.AppendArray(c.out, 6)
		c.out = resp.AppendBulkString(c.out, r.event)
		c.out = resp.AppendBulkString(c.out, strings.Join(r.args, " "))
		c.out = resp.AppendInt(c.out, int64(r.pid))
		c.out = resp.AppendInt(c.out, r.created.Unix())
		var fin int64
		if !r.finished.IsZero() {
			fin = r.finished.Unix()
		}
		c.out = resp.AppendInt(c.out, fin)
		c.out = resp.AppendInt(c.out, int64(r.status))
	}
}
