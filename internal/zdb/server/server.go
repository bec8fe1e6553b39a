// Package server is the network side of our 0-db: it accepts redis-protocol
// connections on TCP and/or a unix socket and runs the 0-db command set
// against the engine, with replies and error lines byte-identical to the
// original 0-db where clients parse them.
//
// Connections are served by event loops (loop.go), as redis serves them:
// each round reads what the sockets hold, runs the complete requests, writes
// the new keys' entries to the files in one batch and sends the replies. A
// command that may wait (disk reads not in the page cache, --sync writes,
// administration) runs on a goroutine meanwhile; Config.EventLoops < 0
// serves every connection on a goroutine of its own instead.
package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zos-go/zos/internal/zdb/engine"
	"github.com/zos-go/zos/internal/zdb/resp"
)

// Config configures the network server.
type Config struct {
	// Listen is the TCP address to bind (0-db's --listen), Port its port.
	Listen string
	Port   int
	// Socket is a unix socket path. Without DualNet, a socket disables TCP.
	Socket  string
	DualNet bool
	// AdminPassword enables admin authentication; empty: every client is
	// admin.
	AdminPassword string
	// Protect makes the default namespace read-only unless selected with the
	// admin password (needs AdminPassword).
	Protect bool
	// Hook is an executable run on events: hook <event> <instance-id> [args].
	Hook string
	// EventLoops is the number of event loops serving the connections
	// (epoll, as redis does): 0 picks one per 4 CPUs; a negative number
	// serves every connection on a goroutine of its own instead.
	EventLoops int
}

// DefaultConfig returns 0-db's defaults: listen on [::]:9900.
func DefaultConfig() Config {
	return Config{Listen: "::", Port: 9900}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Socket == "" && (c.Port <= 0 || c.Port > 65535) {
		return fmt.Errorf("server config: port %d out of range", c.Port)
	}
	if c.Protect && c.AdminPassword == "" {
		return errors.New("server config: protect mode needs an admin password")
	}
	return nil
}

// Server serves the 0-db protocol.
type Server struct {
	cfg        Config
	eng        *engine.Engine
	log        *slog.Logger
	instanceID uint32
	boot       time.Time

	stats struct {
		clients      atomic.Uint64
		cmdsValid    atomic.Uint64
		cmdsFailed   atomic.Uint64
		unauthorized atomic.Uint64
		netRx        atomic.Uint64
		netTx        atomic.Uint64
	}

	waits   waitRegistry
	hooks   hookRunner
	mirrors mirrorSet

	// syncWrites: the engine acknowledges writes once synced (--sync).
	syncWrites bool
	loops      []*loop
	nextLoop   atomic.Uint32
	wg         sync.WaitGroup // accept loops, event loops, connection goroutines

	mu      sync.Mutex
	conns   map[net.Conn]struct{} // connections served on goroutines; guarded by mu
	closing bool                  // Run is stopping; guarded by mu
	stop    context.CancelFunc    // guarded by mu
	done    <-chan struct{}       // closed when Run stops; guarded by mu
	readyCh chan struct{}
	addrs   []net.Addr // guarded by mu
}

// New returns a server over an opened engine. Run starts it.
func New(cfg Config, eng *engine.Engine, log *slog.Logger) *Server {
	var b [4]byte
	_, _ = rand.Read(b[:])
	s := &Server{
		cfg:        cfg,
		eng:        eng,
		log:        log,
		instanceID: binary.LittleEndian.Uint32(b[:]),
		boot:       time.Now(),
		conns:      map[net.Conn]struct{}{},
		readyCh:    make(chan struct{}),
		syncWrites: eng.Config().Sync,
	}
	s.waits.init()
	s.hooks = hookRunner{path: cfg.Hook, instance: strconv.FormatUint(uint64(s.instanceID), 10), log: log}
	return s
}

// Hook runs the hook for event (if configured) and waits for it. It is used
// for the "ready" hook, whose failure aborts the start-up.
func (s *Server) Hook(ctx context.Context, event string, args ...string) error {
	return s.hooks.runWait(ctx, event, args...)
}

// Event runs the hook for event in the background (engine events).
func (s *Server) Event(event string, args ...string) { s.hooks.run(event, args...) }

// Ready is closed once the listeners are bound.
func (s *Server) Ready() <-chan struct{} { return s.readyCh }

// Addrs returns the bound addresses (after Ready).
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]net.Addr(nil), s.addrs...)
}

// Run binds the listeners and serves until ctx ends or a client sends STOP.
func (s *Server) Run(ctx context.Context) error {
	if err := s.cfg.Validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.stop = cancel
	s.done = ctx.Done()
	s.mu.Unlock()

	var lns []net.Listener
	closeAll := func() {
		for _, l := range lns {
			l.Close()
		}
	}
	if s.cfg.Socket == "" || s.cfg.DualNet {
		addr := net.JoinHostPort(s.cfg.Listen, strconv.Itoa(s.cfg.Port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", addr, err)
		}
		lns = append(lns, l)
	}
	if s.cfg.Socket != "" {
		_ = os.Remove(s.cfg.Socket) // a stale socket of a previous run
		l, err := net.Listen("unix", s.cfg.Socket)
		if err != nil {
			closeAll()
			return fmt.Errorf("listen %s: %w", s.cfg.Socket, err)
		}
		lns = append(lns, l)
	}
	n := s.cfg.EventLoops
	if n == 0 {
		n = max(1, (runtime.GOMAXPROCS(0)+3)/4)
	}
	for range n {
		l, err := newLoop(s)
		if err != nil {
			for _, l := range s.loops {
				l.closeFDs()
			}
			closeAll()
			return err
		}
		s.loops = append(s.loops, l)
	}
	s.mu.Lock()
	for _, l := range lns {
		s.addrs = append(s.addrs, l.Addr())
		s.log.Info("listening", "addr", l.Addr().String())
	}
	s.mu.Unlock()
	close(s.readyCh)

	for _, l := range s.loops {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			l.run()
		}()
	}
	for _, l := range lns {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.accept(ctx, l)
		}()
	}
	<-ctx.Done()
	closeAll()
	s.mu.Lock()
	s.closing = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	for _, l := range s.loops {
		l.stop()
	}
	s.wg.Wait()
	s.hooks.wait()
	if s.cfg.Socket != "" {
		_ = os.Remove(s.cfg.Socket)
	}
	return nil
}

func (s *Server) accept(ctx context.Context, l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("accept failed", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.stats.clients.Add(1)
		cl, err := s.newClient()
		if err != nil {
			c.Close()
			continue
		}
		if len(s.loops) > 0 {
			lp := s.loops[int(s.nextLoop.Add(1))%len(s.loops)]
			if err := lp.adopt(c, cl); err == nil {
				continue
			} else if !errors.Is(err, errLoopStopped) {
				s.log.Warn("event loop refused a connection", "err", err)
			}
		}
		s.goServe(c, cl, nil)
	}
}

// newClient returns the state of a new connection, in the default
// namespace.
func (s *Server) newClient() (*client, error) {
	def, err := s.eng.Namespace(engine.DefaultNamespace)
	if err != nil {
		return nil, err
	}
	return &client{ns: def, admin: s.cfg.AdminPassword == "", writable: !s.cfg.Protect}, nil
}

// goServe serves conn on a goroutine of its own, starting with the request
// bytes in prefix (received by an event loop but not run yet).
func (s *Server) goServe(conn net.Conn, c *client, prefix []byte) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		conn.Close()
		return
	}
	s.conns[conn] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		s.serve(conn, c, prefix)
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
	}()
}

// shutdown stops the server (STOP).
func (s *Server) shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		s.stop()
	}
}

// client is the state of one connection.
type client struct {
	conn     net.Conn // nil while an event loop serves the connection
	ns       *engine.Namespace
	admin    bool
	writable bool
	master   bool
	nonce    string
	out      []byte // replies not sent yet
	quit     bool
	// cachedOnly: the command runs on an event loop and may read the page
	// cache only; wouldBlock: it needed the disk, and runs again elsewhere.
	cachedOnly bool
	wouldBlock bool
	// batched: replies to SETs whose entries wait in a write batch; they
	// are sent once the batch is committed (see commitReplies)
	batched []batchedReply
}

// batchedReply is the reply, at out[start:end], to a SET in a write batch.
type batchedReply struct {
	ns         *engine.Namespace
	batch      uint64
	start, end int
}

// commitReplies commits the write batches that hold c's SETs and, for a
// batch that failed (and was undone), replaces the replies by the error.
// With nowait it stops at a batch it cannot commit without waiting and
// returns false, the rest left in c.batched.
func (s *Server) commitReplies(c *client, nowait bool) bool {
	for len(c.batched) > 0 {
		r := c.batched[len(c.batched)-1]
		var err error
		if nowait {
			if err = r.ns.NoWait().Commit(r.batch); errors.Is(err, engine.ErrWouldBlock) {
				return false
			}
		} else {
			err = r.ns.Commit(r.batch)
		}
		c.batched[len(c.batched)-1] = batchedReply{}
		c.batched = c.batched[:len(c.batched)-1]
		if err != nil {
			rest := append([]byte(nil), c.out[r.end:]...)
			c.out = c.out[:r.start]
			s.replyErr(c, err)
			c.out = append(c.out, rest...)
		}
	}
	return true
}

// countingReader counts received bytes for INFO.
type countingReader struct {
	r io.Reader
	n *atomic.Uint64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(uint64(n))
	return n, err
}

// serve runs the requests of conn one after the other on this goroutine,
// starting with those in prefix.
func (s *Server) serve(conn net.Conn, c *client, prefix []byte) {
	defer conn.Close()
	c.conn = conn
	defer s.mirrors.remove(c)
	s.commitReplies(c, false) // replies an event loop left pending
	var r io.Reader = countingReader{conn, &s.stats.netRx}
	if len(prefix) > 0 {
		r = io.MultiReader(bytes.NewReader(prefix), r)
	}
	rd := resp.NewReader(r)
	for {
		args, err := rd.ReadRequest()
		if err != nil {
			if errors.Is(err, resp.ErrProtocol) {
				c.out = resp.AppendError(c.out, "Protocol error")
				s.flush(c)
			}
			return
		}
		s.dispatch(c, args)
		if c.quit || len(c.out) > 64<<10 || rd.Buffered() == 0 {
			if !s.flush(c) || c.quit {
				return
			}
		}
	}
}

func (s *Server) flush(c *client) bool {
	if len(c.out) == 0 {
		return true
	}
	n, err := c.conn.Write(c.out)
	s.stats.netTx.Add(uint64(n))
	if cap(c.out) > 1<<20 {
		c.out = nil
	} else {
		c.out = c.out[:0]
	}
	return err == nil
}
