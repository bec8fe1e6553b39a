package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultNamespace is the namespace every connection starts in.
const DefaultNamespace = "default"

// MaxNameLength is the longest namespace name.
const MaxNameLength = 128

// Config configures the engine.
type Config struct {
	IndexDir string
	DataDir  string
	// Mode is the mode of every namespace unless Mixed is set, in which case
	// each namespace picks its own (NSSET mode), user by default.
	Mode  Mode
	Mixed bool
	// DataSize is the size at which a data file is closed and the next
	// index/data pair started.
	DataSize int64
	// MaxSize limits the payload bytes of the default namespace (0: none).
	MaxSize uint64
	// Sync acknowledges writes only once they are on disk (group commit).
	Sync bool
	// SyncTime is the period of the background fsync when Sync is off
	// (0: never).
	SyncTime time.Duration
	// RotateTime, when set, closes every namespace's current index/data
	// pair that holds data and starts the next one this often (--rotate),
	// so old data sits in files that no longer change (backups, offsite
	// copies by the hooks).
	RotateTime time.Duration
	// ProtectPassword, when set, protects the default namespace: it becomes
	// public (read-only) with this password (the --protect admin password).
	ProtectPassword string
}

// DefaultConfig returns the 0-db defaults.
func DefaultConfig() Config {
	return Config{
		IndexDir: "./zdb-index",
		DataDir:  "./zdb-data",
		Mode:     ModeUser,
		DataSize: 256 << 20,
		SyncTime: time.Second,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.IndexDir == "" || c.DataDir == "":
		return errors.New("engine config: index and data directories are required")
	case c.DataSize < DataHeaderSize+DataEntrySize+1 || c.DataSize > 1<<32-1:
		return fmt.Errorf("engine config: datasize %d out of range", c.DataSize)
	case c.Mode != ModeUser && c.Mode != ModeSeq:
		return fmt.Errorf("engine config: mode %d unknown", c.Mode)
	case c.SyncTime < 0:
		return errors.New("engine config: negative synctime")
	case c.RotateTime < 0:
		return errors.New("engine config: negative rotate time")
	}
	return nil
}

// Stats are the server-wide disk counters INFO reports.
type Stats struct {
	IndexReadBytes   atomic.Uint64
	IndexWriteBytes  atomic.Uint64
	DataReadBytes    atomic.Uint64
	DataWriteBytes   atomic.Uint64
	IndexReadFailed  atomic.Uint64
	IndexWriteFailed atomic.Uint64
	DataReadFailed   atomic.Uint64
	DataWriteFailed  atomic.Uint64
}

// Engine holds every namespace of a 0-db instance.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	stats Stats

	// OnEvent, when set before Open, is called for hook events (jump-index,
	// jump-data, namespace-created, namespace-deleted, namespace-reloaded).
	OnEvent func(event string, args ...string)

	mu    sync.RWMutex
	ns    map[string]*Namespace // guarded by mu
	order []string              // namespace names in creation order; guarded by mu
}

// New returns an engine; Open loads it.
func New(cfg Config, log *slog.Logger) *Engine {
	return &Engine{cfg: cfg, log: log, ns: map[string]*Namespace{}}
}

// Config returns the engine configuration.
func (e *Engine) Config() Config { return e.cfg }

// Stats returns the disk counters.
func (e *Engine) Stats() *Stats { return &e.stats }

func (e *Engine) event(name string, args ...string) {
	if e.OnEvent != nil {
		e.OnEvent(name, args...)
	}
}

// Open loads every sub-directory of the index directory as a namespace and
// creates the default namespace if it is missing. A damaged file makes Open
// fail with an error naming it.
func (e *Engine) Open() error {
	if err := e.cfg.Validate(); err != nil {
		return err
	}
	for _, d := range []string{e.cfg.IndexDir, e.cfg.DataDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("engine: %w", err)
		}
	}
	names := []string{DefaultNamespace}
	entries, err := os.ReadDir(e.cfg.IndexDir)
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, d := range entries {
		if d.IsDir() && d.Name() != DefaultNamespace && ValidName(d.Name()) == nil {
			names = append(names, d.Name())
		}
	}
	for _, name := range names {
		ns, err := e.openNamespace(name, e.defaultDescriptor(name))
		if err != nil {
			e.closeAll()
			return err
		}
		if name == DefaultNamespace && e.cfg.ProtectPassword != "" {
			ns.desc.Password, ns.desc.Public = e.cfg.ProtectPassword, true
		}
		if name == DefaultNamespace {
			ns.desc.MaxSize = e.cfg.MaxSize
		}
		e.ns[name] = ns
		e.order = append(e.order, name)
		e.log.Info("namespace loaded", "namespace", name, "mode", ns.mode.String(), "entries", ns.entries)
	}
	return nil
}

func (e *Engine) defaultDescriptor(name string) Descriptor {
	d := Descriptor{Name: name, Public: true}
	if name == DefaultNamespace {
		d.MaxSize = e.cfg.MaxSize
	}
	return d
}

// Run fsyncs every namespace each SyncTime (unless Sync) and rotates their
// files each RotateTime, until ctx ends; then it syncs once more.
func (e *Engine) Run(ctx context.Context) error {
	var syncC, rotateC <-chan time.Time
	if e.cfg.SyncTime > 0 && !e.cfg.Sync {
		t := time.NewTicker(e.cfg.SyncTime)
		defer t.Stop()
		syncC = t.C
	}
	if e.cfg.RotateTime > 0 {
		t := time.NewTicker(e.cfg.RotateTime)
		defer t.Stop()
		rotateC = t.C
	}
	for {
		select {
		case <-ctx.Done():
			if syncC != nil {
				e.SyncAll()
			}
			return nil
		case <-syncC:
			e.SyncAll()
		case <-rotateC:
			e.RotateAll()
		}
	}
}

// RotateAll starts the next index/data pair of every namespace whose
// current pair holds data (--rotate).
func (e *Engine) RotateAll() { e.eachNamespace("periodic rotation", (*Namespace).rotateIfUsed) }

// SyncAll fsyncs every namespace that has unsynced writes.
func (e *Engine) SyncAll() { e.eachNamespace("periodic sync", (*Namespace).Sync) }

// eachNamespace calls fn on every open namespace, outside the engine's
// lock, logging failures as what.
func (e *Engine) eachNamespace(what string, fn func(*Namespace) error) {
	e.mu.RLock()
	list := make([]*Namespace, 0, len(e.ns))
	for _, ns := range e.ns {
		list = append(list, ns)
	}
	e.mu.RUnlock()
	for _, ns := range list {
		if err := fn(ns); err != nil && !errors.Is(err, ErrClosed) {
			e.log.Error(what+" failed", "namespace", ns.name, "err", err)
		}
	}
}

// Close syncs and closes every namespace.
func (e *Engine) Close() error {
	e.SyncAll()
	e.closeAll()
	return nil
}

func (e *Engine) closeAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ns := range e.ns {
		ns.close()
	}
	e.ns = map[string]*Namespace{}
	e.order = nil
}

// Namespace returns the namespace called name.
func (e *Engine) Namespace(name string) (*Namespace, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	ns, ok := e.ns[name]
	if !ok {
		return nil, ErrNotFound
	}
	return ns, nil
}

// List returns the namespace names, default first.
func (e *Engine) List() []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return append([]string(nil), e.order...)
}

// ValidName checks a namespace name: 1 to 128 bytes, usable as a directory
// name (no '/', no NUL, not "." or "..").
func ValidName(name string) error {
	if len(name) > MaxNameLength {
		return ErrNameTooLong
	}
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return ErrBadName
	}
	return nil
}

// Create creates namespace name (NSNEW). A descriptor already on disk (e.g.
// written by storaged) is adopted.
func (e *Engine) Create(name string) (*Namespace, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.ns[name]; ok {
		return nil, ErrExists
	}
	ns, err := e.openNamespace(name, e.defaultDescriptor(name))
	if err != nil {
		return nil, err
	}
	e.ns[name] = ns
	e.order = append(e.order, name)
	e.log.Info("namespace created", "namespace", name)
	e.event("namespace-created", name)
	return ns, nil
}

// Delete removes namespace name and its files (NSDEL). Clients still using
// it get ErrClosed.
func (e *Engine) Delete(name string) error {
	if name == DefaultNamespace {
		return ErrDefaultDelete
	}
	e.mu.Lock()
	ns, ok := e.ns[name]
	if !ok {
		e.mu.Unlock()
		return ErrNotFound
	}
	delete(e.ns, name)
	for i, n := range e.order {
		if n == name {
			e.order = append(e.order[:i], e.order[i+1:]...)
			break
		}
	}
	e.mu.Unlock()
	ns.close()
	var errs []error
	for _, d := range []string{ns.idxDir, ns.dataDir} {
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, err)
		}
	}
	e.log.Info("namespace deleted", "namespace", name)
	e.event("namespace-deleted", name)
	return errors.Join(errs...)
}

// Flush removes every key of ns and starts it afresh, keeping its settings.
func (e *Engine) Flush(ns *Namespace) error {
	ns.lock()
	defer ns.mu.Unlock()
	if ns.closed {
		return ErrClosed
	}
	ns.closeFiles()
	for _, d := range []string{ns.idxDir, ns.dataDir} {
		entries, err := os.ReadDir(d)
		if err != nil {
			return err
		}
		for _, f := range entries {
			if isZdbFile(f.Name()) {
				if err := os.Remove(filepath.Join(d, f.Name())); err != nil {
					return err
				}
			}
		}
	}
	ns.idxLast, ns.entries, ns.payloadBytes, ns.dirty = nil, 0, 0, map[uint32]bool{}
	return ns.createPair(0)
}

func isZdbFile(name string) bool {
	if len(name) < 2 || (name[0] != 'i' && name[0] != 'd') {
		return false
	}
	_, err := strconv.ParseUint(name[1:], 10, 32)
	return err == nil
}

// Reload loads namespace name again from disk (RELOAD), in place: clients
// using it keep it.
func (e *Engine) Reload(name string) error {
	ns, err := e.Namespace(name)
	if err != nil {
		return err
	}
	if err := ns.reload(); err != nil {
		return err
	}
	e.event("namespace-reloaded", name)
	return nil
}
