// Package redisurl parses the redis endpoints of container log and stats
// backends: redis://[[user]:password@]host[:port]/channel (port 6379 when
// omitted). The path is a pub/sub channel, not a database number.
package redisurl

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// DefaultPort is the redis port used when the URL has none.
const DefaultPort = 6379

// ErrInvalid is wrapped by every parse error.
var ErrInvalid = errors.New("invalid redis url")

// Endpoint is a parsed redis URL.
type Endpoint struct {
	// Addr is host:port.
	Addr string
	// Username and Password authenticate (AUTH) when Password is set.
	Username string
	Password string
	// Channel is the pub/sub channel lines or metrics are published on.
	Channel string
}

// Parse parses s; the scheme must be redis, the host and channel non-empty.
func Parse(s string) (Endpoint, error) {
	bad := func(why string) (Endpoint, error) {
		return Endpoint{}, fmt.Errorf("%q: %s: %w", s, why, ErrInvalid)
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("not a url")
	}
	if u.Scheme != "redis" {
		return bad("scheme must be redis")
	}
	if u.Opaque != "" || u.RawQuery != "" || u.Fragment != "" {
		return bad("unexpected opaque part, query or fragment")
	}
	host := u.Hostname()
	if host == "" {
		return bad("missing host")
	}
	if !validHost(host) {
		return bad("bad host")
	}
	port := DefaultPort
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return bad("bad port")
		}
		port = n
	}
	channel := strings.TrimPrefix(u.Path, "/")
	if channel == "" {
		return bad("missing channel")
	}
	if strings.ContainsAny(channel, "\r\n\x00") {
		return bad("control character in channel")
	}
	e := Endpoint{Addr: net.JoinHostPort(host, strconv.Itoa(port)), Channel: channel}
	if u.User != nil {
		e.Username = u.User.Username()
		e.Password, _ = u.User.Password()
		if e.Password == "" && e.Username != "" {
			// redis://secret@host/ch: a lone user part is the password, as
			// the original's log shim read it.
			e.Password, e.Username = e.Username, ""
		}
	}
	return e, nil
}

// validHost accepts an IP address or a DNS name (letters, digits, '.',
// '-' and '_').
func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	for _, r := range h {
		ok := r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !ok {
			return false
		}
	}
	return true
}

// String formats the endpoint back as a URL (password included).
func (e Endpoint) String() string {
	u := url.URL{Scheme: "redis", Host: e.Addr, Path: "/" + e.Channel}
	switch {
	case e.Username != "":
		u.User = url.UserPassword(e.Username, e.Password)
	case e.Password != "":
		u.User = url.UserPassword("", e.Password)
	}
	return u.String()
}
