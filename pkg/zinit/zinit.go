// Package zinit exposes function to interact with zinit service life cycle
// management: a client of zinit's control socket (the line protocol of
// zinit v0.1, as the zos v0.4 client spoke it) and helpers that write service
// files.
//
// A typical helper that must outlive its caller:
//
//	cl, _ := zinit.New("", zinit.WithConfigDir(dir))
//	_ = cl.AddService("zdb@pool1", zinit.InitService{Exec: "zdb --listen 127.0.0.1:9900"})
//	_ = cl.Monitor("zdb@pool1")
//	...
//	_ = cl.Destroy(ctx, "zdb@pool1") // stop, wait until gone, forget, remove the file
//
// Unlike the original client, a Client is safe for concurrent use and redials
// when zinit was restarted.
package zinit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/zos-go/zos/internal/zinit/proto"
)

// Default paths of a node's zinit.
const (
	DefaultSocket    = "/var/run/zinit.sock"
	DefaultConfigDir = "/etc/zinit"
	// DefaultTimeout bounds one request of the methods without a context.
	DefaultTimeout = 30 * time.Second
)

// Errors reported by zinit, matchable with errors.Is.
var (
	ErrUnknownService   = proto.ErrUnknownService
	ErrAlreadyMonitored = proto.ErrAlreadyMonitored
	ErrNotRunning       = proto.ErrNotRunning
	ErrTargetNotDown    = proto.ErrTargetNotDown
	ErrServiceRunning   = proto.ErrServiceRunning
	ErrInvalidService   = proto.ErrInvalidService
	ErrInvalidSignal    = proto.ErrInvalidSignal
	ErrInvalidArguments = proto.ErrInvalidArguments
	ErrUnknownCommand   = proto.ErrUnknownCommand
	ErrInvalidCommand   = proto.ErrInvalidCommand
	ErrRequestTooLong   = proto.ErrRequestTooLong
	ErrShuttingDown     = proto.ErrShuttingDown
	ErrNotSupported     = proto.ErrNotSupported
	// ErrRemote wraps errors whose text matches no known form.
	ErrRemote = proto.ErrRemote
	// ErrProtocol reports a malformed response.
	ErrProtocol = proto.ErrProtocol
)

// Client talks to zinit over its unix socket. It keeps one connection and is
// safe for concurrent use (requests are serialised).
type Client struct {
	socket    string
	logSocket string
	configDir string
	timeout   time.Duration

	mu   sync.Mutex
	conn net.Conn      // guarded by mu; nil when not connected
	r    *bufio.Reader // guarded by mu
}

// Option configures a Client.
type Option func(*Client)

// WithConfigDir sets the directory AddService, RemoveService and Get use
// (default DefaultConfigDir).
func WithConfigDir(dir string) Option { return func(c *Client) { c.configDir = dir } }

// WithLogSocket sets the log socket (default log.sock beside the socket).
func WithLogSocket(path string) Option { return func(c *Client) { c.logSocket = path } }

// WithTimeout sets the bound of one request of the methods without a context.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// New returns a client of the zinit listening on socket ("" means
// DefaultSocket). Like the original it connects at once, so an absent zinit
// is reported here.
func New(socket string, opts ...Option) (*Client, error) {
	if socket == "" {
		socket = DefaultSocket
	}
	c := &Client{socket: socket, configDir: DefaultConfigDir, timeout: DefaultTimeout}
	for _, o := range opts {
		o(c)
	}
	if c.logSocket == "" {
		c.logSocket = filepath.Join(filepath.Dir(socket), "log.sock")
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.dialLocked(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Socket returns the control socket path.
func (c *Client) Socket() string { return c.socket }

// ConfigDir returns the directory of service files.
func (c *Client) ConfigDir() string { return c.configDir }

// Close closes the connection. The client redials if used again.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn, c.r = nil, nil
	return err
}

func (c *Client) dialLocked(ctx context.Context) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.socket)
	if err != nil {
		return fmt.Errorf("zinit %s: %w", c.socket, err)
	}
	c.conn, c.r = conn, bufio.NewReader(conn)
	return nil
}

// Do sends one raw command (words are quoted as needed) and returns the body
// lines of the response, or the error zinit reported.
func (c *Client) Do(ctx context.Context, cmd string, args ...string) ([]string, error) {
	line := proto.Request{Cmd: cmd, Args: args}.String() + "\n"
	c.mu.Lock()
	defer c.mu.Unlock()
	for attempt := 0; ; attempt++ {
		reused := c.conn != nil
		if !reused {
			if err := c.dialLocked(ctx); err != nil {
				return nil, err
			}
		}
		resp, sent, err := c.roundTripLocked(ctx, line)
		if err == nil {
			return resp.Lines, resp.Err()
		}
		c.conn.Close()
		c.conn, c.r = nil, nil
		// A kept connection may have been closed by a zinit that restarted:
		// retry once when the command surely was not executed.
		if reused && attempt == 0 && (!sent || errors.Is(err, io.EOF)) && ctx.Err() == nil {
			continue
		}
		return nil, fmt.Errorf("zinit %s: %s: %w", c.socket, cmd, err)
	}
}

func (c *Client) roundTripLocked(ctx context.Context, line string) (proto.Response, bool, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Time{}
	}
	_ = c.conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := io.WriteString(c.conn, line); err != nil {
		if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
			return proto.Response{}, false, err
		}
		return proto.Response{}, true, err
	}
	resp, err := proto.ReadResponse(c.r)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return resp, true, err
}

// cmd runs a command of the methods without a context.
func (c *Client) cmd(cmd string, args ...string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	return c.Do(ctx, cmd, args...)
}
