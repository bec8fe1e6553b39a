// Package zdb implements a client to 0-db (https://github.com/threefoldtech/0-DB),
// the key-value store zos runs for its zdb workloads and the hub's block
// store. It speaks to our cmd/zdb and to the original 0-db alike.
//
// The Client interface is the seed API used by the storage and provision
// code: namespace management over a small connection pool. Pool, which
// implements it, adds context-aware calls (namespace info, properties, and
// the data commands SET/GET/DEL/EXISTS) for callers that need them.
//
// Addresses are unix://<path> or tcp://host:port; tcp://pass@host:port sends
// pass with AUTH when a connection is dialed (the 0-db admin password).
package zdb

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Client is a connection to a 0-db (seed API). Its methods are safe for
// concurrent use.
type Client interface {
	// Connect creates the connection pool and checks the server with PING.
	Connect() error
	// Close releases the pool.
	Close() error
	// CreateNamespace creates a namespace (NSNEW).
	CreateNamespace(name string) error
	// Exist reports whether a namespace exists (NSINFO).
	Exist(name string) (bool, error)
	// DeleteNamespace removes a namespace and its data (NSDEL).
	DeleteNamespace(name string) error
	// Namespaces lists the namespace names (NSLIST).
	Namespaces() ([]string, error)
	// NamespaceSetSize sets the size limit of a namespace in bytes.
	NamespaceSetSize(name string, size uint64) error
	// NamespaceSetPassword sets the password of a namespace ("" clears it).
	NamespaceSetPassword(name, password string) error
	// NamespaceSetPublic makes a namespace publicly readable or not.
	NamespaceSetPublic(name string, public bool) error
	// DBSize returns the number of entries of the connection's namespace.
	DBSize() (uint64, error)
}

// Errors returned for 0-db error replies. Match them with errors.Is; the
// server's text is kept in a ServerError.
var (
	ErrNamespaceNotFound = errors.New("namespace not found")
	ErrNamespaceExists   = errors.New("namespace already exists")
	ErrPermissionDenied  = errors.New("permission denied")
	ErrKeyNotFound       = errors.New("key not found")
	ErrNoSpace           = errors.New("no space left on namespace")
	ErrReadOnly          = errors.New("namespace is read-only")
	ErrNotConnected      = errors.New("zdb client not connected")
)

// ServerError is an error reply of the server.
type ServerError struct {
	Command string
	Msg     string // the error line, without '-'
	kind    error
}

func (e *ServerError) Error() string { return fmt.Sprintf("zdb %s: %s", e.Command, e.Msg) }

// Unwrap returns the sentinel matching the reply, if any.
func (e *ServerError) Unwrap() error { return e.kind }

// replyKinds maps the 0-db error lines to sentinels.
var replyKinds = map[string]error{
	"Namespace not found":                         ErrNamespaceNotFound,
	"This namespace doesn't exists":               ErrNamespaceNotFound,
	"This namespace is not available":             ErrNamespaceExists,
	"Permission denied":                           ErrPermissionDenied,
	"Access denied":                               ErrPermissionDenied,
	"Namespace protected and private":             ErrPermissionDenied,
	"Authentication disabled":                     ErrPermissionDenied,
	"Key not found":                               ErrKeyNotFound,
	"No space left on this namespace":             ErrNoSpace,
	"Namespace is in read-only mode":              ErrReadOnly,
	"Namespace is temporarily locked (read-only)": ErrReadOnly,
}

func wrapErr(cmd string, err error) error {
	if err == nil {
		return nil
	}
	var re redis.Error
	if errors.As(err, &re) {
		msg := string(re)
		return &ServerError{Command: cmd, Msg: msg, kind: replyKinds[msg]}
	}
	return fmt.Errorf("zdb %s: %w", cmd, err)
}

// Options tune a Pool. The zero values give the zos defaults.
type Options struct {
	MaxActive   int           // connections at most (3)
	IdleTimeout time.Duration // idle connections are closed after (1 min)
	Timeout     time.Duration // connect, read and write timeout (5 s)
	// Namespace, when set, is SELECTed (with NamespacePassword) on every
	// connection, so data commands work in it.
	Namespace         string
	NamespacePassword string
}

// Pool is a Client over a redigo connection pool.
type Pool struct {
	addr string
	opts Options
	pool *redis.Pool
}

var _ Client = (*Pool)(nil)

// New returns a Client for the 0-db at addr (seed API). Call Connect first.
func New(addr string) Client { return NewPool(addr, Options{}) }

// NewPool returns a Pool for addr. Call Connect first.
func NewPool(addr string, opts Options) *Pool {
	if opts.MaxActive <= 0 {
		opts.MaxActive = 3
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = time.Minute
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	return &Pool{addr: addr, opts: opts}
}

// Connect creates the pool and sends PING.
func (p *Pool) Connect() error {
	if p.pool == nil {
		pool, err := p.newPool()
		if err != nil {
			return fmt.Errorf("zdb %s: %w", p.addr, err)
		}
		p.pool = pool
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.Timeout)
	defer cancel()
	_, err := p.do(ctx, "PING")
	return err
}

// Close closes the pool.
func (p *Pool) Close() error {
	if p.pool == nil {
		return nil
	}
	err := p.pool.Close()
	p.pool = nil
	return err
}

func (p *Pool) newPool() (*redis.Pool, error) {
	u, err := url.Parse(p.addr)
	if err != nil {
		return nil, err
	}
	var network, host string
	switch u.Scheme {
	case "tcp":
		network, host = "tcp", u.Host
	case "unix":
		network, host = "unix", u.Path
	default:
		return nil, fmt.Errorf("unknown scheme %q, expecting tcp or unix", u.Scheme)
	}
	dialOpts := []redis.DialOption{
		redis.DialConnectTimeout(p.opts.Timeout),
		redis.DialReadTimeout(p.opts.Timeout),
		redis.DialWriteTimeout(p.opts.Timeout),
	}
	if u.User != nil && u.User.Username() != "" {
		dialOpts = append(dialOpts, redis.DialPassword(u.User.Username()))
	}
	ns, nsPass := p.opts.Namespace, p.opts.NamespacePassword
	return &redis.Pool{
		DialContext: func(ctx context.Context) (redis.Conn, error) {
			c, err := redis.DialContext(ctx, network, host, dialOpts...)
			if err != nil {
				return nil, err
			}
			if ns != "" {
				args := []any{ns}
				if nsPass != "" {
					args = append(args, nsPass)
				}
				if _, err := c.Do("SELECT", args...); err != nil {
					c.Close()
					return nil, wrapErr("SELECT", err)
				}
			}
			return c, nil
		},
		TestOnBorrow: func(c redis.Conn, t time.Time) error {
			if time.Since(t) < 10*time.Second {
				return nil
			}
			_, err := c.Do("PING")
			return err
		},
		MaxActive:   p.opts.MaxActive,
		MaxIdle:     p.opts.MaxActive,
		IdleTimeout: p.opts.IdleTimeout,
		Wait:        true,
	}, nil
}

// do runs one command on a pooled connection.
func (p *Pool) do(ctx context.Context, cmd string, args ...any) (any, error) {
	if p.pool == nil {
		return nil, ErrNotConnected
	}
	c, err := p.pool.GetContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("zdb %s: %w", p.addr, err)
	}
	defer c.Close()
	reply, err := redis.DoContext(c, ctx, cmd, args...)
	return reply, wrapErr(cmd, err)
}

// Do runs an arbitrary command (for tests and tools).
func (p *Pool) Do(ctx context.Context, cmd string, args ...any) (any, error) {
	return p.do(ctx, cmd, args...)
}

func (p *Pool) ok(ctx context.Context, cmd string, args ...any) error {
	_, err := redis.String(p.do(ctx, cmd, args...))
	return err
}

func bg() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Minute)
}

// CreateNamespace implements Client.
func (p *Pool) CreateNamespace(name string) error {
	ctx, cancel := bg()
	defer cancel()
	return p.ok(ctx, "NSNEW", name)
}

// Exist implements Client: any NSINFO reply means yes, "not found" means no.
func (p *Pool) Exist(name string) (bool, error) {
	ctx, cancel := bg()
	defer cancel()
	_, err := p.do(ctx, "NSINFO", name)
	if errors.Is(err, ErrNamespaceNotFound) {
		return false, nil
	}
	return err == nil, err
}

// DeleteNamespace implements Client.
func (p *Pool) DeleteNamespace(name string) error {
	ctx, cancel := bg()
	defer cancel()
	return p.ok(ctx, "NSDEL", name)
}

// Namespaces implements Client.
func (p *Pool) Namespaces() ([]string, error) {
	ctx, cancel := bg()
	defer cancel()
	return redis.Strings(p.do(ctx, "NSLIST"))
}

// NamespaceSetSize implements Client.
func (p *Pool) NamespaceSetSize(name string, size uint64) error {
	return p.SetProperty(context.Background(), name, "maxsize", strconv.FormatUint(size, 10))
}

// NamespaceSetPassword implements Client. An empty password clears it.
func (p *Pool) NamespaceSetPassword(name, password string) error {
	if password == "" {
		password = "*"
	}
	return p.SetProperty(context.Background(), name, "password", password)
}

// NamespaceSetPublic implements Client.
func (p *Pool) NamespaceSetPublic(name string, public bool) error {
	v := "0"
	if public {
		v = "1"
	}
	return p.SetProperty(context.Background(), name, "public", v)
}

// SetProperty sets a namespace property (NSSET name prop value): maxsize,
// password, public, worm, mode, lock.
func (p *Pool) SetProperty(ctx context.Context, name, prop, value string) error {
	return p.ok(ctx, "NSSET", name, prop, value)
}

// DBSize implements Client.
func (p *Pool) DBSize() (uint64, error) {
	ctx, cancel := bg()
	defer cancel()
	return redis.Uint64(p.do(ctx, "DBSIZE"))
}

// NamespaceInfo is the parsed NSINFO reply.
type NamespaceInfo struct {
	Name           string
	Entries        uint64
	Public         bool
	Password       bool
	Worm           bool
	Locked         bool
	Mode           string // userkey or sequential
	DataSizeBytes  uint64
	DataLimitBytes uint64 // 0: unlimited
	IndexSizeBytes uint64
	Fields         map[string]string // every "key: value" line
}

// NamespaceInfo returns NSINFO of a namespace.
func (p *Pool) NamespaceInfo(ctx context.Context, name string) (NamespaceInfo, error) {
	s, err := redis.String(p.do(ctx, "NSINFO", name))
	if err != nil {
		return NamespaceInfo{}, err
	}
	return ParseNamespaceInfo(s), nil
}

// ParseNamespaceInfo parses the text of an NSINFO reply.
func ParseNamespaceInfo(s string) NamespaceInfo {
	in := NamespaceInfo{Fields: map[string]string{}}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		in.Fields[k] = v
	}
	u := func(k string) uint64 { n, _ := strconv.ParseUint(in.Fields[k], 10, 64); return n }
	in.Name = in.Fields["name"]
	in.Entries = u("entries")
	in.Public = in.Fields["public"] == "yes"
	in.Password = in.Fields["password"] == "yes"
	in.Worm = in.Fields["worm"] == "yes"
	in.Locked = in.Fields["locked"] == "yes"
	in.Mode = in.Fields["mode"]
	in.DataSizeBytes = u("data_size_bytes")
	in.DataLimitBytes = u("data_limits_bytes")
	in.IndexSizeBytes = u("index_size_bytes")
	return in
}

// Set stores value under key in the pool's namespace and returns the key
// (the new id in sequential mode, where key is empty).
func (p *Pool) Set(ctx context.Context, key, value []byte) ([]byte, error) {
	k, err := redis.Bytes(p.do(ctx, "SET", key, value))
	if errors.Is(err, redis.ErrNil) {
		return key, nil // unchanged value
	}
	return k, err
}

// Get returns the value of key, or ErrKeyNotFound.
func (p *Pool) Get(ctx context.Context, key []byte) ([]byte, error) {
	v, err := redis.Bytes(p.do(ctx, "GET", key))
	if errors.Is(err, redis.ErrNil) {
		return nil, fmt.Errorf("zdb GET: %w", ErrKeyNotFound)
	}
	return v, err
}

// Exists reports whether key exists.
func (p *Pool) Exists(ctx context.Context, key []byte) (bool, error) {
	return redis.Bool(p.do(ctx, "EXISTS", key))
}

// Del deletes key (ErrKeyNotFound if missing).
func (p *Pool) Del(ctx context.Context, key []byte) error {
	return p.ok(ctx, "DEL", key)
}
