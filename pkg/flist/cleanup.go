package flist

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zos-go/zos/pkg/flist/cache"
	"github.com/zos-go/zos/pkg/flist/internal/mnt"
)

// Run is the module's lifetime: it creates the layout, re-discovers the
// mounts left by a previous run (adopting those whose service still runs,
// cleaning the others), then runs the mount cleaner every CleanInterval and
// the cache eviction every CacheInterval (and once now), until ctx is done.
func (m *Module) Run(ctx context.Context) error {
	m.mu.Lock()
	m.runCtx = ctx
	m.mu.Unlock()
	if err := m.ensureDirs(); err != nil {
		return err
	}
	m.Reconcile(ctx)
	m.evict(ctx)
	clean := time.NewTicker(m.cfg.CleanInterval)
	defer clean.Stop()
	evict := time.NewTicker(m.cfg.CacheInterval)
	defer evict.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-clean.C:
			m.Reconcile(ctx)
		case <-evict.C:
			m.evict(ctx)
		}
	}
}

func (m *Module) evict(ctx context.Context) {
	res, err := cache.Evict(ctx, m.dir("cache"), m.cfg.CachePolicy, time.Now())
	if err != nil {
		m.log.Warn("cache eviction", "err", err)
		return
	}
	if res.Removed > 0 {
		m.log.Info("cache evicted", "blocks", res.Removed, "bytes", res.RemovedBytes, "kept_bytes", res.KeptBytes)
	}
}

// Reconcile compares the recorded mounts (run/) with the runner's services:
// a record whose service is gone is cleaned up (mounts detached, pid file,
// record and log removed; the writable volume is kept), a service without
// a record is adopted when its mount is up and stopped otherwise.
func (m *Module) Reconcile(ctx context.Context) {
	records := map[string]bool{}
	if entries, err := os.ReadDir(m.dir("run")); err == nil {
		for _, e := range entries {
			records[e.Name()] = true
		}
	}
	services, err := m.runner.List(ctx, m.cfg.ServicePrefix)
	if err != nil {
		m.log.Warn("list mount services", "err", err)
		return
	}
	running := map[string]bool{}
	for _, s := range services {
		running[strings.TrimPrefix(s, m.cfg.ServicePrefix)] = true
	}
	for name := range records {
		if running[name] {
			continue
		}
		m.withLock(name, func() {
			if _, err := m.runner.Status(ctx, m.service(name)); errors.Is(err, ErrUnknownService) {
				m.forceCleanup(name)
			}
		})
	}
	for name := range running {
		if records[name] {
			continue
		}
		m.withLock(name, func() {
			if _, err := os.Lstat(m.runLink(name)); err == nil {
				return // mounted meanwhile
			}
			target := m.mountpoint(name)
			if ok, _ := mnt.IsMounted(target); ok {
				if err := os.Symlink(m.pidFile(name), m.runLink(name)); err == nil {
					m.log.Warn("mount adopted", "mount", name)
				}
				return
			}
			m.log.Warn("stopping mount service without a mount", "mount", name)
			if err := m.runner.Stop(ctx, m.service(name)); err != nil {
				m.log.Error("stop mount service", "mount", name, "err", err)
			}
		})
	}
}

func (m *Module) withLock(name string, fn func()) {
	unlock := m.lock(name)
	defer unlock()
	fn()
}

// forceCleanup is the original's: detach the mountpoint and the lower dir
// of the writable layer, delete the pid file, the record and the log; keep
// the volume.
func (m *Module) forceCleanup(name string) {
	m.log.Warn("cleaning up stale mount", "mount", name)
	if err := mnt.Detach(m.mountpoint(name)); err != nil {
		m.log.Error("unmount stale mount", "mount", name, "err", err)
	}
	if m.vols != nil {
		if fs, err := m.vols.Path(name); err == nil {
			_ = mnt.Detach(filepath.Join(fs.Path, "ro"))
		}
	}
	for _, p := range []string{m.pidFile(name), m.runLink(name), m.logFile(name)} {
		_ = os.Remove(p)
	}
}
