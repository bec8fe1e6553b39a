package zinit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/zos-go/zos/internal/zinit/proto"
)

// Server serves a Manager on unix sockets: the line protocol (zinit v0.1),
// the JSON protocol (zinit v0.2) and the log stream.
type Server struct {
	m   *Manager
	log *slog.Logger
	// AllowReboot accepts the reboot command (only PID 1 may reboot).
	AllowReboot bool

	mu    sync.Mutex
	conns map[net.Conn]struct{} // guarded by mu
	wg    sync.WaitGroup
}

// NewServer returns a server for m; it starts nothing.
func NewServer(m *Manager, log *slog.Logger) *Server {
	return &Server{m: m, log: log, conns: map[net.Conn]struct{}{}}
}

// Listen creates a unix socket at path, replacing a stale one, readable only
// by root.
func Listen(path string) (net.Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	return l, nil
}

// ServeLine serves the line protocol on l until ctx ends.
func (s *Server) ServeLine(ctx context.Context, l net.Listener) error {
	return s.serve(ctx, l, s.handleLine)
}

// ServeJSON serves the JSON protocol on l until ctx ends.
func (s *Server) ServeJSON(ctx context.Context, l net.Listener) error {
	return s.serve(ctx, l, s.handleJSON)
}

// ServeLog serves the log stream on l until ctx ends: each client gets the
// ring's lines, then every new line.
func (s *Server) ServeLog(ctx context.Context, l net.Listener) error {
	return s.serve(ctx, l, func(ctx context.Context, c net.Conn) { s.streamLog(ctx, c, true) })
}

func (s *Server) serve(ctx context.Context, l net.Listener, handle func(context.Context, net.Conn)) error {
	stop := context.AfterFunc(ctx, func() {
		l.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	})
	defer stop()
	select { // until then, clients wait in the listen backlog
	case <-s.m.Loaded():
	case <-ctx.Done():
		return nil
	}
	for {
		c, err := l.Accept()
		if err != nil {
			s.wg.Wait()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("zinit accept: %w", err)
		}
		s.mu.Lock()
		if ctx.Err() != nil {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			handle(ctx, c)
		})
	}
}

// result is the outcome of one command: a YAML body for the line protocol,
// a value for JSON, and what to do once the reply is sent.
type result struct {
	text  string
	value any
	after func()
}

func (s *Server) execute(ctx context.Context, req proto.Request) (result, error) {
	args := func(n int, want string) error {
		if len(req.Args) != n {
			return proto.InvalidArguments(req.Cmd, want)
		}
		return nil
	}
	switch req.Cmd {
	case "list":
		if err := args(0, "no argument"); err != nil {
			return result{}, err
		}
		var b strings.Builder
		vals := map[string]string{}
		for _, i := range s.m.List() {
			fmt.Fprintf(&b, "%s: %s\n", yamlScalar(i.Name), yamlScalar(i.State.String()))
			vals[i.Name] = i.State.String()
		}
		return result{text: b.String(), value: vals}, nil
	case "status":
		if err := args(1, "a service name"); err != nil {
			return result{}, err
		}
		st, err := s.m.Status(req.Args[0])
		if err != nil {
			return result{}, err
		}
		return statusResult(st), nil
	case "start", "stop", "monitor", "forget":
		if err := args(1, "a service name"); err != nil {
			return result{}, err
		}
		op := map[string]func(string) error{"start": s.m.Start, "stop": s.m.Stop, "monitor": s.m.Monitor, "forget": s.m.Forget}[req.Cmd]
		return result{}, op(req.Args[0])
	case "kill":
		if err := args(2, "a service name and a signal"); err != nil {
			return result{}, err
		}
		return result{}, s.m.Kill(req.Args[0], req.Args[1])
	case "log":
		// An addition to the line protocol: the ring as the body, so a
		// snapshot has an end (the log socket streams forever).
		if err := args(0, "no argument"); err != nil {
			return result{}, err
		}
		lines := s.m.ring.Snapshot()
		var b strings.Builder
		for _, l := range lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
		return result{text: b.String(), value: lines}, nil
	case "shutdown", "reboot":
		if err := args(0, "no argument"); err != nil {
			return result{}, err
		}
		reboot := req.Cmd == "reboot"
		if reboot && !s.AllowReboot {
			return result{}, proto.NotSupported("reboot: zinit is not PID 1")
		}
		if err := s.m.Shutdown(ctx, reboot); err != nil {
			return result{}, err
		}
		return result{after: s.m.Finish}, nil
	case "":
		return result{}, proto.UnknownCommand()
	}
	return result{}, proto.UnknownCommand()
}

func statusResult(st Status) result {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\npid: %d\nstate: %s\ntarget: %s\n", yamlScalar(st.Name), st.Pid, yamlScalar(st.State.String()), st.Target)
	after := map[string]string{}
	if len(st.After) > 0 {
		b.WriteString("after:\n")
		for _, d := range st.After {
			fmt.Fprintf(&b, " - %s: %s\n", yamlScalar(d.Name), yamlScalar(d.State.String()))
			after[d.Name] = d.State.String()
		}
	}
	return result{text: b.String(), value: map[string]any{
		"name": st.Name, "pid": st.Pid, "state": st.State.String(), "target": st.Target.String(), "after": after,
	}}
}

// yamlScalar returns s as is when it is a plain YAML scalar that reads back
// as the same string (every state zinit prints normally is), quoted
// otherwise.
func yamlScalar(s string) string {
	b, err := yaml.Marshal(s)
	if err != nil {
		return `""`
	}
	return strings.TrimSuffix(string(b), "\n")
}

func (s *Server) handleLine(ctx context.Context, c net.Conn) {
	r := bufio.NewReaderSize(c, 4096)
	for {
		line, err := proto.ReadRequest(r, proto.MaxRequestBytes)
		var res result
		if err == nil {
			var req proto.Request
			req, err = proto.ParseRequest(line)
			if err == nil {
				res, err = s.execute(ctx, req)
			}
		} else if !errors.Is(err, proto.ErrRequestTooLong) {
			return // EOF or a broken connection
		}
		werr := proto.WriteResponse(c, res.text, err)
		if res.after != nil {
			res.after()
		}
		if werr != nil {
			return
		}
	}
}

func (s *Server) handleJSON(ctx context.Context, c net.Conn) {
	r := bufio.NewReaderSize(c, 4096)
	line, err := proto.ReadRequest(r, proto.MaxRequestBytes)
	if err != nil && !errors.Is(err, proto.ErrRequestTooLong) {
		return
	}
	var res result
	if err == nil {
		var req proto.Request
		if req, err = proto.ParseRequest(line); err == nil {
			if req.Cmd == "log" {
				s.streamLog(ctx, c, len(req.Args) == 0 || req.Args[0] != "snapshot")
				return
			}
			res, err = s.execute(ctx, req)
		}
	}
	reply := struct {
		State string `json:"state"`
		Body  any    `json:"body"`
	}{State: "ok", Body: res.value}
	if err != nil {
		reply.State, reply.Body = "error", proto.AsError(err).Msg
	}
	_ = json.NewEncoder(c).Encode(reply)
	if res.after != nil {
		res.after()
	}
}

// streamLog writes the ring to c, then, with follow, every new line until
// the client goes away or ctx ends.
func (s *Server) streamLog(ctx context.Context, c net.Conn, follow bool) {
	if !follow {
		w := bufio.NewWriter(c)
		for _, l := range s.m.ring.Snapshot() {
			_, _ = w.WriteString(l + "\n")
		}
		_ = w.Flush()
		return
	}
	lines, sub := s.m.ring.Subscribe(4096)
	defer sub.Close()
	gone := make(chan struct{})
	go func() { // a read returns when the client closes (or ctx closes c)
		defer close(gone)
		_, _ = io.Copy(io.Discard, c)
	}()
	defer func() { c.Close(); <-gone }()
	w := bufio.NewWriter(c)
	write := func(l string) bool {
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		_, err := w.WriteString(l + "\n")
		return err == nil
	}
	for _, l := range lines {
		if !write(l) {
			return
		}
	}
	for {
		if w.Flush() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-gone:
			return
		case l := <-sub.C:
			if n := sub.Dropped(); n > 0 && !write(fmt.Sprintf("zinit: WARN (log) %d lines dropped", n)) {
				return
			}
			if !write(l) {
				return
			}
		drain:
			for {
				select {
				case l := <-sub.C:
					if !write(l) {
						return
					}
				default:
					break drain
				}
			}
		}
	}
}
