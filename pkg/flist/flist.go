// Package flist is the node's flist module: it implements pkg.Flister.
// An flist (rfs .fl or v0.4 0-flist) is downloaded once, kept by its MD5
// under <root>/flist, and mounted by one flistfs process per mount, which
// the Runner (zinit on a node) supervises: a mount survives a restart of the
// agent and a killed flistfs is restarted by its supervisor. Writable mounts
// get an overlay upper layer on a btrfs subvolume of Limit MiB created
// through the storage module; read-only mounts have none.
//
// Layout under Config.Root (the spec's): flist/ (archives by MD5), cache/
// (the block cache shared by all mounts), mountpoint/<name>,
// pid/<name>.pid, log/<name>.log and run/<name> (a symlink to the pid file:
// the record of a mount). Run re-discovers mounts at start, then cleans up
// mounts whose service is gone every minute and evicts cache blocks not
// read for 30 days every day.
//
// Deviation from the original: mountpoint/ is 0700, so host users cannot
// reach into mounted flists (whose setuid binaries stay effective for the
// containers that use them).
package flist

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zos-go/zos/internal/revert"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/flist/cache"
	"github.com/zos-go/zos/pkg/flist/format"
	"github.com/zos-go/zos/pkg/flist/internal/mnt"
)

// DefaultStorage is the block store used when a mount names none (the
// original's environment FlistURL).
const DefaultStorage = "zdb://hub.grid.tf:9900"

var (
	// ErrInvalidName is returned for a mount name that is not a single
	// path element.
	ErrInvalidName = errors.New("invalid mount name")
	// ErrInvalidOptions is returned for a writable mount without size or
	// disk type when its volume does not exist yet.
	ErrInvalidOptions = errors.New("invalid mount option, missing disk type and/or size")
	// ErrNotMountpoint is returned by Umount for a path that is not
	// directly under the module's mountpoint directory.
	ErrNotMountpoint = errors.New("not an flist mount path")
	// ErrHashNotFound is returned by HashFromRootPath.
	ErrHashNotFound = errors.New("could not find rootfs hash name")
	// ErrDownload is returned when an flist cannot be fetched.
	ErrDownload = errors.New("flist download failed")
	// ErrMount is returned when flistfs does not come up.
	ErrMount = errors.New("flist mount failed")
	// ErrNoVolumes is returned for a writable mount by a module built
	// without a volume allocator.
	ErrNoVolumes = errors.New("writable mounts need a volume allocator")
)

// Volumes is what the module needs of the storage module
// (pkg.VolumeAllocater): the subvolumes that hold writable layers.
type Volumes interface {
	CreateFilesystem(name string, size uint64, poolType pkg.DeviceType) (pkg.Filesystem, error)
	ReleaseFilesystem(name string) error
	Path(name string) (pkg.Filesystem, error)
}

// Config configures the module.
type Config struct {
	// Root holds everything (on the cache filesystem on a node).
	Root string
	// Binary is the flistfs executable.
	Binary string
	// DefaultStorage is the block store for mounts given none.
	DefaultStorage string
	// ServicePrefix starts the runner name of every mount service
	// ("flistfs@"); tests add their own prefix.
	ServicePrefix string
	// MountTimeout bounds the wait for a new mount to come up.
	MountTimeout time.Duration
	// StopTimeout bounds the wait for a mount service to stop.
	StopTimeout time.Duration
	// FetchTimeout bounds one block fetch of a mount (passed to flistfs).
	FetchTimeout time.Duration
	// HTTPTimeout bounds flist downloads and hash requests.
	HTTPTimeout time.Duration
	// CleanInterval between two runs of the mount cleaner.
	CleanInterval time.Duration
	// CacheInterval between two cache evictions; CachePolicy says what
	// is evicted.
	CacheInterval time.Duration
	CachePolicy   cache.Policy
}

// DefaultConfig returns the original's periods and paths under root;
// Binary defaults to "flistfs" on PATH.
func DefaultConfig(root string) Config {
	return Config{
		Root:           root,
		Binary:         "flistfs",
		DefaultStorage: DefaultStorage,
		ServicePrefix:  "flistfs@",
		MountTimeout:   10 * time.Second,
		StopTimeout:    10 * time.Second,
		FetchTimeout:   30 * time.Second,
		HTTPTimeout:    5 * time.Minute,
		CleanInterval:  time.Minute,
		CacheInterval:  24 * time.Hour,
		CachePolicy:    cache.DefaultPolicy,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if !filepath.IsAbs(c.Root) {
		return fmt.Errorf("flist root %q: not an absolute path", c.Root)
	}
	if c.Binary == "" || c.ServicePrefix == "" {
		return fmt.Errorf("flist: binary and service prefix are required")
	}
	for name, d := range map[string]time.Duration{"mount": c.MountTimeout, "stop": c.StopTimeout, "fetch": c.FetchTimeout,
		"http": c.HTTPTimeout, "clean interval": c.CleanInterval, "cache interval": c.CacheInterval} {
		if d <= 0 {
			return fmt.Errorf("flist %s timeout %v: not positive", name, d)
		}
	}
	return nil
}

// Module implements pkg.Flister. It is safe for concurrent use; operations
// on one mount name are serialised.
type Module struct {
	cfg    Config
	vols   Volumes
	runner Runner
	log    *slog.Logger
	http   *http.Client

	locks sync.Map // name -> *sync.Mutex

	mu     sync.Mutex
	runCtx context.Context // guarded by mu; the module's lifetime once Run started
}

var _ pkg.Flister = (*Module)(nil)

// New returns a module; vols may be nil for a node that only mounts
// read-only. It starts nothing: Run does.
func New(cfg Config, vols Volumes, runner Runner, log *slog.Logger) (*Module, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if runner == nil {
		return nil, fmt.Errorf("flist: a runner is required")
	}
	return &Module{cfg: cfg, vols: vols, runner: runner, log: log, http: &http.Client{Timeout: cfg.HTTPTimeout}, runCtx: context.Background()}, nil
}

func (m *Module) dir(sub string) string { return filepath.Join(m.cfg.Root, sub) }

func (m *Module) mountpoint(name string) string { return filepath.Join(m.dir("mountpoint"), name) }
func (m *Module) pidFile(name string) string    { return filepath.Join(m.dir("pid"), name+".pid") }
func (m *Module) logFile(name string) string    { return filepath.Join(m.dir("log"), name+".log") }
func (m *Module) runLink(name string) string    { return filepath.Join(m.dir("run"), name) }
func (m *Module) service(name string) string    { return m.cfg.ServicePrefix + name }

// ensureDirs creates the layout.
func (m *Module) ensureDirs() error {
	for _, d := range []string{"flist", "cache", "pid", "log", "run"} {
		if err := os.MkdirAll(m.dir(d), 0o755); err != nil {
			return fmt.Errorf("flist: %w", err)
		}
	}
	if err := os.MkdirAll(m.dir("mountpoint"), 0o700); err != nil {
		return fmt.Errorf("flist: %w", err)
	}
	return os.Chmod(m.dir("mountpoint"), 0o700)
}

func (m *Module) lock(name string) func() {
	v, _ := m.locks.LoadOrStore(name, &sync.Mutex{})
	mu := v.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

func (m *Module) ctx(timeout time.Duration) (context.Context, context.CancelFunc) {
	m.mu.Lock()
	base := m.runCtx
	m.mu.Unlock()
	return context.WithTimeout(base, timeout)
}

// Mount implements pkg.Flister: NamedMount under a random name.
func (m *Module) Mount(url, storage string, opts pkg.MountOptions) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("flist: mount name: %w", err)
	}
	return m.NamedMount(hex.EncodeToString(b[:]), url, storage, opts)
}

// NamedMount implements pkg.Flister. It is idempotent: a name already
// mounted returns its path at once, whatever flist it holds.
func (m *Module) NamedMount(name, url, storage string, opts pkg.MountOptions) (string, error) {
	if err := format.ValidName(name); err != nil {
		return "", fmt.Errorf("mount %q: %w", name, ErrInvalidName)
	}
	ctx, cancel := m.ctx(m.cfg.HTTPTimeout + m.cfg.MountTimeout + m.cfg.StopTimeout)
	defer cancel()
	defer m.lock(name)()
	return m.namedMount(ctx, name, url, storage, opts)
}

func (m *Module) namedMount(ctx context.Context, name, url, storage string, opts pkg.MountOptions) (string, error) {
	target := m.mountpoint(name)
	if ok, _ := mnt.IsMounted(target); ok {
		if _, err := m.runner.Status(ctx, m.service(name)); !errors.Is(err, ErrUnknownService) {
			return target, nil
		}
		// a mount nobody serves (its service was lost): clean, mount again
		m.forceCleanup(name)
	}
	if err := m.ensureDirs(); err != nil {
		return "", err
	}
	if storage == "" {
		storage = m.cfg.DefaultStorage
	}
	hash, err := m.download(ctx, url)
	if err != nil {
		return "", err
	}
	var undo revert.Stack
	defer undo.Unwind()
	var backend string
	if !opts.ReadOnly {
		if m.vols == nil {
			return "", fmt.Errorf("mount %q: %w", name, ErrNoVolumes)
		}
		fs, err := m.vols.Path(name)
		if err != nil {
			if opts.Limit == 0 || opts.Type == "" {
				return "", fmt.Errorf("mount %q: %w", name, ErrInvalidOptions)
			}
			if fs, err = m.vols.CreateFilesystem(name, opts.Limit<<20, opts.Type); err != nil {
				return "", fmt.Errorf("mount %q: writable layer: %w", name, err)
			}
			undo.Push(func() {
				if err := m.vols.ReleaseFilesystem(name); err != nil {
					m.log.Error("release writable layer", "mount", name, "err", err)
				}
			})
		}
		backend = fs.Path
	}
	argv := []string{m.cfg.Binary}
	if backend != "" {
		argv = append(argv, "-backend", backend)
	} else {
		argv = append(argv, "-ro")
	}
	argv = append(argv,
		"-cache", m.dir("cache"),
		"-meta", filepath.Join(m.dir("flist"), hash),
		"-storage-url", storage,
		"-pid", m.pidFile(name),
		"-log", m.logFile(name),
		"-fetch-timeout", m.cfg.FetchTimeout.String(),
		target)
	_ = os.Remove(m.pidFile(name)) // a stale pid file must not pass for readiness
	if err := os.MkdirAll(target, 0o755); err != nil {
		return "", fmt.Errorf("mount %q: %w", name, err)
	}
	undo.Push(func() { _ = os.Remove(target) })
	service := m.service(name)
	if err := m.runner.Start(ctx, service, argv); err != nil {
		return "", fmt.Errorf("mount %q: %w: %w", name, ErrMount, err)
	}
	undo.Push(func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.StopTimeout)
		defer cancel()
		if err := m.runner.Stop(sctx, service); err != nil {
			m.log.Error("stop mount service", "mount", name, "err", err)
		}
		_ = mnt.Detach(target)
		if backend != "" {
			_ = mnt.Detach(filepath.Join(backend, "ro"))
		}
		_ = os.Remove(m.pidFile(name))
	})
	if err := m.waitReady(ctx, name, target); err != nil {
		return "", err
	}
	_ = os.Remove(m.runLink(name))
	if err := os.Symlink(m.pidFile(name), m.runLink(name)); err != nil {
		return "", fmt.Errorf("mount %q: %w", name, err)
	}
	undo.Done()
	m.log.Info("flist mounted", "mount", name, "url", url, "hash", hash, "writable", backend != "", "path", target)
	return target, nil
}

// waitReady waits until target is mounted and the pid file names a live
// process.
func (m *Module) waitReady(ctx context.Context, name, target string) error {
	deadline := time.Now().Add(m.cfg.MountTimeout)
	for {
		mounted, _ := mnt.IsMounted(target)
		if mounted {
			if pid, err := readPid(m.pidFile(name)); err == nil && processAlive(pid) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mount %q: not ready after %v: %w%s", name, m.cfg.MountTimeout, ErrMount, logTail(m.logFile(name)))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("mount %q: %w: %w", name, ErrMount, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func logTail(p string) string {
	b, err := os.ReadFile(p)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return ": " + strings.Join(lines, " | ")
}

func readPid(p string) (int, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// cmdline returns the argv of the mount's flistfs, from its pid file.
func (m *Module) cmdline(name string) ([]string, error) {
	pid, err := readPid(m.pidFile(name))
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), nil
}

// Umount implements pkg.Flister. path must be directly under the
// mountpoint directory. It stops the mount's service, detaches what is
// left mounted, removes its files and, for a writable mount, releases its
// volume. Cleanup failures are logged, except a writable layer that could
// not be released: that error is returned so the caller retries rather than
// leak the volume (the original only logged it).
func (m *Module) Umount(path string) error {
	path = filepath.Clean(path)
	if filepath.Dir(path) != m.dir("mountpoint") || format.ValidName(filepath.Base(path)) != nil {
		return fmt.Errorf("umount %q: %w", path, ErrNotMountpoint)
	}
	name := filepath.Base(path)
	ctx, cancel := m.ctx(m.cfg.StopTimeout + 10*time.Second)
	defer cancel()
	defer m.lock(name)()
	return m.umount(ctx, name)
}

// NamedUmount implements pkg.Flister.
func (m *Module) NamedUmount(name string) error {
	if format.ValidName(name) != nil {
		return fmt.Errorf("umount %q: %w", name, ErrInvalidName)
	}
	return m.Umount(m.mountpoint(name))
}

func (m *Module) umount(ctx context.Context, name string) error {
	target := m.mountpoint(name)
	writable, known := false, false
	backend := ""
	if argv, err := m.cmdline(name); err == nil {
		known = true
		writable = !contains(argv, "-ro")
		backend = argAfter(argv, "-backend")
	} else {
		m.log.Debug("mount command line unavailable", "mount", name, "err", err)
	}
	if err := m.runner.Stop(ctx, m.service(name)); err != nil {
		m.log.Error("stop mount service", "mount", name, "err", err)
	}
	if err := mnt.Detach(target); err != nil {
		m.log.Error("unmount", "mount", name, "err", err)
	}
	if !known && m.vols != nil {
		if fs, err := m.vols.Path(name); err == nil {
			writable, backend = true, fs.Path
		}
	}
	if backend != "" {
		if err := mnt.Detach(filepath.Join(backend, "ro")); err != nil {
			m.log.Error("unmount lower dir", "mount", name, "err", err)
		}
	}
	for _, p := range []string{m.runLink(name), m.pidFile(name), m.logFile(name), target} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			m.log.Error("remove mount file", "mount", name, "path", p, "err", err)
		}
	}
	if writable && m.vols != nil {
		if err := m.vols.ReleaseFilesystem(name); err != nil {
			m.log.Error("release writable layer", "mount", name, "err", err)
			return fmt.Errorf("umount %q: writable layer: %w", name, err)
		}
	}
	m.log.Info("flist unmounted", "mount", name, "writable", writable)
	return nil
}

func contains(argv []string, s string) bool {
	for _, a := range argv {
		if a == s {
			return true
		}
	}
	return false
}

func argAfter(argv []string, flag string) string {
	for i, a := range argv {
		if a == flag && i+1 < len(argv) {
			return argv[i+1]
		}
	}
	return ""
}

// HashFromRootPath implements pkg.Flister: the MD5 of the flist mounted
// under the base name of name, read from its flistfs command line.
func (m *Module) HashFromRootPath(name string) (string, error) {
	base := filepath.Base(name)
	argv, err := m.cmdline(base)
	if err != nil {
		return "", fmt.Errorf("mount %q: %w: %w", base, ErrHashNotFound, err)
	}
	prefix := m.dir("flist")
	for _, a := range argv {
		if strings.HasPrefix(a, prefix+"/") {
			return filepath.Base(a), nil
		}
	}
	return "", fmt.Errorf("mount %q: %w", base, ErrHashNotFound)
}
