// Package hub is the flist repository of the grid (served by cmd/explorer):
// users upload, list, alias and delete flists, nodes download them and their
// MD5 (Flister.FlistHash), and the block store behind them (a 0-db served
// by our zdb, or a directory) is reachable over HTTP for downloads and
// signed uploads.
//
// Routes (relative to where the handler is mounted; mount it at the root of
// its host, or under a prefix with http.StripPrefix):
//
//	GET    /{user}/{name}                  the flist (aliases followed)
//	GET    /{user}/{name}.md5              its hex MD5 and a newline
//	GET    /api/flist                      users, JSON ["alice", ...]
//	GET    /api/flist/{user}               that user's flists, JSON [Info]
//	GET    /api/flist/{user}/{name}/light  Info (an alias shows its target)
//	GET    /api/flist/{user}/{name}        Info with Contents [{path, size}]
//	PUT    /api/flist/{user}/{name}        upload (signed by user)
//	PUT    /api/flist/{user}/{name}/link   alias {"target": "other.flist" | "user/other.flist"} (signed by user)
//	DELETE /api/flist/{user}/{name}        delete a flist or alias (signed by user)
//	GET    /blocks/{hex[0:2]}/{hex}, /blocks/{hex}    a block (rfs http store layout)
//	HEAD   same                            200 when present
//	PUT    /blocks/{hex}                   store a block (signed by any user); the
//	                                       id must be the BLAKE2b hash of the data
//
// Uploaded flists must parse (rfs .fl or 0-flist archive). Flist names end
// in .flist or .fl. On disk, content lives once under <Dir>/.objects/<md5>
// and <Dir>/<user>/<name> is a symlink to it, or to another flist for an
// alias, so an upload or alias replaces a name atomically.
package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/zos-go/zos/pkg/flist/store"
)

// Config configures a hub.
type Config struct {
	// Dir holds the flists.
	Dir string
	// Blocks is the block store served under /blocks.
	Blocks store.Store
	// Keys resolves users to their public keys.
	Keys Keys
	// MaxFlistBytes bounds an upload.
	MaxFlistBytes int64
	// MaxSkew bounds the clock difference of signatures.
	MaxSkew time.Duration
	// MaxContents bounds the entries listed by the full info route.
	MaxContents int
}

// DefaultConfig returns the limits; Dir, Blocks and Keys must be set.
func DefaultConfig() Config {
	return Config{MaxFlistBytes: 1 << 30, MaxSkew: 5 * time.Minute, MaxContents: 200_000}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if !filepath.IsAbs(c.Dir) {
		return fmt.Errorf("hub dir %q: not an absolute path", c.Dir)
	}
	if c.Blocks == nil || c.Keys == nil {
		return fmt.Errorf("hub: a block store and a key source are required")
	}
	if c.MaxFlistBytes <= 0 || c.MaxSkew <= 0 || c.MaxContents <= 0 {
		return fmt.Errorf("hub: limits must be positive")
	}
	return nil
}

// Info describes one flist of a user.
type Info struct {
	Name string `json:"name"`
	// Type is "regular" or "symlink" (an alias).
	Type string `json:"type"`
	// Target of an alias: "name" (same user) or "user/name".
	Target string `json:"target,omitempty"`
	Size   int64  `json:"size"`
	MD5    string `json:"md5"`
	// Updated is the Unix time of the upload or alias.
	Updated int64 `json:"updated"`
	// Contents lists the regular files (full info route only).
	Contents []Content `json:"content,omitempty"`
}

// Content is one regular file of an flist.
type Content struct {
	Path string `json:"path"`
	Size uint64 `json:"size"`
}

var (
	// ErrInvalidName is returned for a user or flist name the hub refuses.
	ErrInvalidName = errors.New("invalid name")
	// ErrNotFound is returned for a missing flist.
	ErrNotFound = errors.New("flist not found")
	// ErrInvalidFlist is returned for an upload that is no flist.
	ErrInvalidFlist = errors.New("invalid flist")
)

var (
	userRe  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	flistRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:+-]{0,250}\.(flist|fl)$`)
)

// reserved names cannot be users: they are routes.
var reserved = map[string]bool{"api": true, "blocks": true}

func validUser(u string) error {
	if !userRe.MatchString(u) || reserved[u] || strings.Contains(u, "..") {
		return fmt.Errorf("user %q: %w", u, ErrInvalidName)
	}
	return nil
}

func validFlist(n string) error {
	if !flistRe.MatchString(n) || strings.Contains(n, "..") {
		return fmt.Errorf("flist name %q: %w", n, ErrInvalidName)
	}
	return nil
}

// Server is the hub's http.Handler. It is safe for concurrent use.
type Server struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux
	mu  sync.Mutex // serialises changes of names and objects
}

// New returns a hub. It creates its directories on first use.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /api/flist", s.listUsers)
	s.mux.HandleFunc("GET /api/flist/{user}", s.listFlists)
	s.mux.HandleFunc("GET /api/flist/{user}/{name}", s.info(true))
	s.mux.HandleFunc("GET /api/flist/{user}/{name}/light", s.info(false))
	s.mux.HandleFunc("PUT /api/flist/{user}/{name}", s.upload)
	s.mux.HandleFunc("PUT /api/flist/{user}/{name}/link", s.link)
	s.mux.HandleFunc("DELETE /api/flist/{user}/{name}", s.remove)
	s.mux.HandleFunc("GET /blocks/{id}", s.getBlock)
	s.mux.HandleFunc("GET /blocks/{prefix}/{id}", s.getBlock)
	s.mux.HandleFunc("PUT /blocks/{id}", s.putBlock)
	s.mux.HandleFunc("GET /{user}/{name}", s.download)
	return s, nil
}

// Run removes, at start and every hour until ctx is done, the objects no
// flist points at any more and the temporary files of uploads that died.
func (s *Server) Run(ctx context.Context) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		s.mu.Lock()
		s.gc()
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrUnauthorized):
		code = http.StatusUnauthorized
	case errors.Is(err, errForbidden):
		code = http.StatusForbidden
	case errors.Is(err, ErrInvalidName), errors.Is(err, ErrInvalidFlist), errors.Is(err, errBadBody):
		code = http.StatusBadRequest
	case errors.Is(err, ErrNotFound), errors.Is(err, store.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, errTooLarge):
		code = http.StatusRequestEntityTooLarge
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

var (
	errForbidden = errors.New("forbidden")
	errBadBody   = errors.New("bad request body")
	errTooLarge  = errors.New("request body too large")
)

// authorize checks the signature and that it is owner's (any user when
// owner is empty).
func (s *Server) authorize(r *http.Request, owner string) (string, error) {
	user, err := verify(r, s.cfg.Keys, s.cfg.MaxSkew, time.Now())
	if err != nil {
		return "", err
	}
	if owner != "" && user != owner {
		return "", fmt.Errorf("user %q may not change %q's flists: %w", user, owner, errForbidden)
	}
	return user, nil
}
