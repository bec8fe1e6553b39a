// Package flistfs is the FUSE server of one flist mount (cmd/flistfs): a
// read-only view of the flist whose file contents come lazily, block by
// block, from the shared block cache, and, for writable mounts, an overlay
// of that view with an upper directory on the mount's own btrfs subvolume.
//
// Layout of a writable mount (as 0-fs/g8ufs): the FUSE view is mounted on
// <backend>/ro, the overlay on the target with upperdir <backend>/rw and
// workdir <backend>/wd. A read-only mount puts the FUSE view on the target.
//
// The server is meant to run supervised (zinit) and restarted when it dies:
// at start it detaches whatever is left mounted at its target and lower dir
// by a killed predecessor, then mounts again; the upper directory, kept on
// the subvolume, survives. It writes its pid file and logs "mount ready"
// once the target is usable, and on SIGTERM unmounts and removes the pid
// file.
//
// Both mounts are nodev: device nodes of an flist show their type and
// numbers but cannot be opened. Set-uid bits stay effective (container root
// filesystems need them); the Flister keeps host users out of its mount
// directory.
package flistfs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/internal/atomicfile"
	"github.com/zos-go/zos/pkg/flist/cache"
	"github.com/zos-go/zos/pkg/flist/format"
	"github.com/zos-go/zos/pkg/flist/internal/mnt"
	"github.com/zos-go/zos/pkg/flist/store"
)

// ReadyMessage is logged once the mount is usable.
const ReadyMessage = "mount ready"

// FSName is the FUSE file system type suffix (fuse.flistfs).
const FSName = "flistfs"

// Config describes one mount.
type Config struct {
	// Meta is the flist file (rfs .fl or 0-flist archive).
	Meta string
	// UnpackDir is where a 0-flist archive is unpacked (default Meta.d).
	UnpackDir string
	// Cache is the shared block cache directory.
	Cache string
	// StorageURL is the block store used when the flist names none.
	StorageURL string
	// Backend is the writable layer directory (a subvolume); empty for a
	// read-only mount.
	Backend string
	// Target is the mount point.
	Target string
	// PidFile, when set, receives the pid once mounted.
	PidFile string
	// FetchTimeout bounds one block fetch.
	FetchTimeout time.Duration
	// TTL is how long the kernel may cache entries and attributes.
	TTL time.Duration
	// NoPassthrough turns off FUSE passthrough of fully cached files
	// (every read then goes through the server).
	NoPassthrough bool
	// Debug logs every FUSE request.
	Debug bool
}

// DefaultConfig returns the timeouts; paths must be set.
func DefaultConfig() Config {
	return Config{FetchTimeout: 30 * time.Second, TTL: time.Hour}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	for name, p := range map[string]string{"meta": c.Meta, "cache": c.Cache, "target": c.Target} {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("flistfs %s %q: not an absolute path", name, p)
		}
	}
	if c.Backend != "" && !filepath.IsAbs(c.Backend) {
		return fmt.Errorf("flistfs backend %q: not an absolute path", c.Backend)
	}
	if c.FetchTimeout <= 0 || c.TTL < 0 {
		return fmt.Errorf("flistfs: fetch timeout %v, ttl %v", c.FetchTimeout, c.TTL)
	}
	return nil
}

// Run mounts the flist and serves it until ctx is done or the mount goes
// away, then unmounts.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	r, err := format.Open(ctx, cfg.Meta, format.Options{
		UnpackDir: cfg.UnpackDir,
		OnBadEntry: func(dir uint64, name string, err error) {
			log.Warn("flist entry skipped", "dir_ino", dir, "name", name, "err", err)
		},
	})
	if err != nil {
		return err
	}
	defer r.Close()
	routes, err := r.Routes(ctx)
	if err != nil {
		return err
	}
	st, err := store.FromRoutes(routes, cfg.StorageURL, store.Options{DialTimeout: min(cfg.FetchTimeout, 5*time.Second)})
	if err != nil {
		return err
	}
	defer st.Close()
	ccfg := cache.DefaultConfig()
	ccfg.Dir, ccfg.FetchTimeout = cfg.Cache, cfg.FetchTimeout
	c, err := cache.New(ccfg, st, r.Kind().Codec(), log)
	if err != nil {
		return err
	}
	defer c.Close()
	rootIn, err := r.Root(ctx)
	if err != nil {
		return err
	}
	t := &tree{r: r, cache: c, log: log, ttl: cfg.TTL, life: ctx, loadTimeout: cfg.FetchTimeout, passthrough: !cfg.NoPassthrough}

	fuseDir := cfg.Target
	if cfg.Backend != "" {
		fuseDir = filepath.Join(cfg.Backend, "ro")
	}
	// a killed predecessor leaves dead mounts behind: drop them
	for _, p := range []string{cfg.Target, fuseDir} {
		if err := mnt.Detach(p); err != nil {
			return err
		}
	}
	for _, p := range []string{cfg.Target, fuseDir} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("flistfs: %w", err)
		}
	}
	ttl := cfg.TTL
	server, err := fs.Mount(fuseDir, &node{t: t, in: rootIn}, &fs.Options{
		MountOptions: fuse.MountOptions{
			AllowOther:       true,
			Options:          []string{"default_permissions"},
			FsName:           FSName,
			Name:             FSName,
			DirectMount:      true,
			DirectMountFlags: syscall.MS_RDONLY | syscall.MS_NODEV | syscall.MS_NOATIME,
			MaxWrite:         1 << 20,
			MaxReadAhead:     128 << 10,
			Debug:            cfg.Debug,
		},
		EntryTimeout:    &ttl,
		AttrTimeout:     &ttl,
		NegativeTimeout: &ttl,
		NullPermissions: true,
	})
	if err != nil {
		return fmt.Errorf("flistfs: mount %s: %w", fuseDir, err)
	}
	served := make(chan struct{})
	go func() { server.Wait(); close(served) }()
	unmountFUSE := func() {
		if err := server.Unmount(); err != nil {
			_ = mnt.Detach(fuseDir)
		}
		<-served
	}
	if cfg.Backend != "" {
		if err := mountOverlay(cfg.Backend, cfg.Target, rootIn); err != nil {
			unmountFUSE()
			return err
		}
	}
	if cfg.PidFile != "" {
		if err := atomicfile.WriteFile(cfg.PidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			log.Error("pid file", "path", cfg.PidFile, "err", err)
		}
	}
	log.Info(ReadyMessage, "target", cfg.Target, "flist", cfg.Meta, "kind", r.Kind().String(), "store", st.String(), "writable", cfg.Backend != "")

	var runErr error
	select {
	case <-ctx.Done():
	case <-served:
		runErr = errors.New("flistfs: fuse server stopped (unmounted from outside)")
	}
	if cfg.Backend != "" {
		if err := mnt.Detach(cfg.Target); err != nil {
			log.Error("unmount overlay", "target", cfg.Target, "err", err)
		}
	}
	unmountFUSE()
	if cfg.PidFile != "" {
		_ = os.Remove(cfg.PidFile)
	}
	log.Info("unmounted", "target", cfg.Target, "stats", fmt.Sprintf("%+v", c.Stats()))
	return runErr
}

// mountOverlay mounts overlay(lower=<backend>/ro, upper=<backend>/rw,
// work=<backend>/wd) on target. The option string uses paths relative to
// backend (the process's working directory for the call), so no path
// character needs escaping.
func mountOverlay(backend, target string, root format.Inode) error {
	rw := filepath.Join(backend, "rw")
	if _, err := os.Stat(rw); errors.Is(err, os.ErrNotExist) {
		if err := os.Mkdir(rw, 0o755); err != nil {
			return fmt.Errorf("flistfs: %w", err)
		}
		// the upper dir is the merged root: give it the flist root's mode
		if err := os.Chown(rw, int(root.UID), int(root.GID)); err != nil {
			return fmt.Errorf("flistfs: %w", err)
		}
		if err := os.Chmod(rw, os.FileMode(root.Mode&0o777)|modeBits(root.Mode)); err != nil {
			return fmt.Errorf("flistfs: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(backend, "wd"), 0o755); err != nil {
		return fmt.Errorf("flistfs: %w", err)
	}
	cwd, err := os.Getwd()
	if err != nil {
		cwd = "/"
	}
	if err := os.Chdir(backend); err != nil {
		return fmt.Errorf("flistfs: %w", err)
	}
	defer os.Chdir(cwd)
	// nodev: device nodes of an flist are metadata, never a door to the
	// host's devices (the FUSE view is nodev too)
	if err := unix.Mount("overlay", target, "overlay", unix.MS_NOATIME|unix.MS_NODEV, "lowerdir=ro,upperdir=rw,workdir=wd"); err != nil {
		return fmt.Errorf("flistfs: overlay on %s: %w", target, err)
	}
	return nil
}

func modeBits(m uint32) os.FileMode {
	var out os.FileMode
	if m&syscall.S_ISUID != 0 {
		out |= os.ModeSetuid
	}
	if m&syscall.S_ISGID != 0 {
		out |= os.ModeSetgid
	}
	if m&syscall.S_ISVTX != 0 {
		out |= os.ModeSticky
	}
	return out
}
