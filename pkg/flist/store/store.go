// Package store reaches the block stores of flists: a directory (dir://), a
// 0-db or redis server (zdb://, redis://, ardb://), an HTTP server such as
// our hub (http://, https://) and an S3 bucket (s3://, s3s://, s3s+tls://),
// plus a Router that spreads blocks over several stores by the first byte of
// their id, as rfs routes do.
//
// Stores keep encoded blocks under their raw id; they know nothing about
// encryption. Every Store is safe for concurrent use.
package store

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/zos-go/zos/pkg/flist/format"
)

var (
	// ErrNotFound is returned by Get for a block the store does not have
	// (an empty value counts as missing).
	ErrNotFound = errors.New("block not found")
	// ErrReadOnly is returned by Set on a store that cannot be written.
	ErrReadOnly = errors.New("store is read-only")
	// ErrInvalidURL is returned by Open for a URL it cannot use.
	ErrInvalidURL = errors.New("invalid store url")
	// ErrNoRoute is returned when no store serves a block id.
	ErrNoRoute = errors.New("no store for block")
)

// Store keeps encoded blocks by id.
type Store interface {
	// Get returns the block stored under key; ErrNotFound if absent.
	Get(ctx context.Context, key []byte) ([]byte, error)
	// Set stores data under key. Storing an existing key is a no-op
	// success (blocks are content addressed).
	Set(ctx context.Context, key, data []byte) error
	// Exists reports whether key is stored.
	Exists(ctx context.Context, key []byte) (bool, error)
	// String is the store URL without its password.
	String() string
	// Close releases connections.
	Close() error
}

// Options configures Open.
type Options struct {
	// Authorize, when set, signs write requests to an http(s) store (the
	// hub authenticates block uploads). Without it http stores are
	// read-only.
	Authorize func(*http.Request) error
	// HTTPClient for http(s) stores; s3 stores use its Transport. Default:
	// one with DialTimeout.
	HTTPClient *http.Client
	// DialTimeout bounds connecting and each network round trip
	// (default 5 s). Callers bound whole operations with their ctx.
	DialTimeout time.Duration
}

func (o Options) dialTimeout() time.Duration {
	if o.DialTimeout > 0 {
		return o.DialTimeout
	}
	return 5 * time.Second
}

// Open returns the store at rawURL: dir:///path,
// zdb://[user[:pass]@]host[:port][/namespace] (port 9900 by default; the
// 0-fs form zdb://pass@host also works), zdb:///path/to/socket[?ns=namespace],
// redis:// and ardb:// (same as zdb), http(s)://host/base, and
// s3://key:secret@host[:port]/bucket[?region=r] (plain HTTP; s3s:// and
// s3s+tls:// use HTTPS; region us-east-1 by default; object name hex(id),
// path-style addressing).
func Open(rawURL string, opts Options) (Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("store %q: %v: %w", redact(rawURL), err, ErrInvalidURL)
	}
	switch u.Scheme {
	case "dir":
		return newDir(u)
	case "zdb", "redis", "ardb":
		return newZDB(u, opts)
	case "http", "https":
		return newHTTP(u, opts)
	case "s3", "s3s", "s3s+tls":
		return newS3(u, opts)
	}
	return nil, fmt.Errorf("store %q: scheme %q: %w", redact(rawURL), u.Scheme, ErrInvalidURL)
}

func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "<unparsable url>"
}

// StripPassword returns rawURL without the password of its user info, for
// URLs written into flists that others download.
func StripPassword(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.User == nil {
		return rawURL
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.User(u.User.Username())
	} else if u.Scheme == "zdb" || u.Scheme == "redis" || u.Scheme == "ardb" {
		u.User = nil // zdb://pass@host: the user part is the password
	}
	return u.String()
}

// Route is a store serving the block ids whose first byte is in [Start, End].
type Route struct {
	Start, End uint8
	Store      Store
}

// Router spreads blocks over routes: Get tries the matching stores in random
// order and returns the first hit; Set writes to every matching store.
type Router struct {
	routes []Route
}

// NewRouter returns a Router over routes.
func NewRouter(routes []Route) *Router { return &Router{routes: routes} }

// FromRoutes opens a Router on the routes of an flist, or on fallback (all
// ids) when the flist has none. Stores that cannot be opened are skipped if
// at least one opens.
func FromRoutes(routes []format.Route, fallback string, opts Options) (*Router, error) {
	if len(routes) == 0 {
		if fallback == "" {
			return nil, fmt.Errorf("flist has no routes and no storage url: %w", ErrNoRoute)
		}
		routes = []format.Route{{Start: 0, End: 255, URL: fallback}}
	}
	var out []Route
	var errs []error
	for _, r := range routes {
		s, err := Open(r.URL, opts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, Route{Start: r.Start, End: r.End, Store: s})
	}
	if len(out) == 0 {
		return nil, errors.Join(errs...)
	}
	return NewRouter(out), nil
}

func (r *Router) matching(key []byte) []Store {
	if len(key) == 0 {
		return nil
	}
	var out []Store
	for _, rt := range r.routes {
		if key[0] >= rt.Start && key[0] <= rt.End {
			out = append(out, rt.Store)
		}
	}
	return out
}

// Get implements Store.
func (r *Router) Get(ctx context.Context, key []byte) ([]byte, error) {
	stores := r.matching(key)
	if len(stores) == 0 {
		return nil, fmt.Errorf("block %x: %w", key, ErrNoRoute)
	}
	rand.Shuffle(len(stores), func(i, j int) { stores[i], stores[j] = stores[j], stores[i] })
	var errs []error
	for _, s := range stores {
		data, err := s.Get(ctx, key)
		if err == nil {
			return data, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	allMissing := true
	for _, err := range errs {
		allMissing = allMissing && errors.Is(err, ErrNotFound)
	}
	if allMissing {
		return nil, fmt.Errorf("block %x: %w", key, ErrNotFound)
	}
	return nil, errors.Join(errs...)
}

// Set implements Store.
func (r *Router) Set(ctx context.Context, key, data []byte) error {
	stores := r.matching(key)
	if len(stores) == 0 {
		return fmt.Errorf("block %x: %w", key, ErrNoRoute)
	}
	for _, s := range stores {
		if err := s.Set(ctx, key, data); err != nil {
			return err
		}
	}
	return nil
}

// Exists implements Store.
func (r *Router) Exists(ctx context.Context, key []byte) (bool, error) {
	var errs []error
	for _, s := range r.matching(key) {
		ok, err := s.Exists(ctx, key)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			return true, nil
		}
	}
	return false, errors.Join(errs...)
}

// String lists the routes.
func (r *Router) String() string {
	parts := make([]string, 0, len(r.routes))
	for _, rt := range r.routes {
		parts = append(parts, fmt.Sprintf("%02x-%02x=%s", rt.Start, rt.End, rt.Store))
	}
	return strings.Join(parts, ",")
}

// Close closes every store.
func (r *Router) Close() error {
	var errs []error
	for _, rt := range r.routes {
		errs = append(errs, rt.Store.Close())
	}
	return errors.Join(errs...)
}

func hexKey(key []byte) (string, error) {
	if len(key) < 2 {
		return "", fmt.Errorf("block id of %d bytes: %w", len(key), ErrInvalidURL)
	}
	return hex.EncodeToString(key), nil
}
