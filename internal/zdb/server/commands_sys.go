package server

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zos-go/zos/internal/zdb/engine"
	"github.com/zos-go/zos/internal/zdb/resp"
)

func cmdPing(_ *Server, c *client, _ [][]byte) { c.out = resp.AppendSimple(c.out, "PONG") }

func cmdTime(_ *Server, c *client, _ [][]byte) {
	now := time.Now()
	c.out = resp.AppendArray(c.out, 2)
	c.out = resp.AppendBulkString(c.out, strconv.FormatInt(now.Unix(), 10))
	c.out = resp.AppendBulkString(c.out, strconv.Itoa(now.Nanosecond()/1000))
}

func cmdAuth(s *Server, c *client, args [][]byte) {
	if s.cfg.AdminPassword == "" {
		c.out = resp.AppendError(c.out, "Authentication disabled")
		return
	}
	switch len(args) {
	case 2:
		if !validate(c, args, 2, false) {
			return
		}
		if len(args[1]) > 128 {
			c.out = resp.AppendError(c.out, "Password too long")
			return
		}
		if !passwordEqual(string(args[1]), s.cfg.AdminPassword) {
			c.out = resp.AppendError(c.out, "Access denied")
			return
		}
		c.admin = true
		c.out = resp.AppendSimple(c.out, "OK")
	case 3:
		if !validate(c, args, 3, false) {
			return
		}
		if !equalFold(args[1], "SECURE") {
			c.out = resp.AppendError(c.out, "Only SECURE extra method supported")
			return
		}
		if equalFold(args[2], "CHALLENGE") {
			var b [8]byte
			if _, err := rand.Read(b[:]); err != nil {
				c.out = resp.AppendError(c.out, "Internal random error")
				return
			}
			c.nonce = hex.EncodeToString(b[:])
			c.out = resp.AppendSimple(c.out, c.nonce)
			return
		}
		if c.nonce == "" {
			c.out = resp.AppendError(c.out, "No CHALLENGE requested, secure authentication not available")
			return
		}
		if len(args[2]) != 40 {
			c.out = resp.AppendError(c.out, "Invalid hash length")
			return
		}
		ok := passwordEqual(strings.ToLower(string(args[2])), hashPassword(c.nonce, s.cfg.AdminPassword))
		c.nonce = ""
		if !ok {
			c.out = resp.AppendError(c.out, "Access denied")
			return
		}
		c.admin = true
		c.out = resp.AppendSimple(c.out, "OK")
	default:
		c.out = resp.AppendError(c.out, "Unexpected arguments")
	}
}

func cmdStop(s *Server, c *client, _ [][]byte) {
	if !s.requireAdmin(c) {
		return
	}
	c.out = resp.AppendSimple(c.out, "Stopping")
	c.quit = true
	s.shutdown()
}

// revision is the build revision INFO reports.
func revision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, st := range bi.Settings {
			if st.Key == "vcs.revision" {
				return st.Value
			}
		}
		if bi.Main.Version != "" {
			return bi.Main.Version
		}
	}
	return "devel"
}

func cmdInfo(s *Server, c *client, _ [][]byte) {
	st := s.eng.Stats()
	now := time.Now()
	var b strings.Builder
	mb := func(n uint64) string { return strconv.FormatFloat(float64(n)/(1024*1024), 'f', 2, 64) }
	fmt.Fprintf(&b, "# server\n")
	fmt.Fprintf(&b, "server_name: 0-db (zdb)\n")
	fmt.Fprintf(&b, "server_revision: %s\n", revision())
	fmt.Fprintf(&b, "engine_revision: %s\n", revision())
	fmt.Fprintf(&b, "instance_id: %d\n", s.instanceID)
	fmt.Fprintf(&b, "boot_time: %d\n", s.boot.Unix())
	fmt.Fprintf(&b, "uptime: %d\n", now.Unix()-s.boot.Unix())
	fmt.Fprintf(&b, "\n# clients\n")
	fmt.Fprintf(&b, "clients_lifetime: %d\n", s.stats.clients.Load())
	fmt.Fprintf(&b, "\n# stats\n")
	fmt.Fprintf(&b, "commands_executed: %d\n", s.stats.cmdsValid.Load())
	fmt.Fprintf(&b, "commands_failed: %d\n", s.stats.cmdsFailed.Load())
	fmt.Fprintf(&b, "commands_unauthorized: %d\n", s.stats.unauthorized.Load())
	fmt.Fprintf(&b, "index_disk_read_failed: %d\n", st.IndexReadFailed.Load())
	fmt.Fprintf(&b, "index_disk_write_failed: %d\n", st.IndexWriteFailed.Load())
	fmt.Fprintf(&b, "data_disk_read_failed: %d\n", st.DataReadFailed.Load())
	fmt.Fprintf(&b, "data_disk_write_failed: %d\n", st.DataWriteFailed.Load())
	for _, kv := range []struct {
		name string
		v    uint64
	}{
		{"index_disk_read", st.IndexReadBytes.Load()},
		{"index_disk_write", st.IndexWriteBytes.Load()},
		{"data_disk_read", st.DataReadBytes.Load()},
		{"data_disk_write", st.DataWriteBytes.Load()},
		{"network_rx", s.stats.netRx.Load()},
		{"network_tx", s.stats.netTx.Load()},
	} {
		fmt.Fprintf(&b, "%s_bytes: %d\n", kv.name, kv.v)
		fmt.Fprintf(&b, "%s_mb: %s\n", kv.name, mb(kv.v))
	}
	c.out = resp.AppendBulkString(c.out, b.String())
}

// WAIT support: a client blocks until another client of the same namespace
// runs the watched command.

type waiter struct {
	ns   *engine.Namespace
	cmd  string // "*" for any
	self *client
	ch   chan string
}

type waitRegistry struct {
	n  atomic.Int32
	mu sync.Mutex
	ws map[*waiter]struct{} // guarded by mu
}

func (w *waitRegistry) init() { w.ws = map[*waiter]struct{}{} }

func (w *waitRegistry) active() bool { return w.n.Load() > 0 }

func (w *waitRegistry) add(x *waiter) {
	w.mu.Lock()
	w.ws[x] = struct{}{}
	w.mu.Unlock()
	w.n.Add(1)
}

func (w *waitRegistry) remove(x *waiter) {
	w.mu.Lock()
	if _, ok := w.ws[x]; ok {
		delete(w.ws, x)
		w.n.Add(-1)
	}
	w.mu.Unlock()
}

func (w *waitRegistry) notify(ns *engine.Namespace, cmd string, from *client) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for x := range w.ws {
		if x.ns == ns && x.self != from && (x.cmd == "*" || x.cmd == cmd) {
			select {
			case x.ch <- cmd:
			default:
			}
		}
	}
}

func cmdWait(s *Server, c *client, args [][]byte) {
	if len(args) != 2 && len(args) != 3 {
		c.out = resp.AppendError(c.out, "Invalid arguments")
		return
	}
	watch := "*"
	if string(args[1]) != "*" {
		cmd := lookup(args[1])
		if cmd == nil {
			c.out = resp.AppendError(c.out, "Unknown command to watch")
			return
		}
		watch = cmd.name
	}
	timeout := 5 * time.Second
	if len(args) == 3 {
		ms, err := strconv.ParseUint(string(args[2]), 10, 64)
		if len(args[2]) > 16 || err != nil || ms < 100 || ms > 30*60*1000 {
			c.out = resp.AppendError(c.out, "Invalid timeout")
			return
		}
		timeout = time.Duration(ms) * time.Millisecond
	}
	// send what is pending, then block this connection
	if !s.flush(c) {
		c.quit = true
		return
	}
	w := &waiter{ns: c.ns, cmd: watch, self: c, ch: make(chan string, 1)}
	s.waits.add(w)
	defer s.waits.remove(w)
	t := time.NewTimer(timeout)
	defer t.Stop()
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	select {
	case name := <-w.ch:
		c.out = resp.AppendSimple(c.out, name)
	case <-t.C:
		c.out = resp.AppendError(c.out, "Timeout")
	case <-done: // the server stops: so does the wait
		c.quit = true
	}
}

func cmdMaster(s *Server, c *client, _ [][]byte) {
	if !s.requireAdmin(c) {
		return
	}
	c.master = true
	c.out = resp.AppendSimple(c.out, "OK")
}

// mirrorSet holds the MIRROR clients: every write command run by another
// client is copied to them as a request.
type mirrorSet struct {
	n  atomic.Int32
	mu sync.Mutex
	cs map[*client]chan []byte // guarded by mu
}

func (m *mirrorSet) active() bool { return m.n.Load() > 0 }

func (m *mirrorSet) remove(c *client) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ch, ok := m.cs[c]; ok {
		close(ch)
		delete(m.cs, c)
		m.n.Add(-1)
	}
}

func (m *mirrorSet) forward(from *client, args [][]byte) {
	msg := resp.AppendCommand(nil, args...)
	m.mu.Lock()
	defer m.mu.Unlock()
	for c, ch := range m.cs {
		if c == from {
			continue
		}
		select {
		case ch <- msg:
		default: // a slow mirror loses messages rather than slowing writers
		}
	}
}

func cmdMirror(s *Server, c *client, _ [][]byte) {
	if !s.requireAdmin(c) {
		return
	}
	ch := make(chan []byte, 4096)
	s.mirrors.mu.Lock()
	if s.mirrors.cs == nil {
		s.mirrors.cs = map[*client]chan []byte{}
	}
	if _, ok := s.mirrors.cs[c]; !ok {
		s.mirrors.cs[c] = ch
		s.mirrors.n.Add(1)
		go func() {
			for msg := range ch {
				if _, err := c.conn.Write(msg); err != nil {
					c.conn.Close()
					return
				}
			}
		}()
	}
	s.mirrors.mu.Unlock()
	c.out = resp.AppendSimple(c.out, "OK")
}
