package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/internal/zdb/resp"
)

// An event loop serves connections the way redis does: one goroutine waits
// on epoll for all the connections it owns, reads what arrived, runs the
// complete requests and writes the replies once per round. A request then
// costs a read and a write system call, and no goroutine switch, where a
// goroutine per connection pays for parking, waking and a read that finds
// nothing.
//
// The loop never waits: a command that may (a value not in the page cache,
// a write acknowledged after fsync, namespace administration, scans) runs on
// a goroutine while the loop leaves its connection aside (offload); once it
// is done the loop sends the reply and goes on with the connection's next
// requests. WAIT and MIRROR, which write to the connection from their own
// goroutine, move it to a goroutine for good (detach).

// maxPending bounds the replies a connection accumulates before they are
// sent; the rest of its input waits until they are (as the goroutine path
// flushes at 64 KiB).
const maxPending = 64 << 10

// readSize is the least free space offered to a read.
const readSize = 16 << 10

var errLoopStopped = errors.New("event loop stopped")

// loop is one event loop.
type loop struct {
	s      *Server
	epfd   int
	wakefd int // eventfd written by stop

	mu      sync.Mutex
	conns   map[int]*lconn // by file descriptor; guarded by mu
	stopped bool           // guarded by mu
	done    []*lconn       // offloaded commands finished; guarded by mu

	// owned by the loop goroutine
	events []unix.EpollEvent
	again  []*lconn // input left to run once the replies are sent
	next   []*lconn
	dirty  []*lconn // replies to send at the end of the round
	rounds uint64
}

// lconn is a connection served by a loop; only the loop goroutine uses it.
type lconn struct {
	fd      int
	c       *client
	in      []byte // received bytes not run yet, from off on
	off     int
	p       resp.Parser
	sent    int  // bytes of c.out already written
	blocked bool // the socket is full: waiting for EPOLLOUT, not reading
	closing bool // close once c.out is sent
	eof     bool // the client sent all it will: close once all is run
	more    bool // input was left to run because replies piled up
	queued  bool // in dirty
	gone    bool // closed or detached
	// busy: a goroutine runs the request of reqLen bytes at off; the loop
	// leaves the connection (and its client) alone meanwhile
	busy   bool
	reqLen int
}

func newLoop(s *Server) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("event loop: epoll: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("event loop: eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, fmt.Errorf("event loop: epoll add: %w", err)
	}
	return &loop{s: s, epfd: epfd, wakefd: wakefd, conns: map[int]*lconn{}, events: make([]unix.EpollEvent, 256)}, nil
}

// adopt moves conn to the loop: the loop serves a duplicate of its socket
// and conn is closed. On error conn is untouched.
func (l *loop) adopt(conn net.Conn, c *client) error {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return fmt.Errorf("event loop: %T has no file descriptor", conn)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("event loop: %w", err)
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return fmt.Errorf("event loop: %w", err)
	}
	if derr != nil {
		return fmt.Errorf("event loop: dup: %w", derr)
	}
	lc := &lconn{fd: fd, c: c, p: *resp.NewParser()}
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		unix.Close(fd)
		return errLoopStopped
	}
	l.conns[fd] = lc
	l.mu.Unlock()
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}); err != nil {
		l.mu.Lock()
		delete(l.conns, fd)
		l.mu.Unlock()
		unix.Close(fd)
		return fmt.Errorf("event loop: epoll add: %w", err)
	}
	// the runtime poller lets go of the socket; the duplicate keeps it open
	conn.Close()
	return nil
}

// stop makes run return; it closes the connections left.
func (l *loop) stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, _ = unix.Write(l.wakefd, one[:])
}

func (l *loop) stopping() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stopped
}

func (l *loop) closeFDs() {
	unix.Close(l.epfd)
	unix.Close(l.wakefd)
}

// run serves the connections until stop.
func (l *loop) run() {
	defer func() {
		l.mu.Lock()
		l.stopped = true
		conns := l.conns
		l.conns = map[int]*lconn{}
		l.mu.Unlock()
		for _, lc := range conns {
			unix.Close(lc.fd)
			l.s.mirrors.remove(lc.c)
		}
		l.closeFDs()
	}()
	for {
		timeout := -1
		if len(l.again) > 0 {
			timeout = 0
		}
		n, err := unix.EpollWait(l.epfd, l.events, timeout)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			l.s.log.Error("event loop failed", "err", err)
			return
		}
		if l.round(l.events[:n]) {
			return
		}
	}
}

// round serves one round of events: it runs what arrived, then commits the
// write batches and sends the replies. It reports whether the loop must end.
func (l *loop) round(events []unix.EpollEvent) (end bool) {
	// pass through the scheduler now and then: a goroutine that never does
	// gets preempted by force every 10 ms, its P taken, and the runtime's
	// monitor polls every 20 µs after that
	if l.rounds++; l.rounds%64 == 0 {
		runtime.Gosched()
	}
	l.again, l.next = l.next[:0], l.again
	for _, lc := range l.next {
		if !lc.gone && !lc.blocked && !lc.busy {
			l.process(lc)
		}
	}
	for _, ev := range events {
		fd := int(ev.Fd)
		if fd == l.wakefd {
			var b [8]byte
			_, _ = unix.Read(l.wakefd, b[:])
			if l.stopping() {
				end = true // after sending this round's replies
				continue
			}
			l.resume()
			continue
		}
		l.mu.Lock()
		lc := l.conns[fd]
		l.mu.Unlock()
		if lc == nil || lc.gone || lc.busy {
			continue
		}
		if lc.blocked {
			l.send(lc)
			continue
		}
		l.receive(lc)
	}
	for _, lc := range l.dirty {
		lc.queued = false
		if lc.gone || lc.busy {
			continue
		}
		if !l.s.commitReplies(lc.c, true) {
			// the namespace is busy (a rotation, say): a goroutine waits
			// for it, then the loop sends the replies
			l.offload(lc, 0, func() { l.s.commitReplies(lc.c, false) })
			continue
		}
		if lc.c.quit {
			lc.closing = true
		}
		l.send(lc)
	}
	clear(l.dirty)
	l.dirty = l.dirty[:0]
	return end
}

// receive reads what the socket holds and runs the complete requests.
func (l *loop) receive(lc *lconn) {
	if cap(lc.in)-len(lc.in) < readSize/4 {
		in := make([]byte, len(lc.in), max(2*cap(lc.in), len(lc.in)+readSize))
		copy(in, lc.in)
		lc.in = in
	}
	n, err := unix.Read(lc.fd, lc.in[len(lc.in):cap(lc.in)])
	switch {
	case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
		return
	case err != nil:
		l.close(lc)
		return
	case n == 0:
		// end of stream: the requests received are run and their replies
		// sent, then the connection is closed (an incomplete request is
		// dropped)
		lc.eof = true
		l.watch(lc, lc.interest())
		if lc.gone {
			return
		}
		l.process(lc)
		l.queue(lc)
		return
	}
	lc.in = lc.in[:len(lc.in)+n]
	l.s.stats.netRx.Add(uint64(n))
	l.process(lc)
}

// process runs the complete requests received.
func (l *loop) process(lc *lconn) {
	c := lc.c
	lc.more = false
	for !lc.closing {
		if len(c.out)-lc.sent >= maxPending {
			lc.more = true
			break
		}
		args, n, err := lc.p.Parse(lc.in[lc.off:])
		if err != nil {
			c.out = resp.AppendError(c.out, "Protocol error")
			lc.closing = true
			break
		}
		if n == 0 {
			break
		}
		if len(args) > 0 {
			ran, own := l.s.dispatchOn(c, args, true)
			if !ran {
				if own {
					l.detach(lc)
				} else {
					c := lc.c
					l.offload(lc, n, func() {
						l.s.commitReplies(c, false)
						l.s.dispatch(c, args)
					})
				}
				return
			}
			if c.quit {
				lc.closing = true
			}
		}
		lc.off += n
	}
	if lc.off > 0 {
		rest := copy(lc.in, lc.in[lc.off:])
		lc.in = lc.in[:rest]
		lc.off = 0
	}
	if len(lc.in) == 0 && cap(lc.in) > 4*readSize {
		lc.in = nil
	}
	if len(c.out) > lc.sent || lc.closing {
		l.queue(lc)
	}
}

func (l *loop) queue(lc *lconn) {
	if !lc.queued {
		lc.queued = true
		l.dirty = append(l.dirty, lc)
	}
}

// send writes the pending replies; a full socket makes the loop wait for
// it before reading more from this client.
func (l *loop) send(lc *lconn) {
	c := lc.c
	for lc.sent < len(c.out) {
		n, err := unix.Write(lc.fd, c.out[lc.sent:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			if !lc.blocked {
				lc.blocked = true
				l.watch(lc, lc.interest())
			}
			return
		}
		if err != nil {
			l.close(lc)
			return
		}
		lc.sent += n
		l.s.stats.netTx.Add(uint64(n))
	}
	if cap(c.out) > 1<<20 {
		c.out = nil
	} else {
		c.out = c.out[:0]
	}
	lc.sent = 0
	if lc.closing || (lc.eof && !lc.more) {
		l.close(lc)
		return
	}
	if lc.blocked {
		lc.blocked = false
		l.watch(lc, lc.interest())
	}
	if lc.more {
		l.again = append(l.again, lc)
	}
}

// interest returns the events the loop waits for on lc: room to write
// while replies wait, else input until the client ends its stream.
func (lc *lconn) interest() uint32 {
	switch {
	case lc.blocked:
		return unix.EPOLLOUT
	case lc.eof:
		return 0
	}
	return unix.EPOLLIN | unix.EPOLLRDHUP
}

func (l *loop) watch(lc *lconn, events uint32) {
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, lc.fd, &unix.EpollEvent{Events: events, Fd: int32(lc.fd)}); err != nil {
		l.s.log.Error("event loop: epoll modify failed", "err", err)
		l.close(lc)
	}
}

// forget takes lc out of the loop.
func (l *loop) forget(lc *lconn) {
	lc.gone = true
	l.mu.Lock()
	delete(l.conns, lc.fd)
	l.mu.Unlock()
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, lc.fd, nil)
}

func (l *loop) close(lc *lconn) {
	if lc.gone {
		return
	}
	l.forget(lc)
	unix.Close(lc.fd)
	l.s.mirrors.remove(lc.c)
}

// offload runs job on a goroutine, which hands the connection back once
// done; n is the size of the request at lc.off that job runs (0: none).
func (l *loop) offload(lc *lconn, n int, job func()) {
	lc.busy, lc.reqLen = true, n
	// not watched meanwhile: its input would wake the loop for nothing
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, lc.fd, nil); err != nil {
		l.s.log.Error("event loop: epoll delete failed", "err", err)
	}
	l.s.wg.Add(1)
	go func() {
		defer l.s.wg.Done()
		job()
		l.mu.Lock()
		stopped := l.stopped
		if !stopped {
			l.done = append(l.done, lc)
		}
		l.mu.Unlock()
		if !stopped {
			var one [8]byte
			binary.NativeEndian.PutUint64(one[:], 1)
			_, _ = unix.Write(l.wakefd, one[:])
		}
	}()
}

// resume takes back the connections whose offloaded command is done.
func (l *loop) resume() {
	l.mu.Lock()
	done := l.done
	l.done = nil
	l.mu.Unlock()
	for _, lc := range done {
		if lc.gone {
			continue
		}
		lc.busy = false
		lc.off += lc.reqLen
		if lc.c.quit {
			lc.closing = true
		}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, lc.fd, &unix.EpollEvent{Events: lc.interest(), Fd: int32(lc.fd)}); err != nil {
			l.s.log.Error("event loop: epoll add failed", "err", err)
			l.close(lc)
			continue
		}
		l.process(lc)
	}
}

// detach hands lc to a goroutine of its own, which runs the requests from
// lc.in[lc.off:] on.
func (l *loop) detach(lc *lconn) {
	l.forget(lc)
	prefix := append([]byte(nil), lc.in[lc.off:]...)
	f := os.NewFile(uintptr(lc.fd), "zdb-client")
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		l.s.log.Error("connection handoff failed", "err", err)
		l.s.mirrors.remove(lc.c)
		return
	}
	lc.c.out = lc.c.out[lc.sent:]
	l.s.goServe(conn, lc.c, prefix)
}
