package zinit

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// LogHandler is a slog.Handler that writes zinit's own messages the way the
// original did, "zinit: INFO (zinit) service spawned service=redis pid=12",
// to the ring (so zinit log shows them) and to w.
type LogHandler struct {
	ring  *Ring
	level slog.Leveler
	attrs string

	mu *sync.Mutex // guards w
	w  io.Writer
}

// NewLogHandler returns a handler writing records at or above level.
func NewLogHandler(ring *Ring, w io.Writer, level slog.Leveler) *LogHandler {
	return &LogHandler{ring: ring, w: w, level: level, mu: &sync.Mutex{}}
}

// Enabled implements slog.Handler.
func (h *LogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

// Handle implements slog.Handler.
func (h *LogHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "zinit: %s (zinit) %s%s", r.Level, r.Message, h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, a)
		return true
	})
	line := b.String()
	if h.ring != nil {
		h.ring.Write(line)
	}
	if h.w != nil {
		h.mu.Lock()
		defer h.mu.Unlock()
		_, err := io.WriteString(h.w, line+"\n")
		return err
	}
	return nil
}

func writeAttr(b *strings.Builder, a slog.Attr) {
	v := a.Value.Resolve().String()
	if strings.ContainsAny(v, " \t\"=") || v == "" {
		v = fmt.Sprintf("%q", v)
	}
	fmt.Fprintf(b, " %s=%s", a.Key, v)
}

// WithAttrs implements slog.Handler.
func (h *LogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range attrs {
		writeAttr(&b, a)
	}
	n := *h
	n.attrs = b.String()
	return &n
}

// WithGroup implements slog.Handler; groups are flattened.
func (h *LogHandler) WithGroup(string) slog.Handler { return h }
