package storage

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/zos-go/zos/pkg"
	"sync"
)

// Module is the storage module on real btrfs pools. Create it with New,
// then call Scan once (it forms and adopts pools and ensures the cache) and
// run Run for periodic scans. All methods are safe for concurrent use.
type Module struct {
	cfg     Config
	log     *slog.Logger
	mntRoot string

	scanMu sync.Mutex // serializes scans

	mu            sync.Mutex
	pools         map[string]*pool  // guarded by mu; by label
	brokenDevices map[string]error  // guarded by mu; by device path
	brokenPools   map[string]error  // guarded by mu; by label
	foreign       map[string]string // guarded by mu; device path → what is on it
	cache         cacheState        // guarded by mu
	closed        bool              // guarded by mu
}

var (
	_ pkg.StorageModule = (*Module)(nil)
	_ Storage           = (*Module)(nil)
)

// New checks cfg and returns a module; it touches no disk (call Scan).
func New(cfg Config, log *slog.Logger) (*Module, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		return nil, fmt.Errorf("storage: nil logger: %w", ErrInvalidConfig)
	}
	return &Module{
		cfg:           cfg,
		log:           log,
		mntRoot:       filepath.Join(cfg.Root, "mnt"),
		pools:         map[string]*pool{},
		brokenDevices: map[string]error{},
		brokenPools:   map[string]error{},
		foreign:       map[string]string{},
	}, nil
}
