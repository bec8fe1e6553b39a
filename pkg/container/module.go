package container

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/container/logger"
)

// Module is the container module. Create it with New, run its watcher with
// Run (restarts and stats need it; the seed methods work without it) and
// Close it at the end. It is safe for concurrent use; operations on
// different containers run in parallel.
type Module struct {
	cfg      Config
	log      *slog.Logger
	client   *containerd.Client
	shimLogs string // absolute path of the log binary
	swap     bool   // the memory cgroup accounts swap

	locks keyedMutex

	mu       sync.Mutex
	runCtx   context.Context          // guarded by mu; nil when Run is not running
	watched  map[string]*watchedState // guarded by mu; by key(ns, id)
	oomSeen  map[string]time.Time     // guarded by mu; by key, time of the last OOM event
	deleting map[string]bool          // guarded by mu; keys being deleted
	wg       sync.WaitGroup           // goroutines started for Run (timers, stats)
}

var _ Containers = (*Module)(nil)

// New checks cfg and the log binary, and makes a client of containerd at
// cfg.Address (connected on first use). It starts nothing.
func New(cfg Config, log *slog.Logger) (*Module, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	shim, err := exec.LookPath(cfg.ShimLogs)
	if err != nil {
		return nil, fmt.Errorf("container module: shim logger %q: %v: %w", cfg.ShimLogs, err, errors.ErrUnsupported)
	}
	if shim, err = filepath.Abs(shim); err != nil {
		return nil, fmt.Errorf("container module: shim logger: %w", err)
	}
	client, err := containerd.New(cfg.Address, containerd.WithTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("container module: containerd %s: %v: %w", cfg.Address, err, ErrUnavailable)
	}
	return &Module{
		cfg: cfg, log: log, client: client, shimLogs: shim, swap: swapAccounted(),
		watched: map[string]*watchedState{}, oomSeen: map[string]time.Time{}, deleting: map[string]bool{},
	}, nil
}

// Close closes the containerd client. Containers keep running.
func (m *Module) Close() error {
	return m.client.Close()
}

// opCtx bounds a seed method call by the module's lifetime (when Run runs)
// and OpTimeout.
func (m *Module) opCtx() (context.Context, context.CancelFunc) {
	m.mu.Lock()
	parent := m.runCtx
	m.mu.Unlock()
	if parent == nil {
		parent = context.Background()
	}
	return context.WithTimeout(parent, m.cfg.OpTimeout)
}

func key(ns, id string) string { return ns + "/" + id }

// Run implements pkg.ContainerModule: it checks the request (Prepare),
// creates the container and starts its task. On any error nothing is left.
func (m *Module) Run(ns string, data pkg.Container) (pkg.ContainerID, error) {
	ctx, cancel := m.opCtx()
	defer cancel()
	return m.run(ctx, ns, data)
}

// ListNS implements pkg.ContainerModule.
func (m *Module) ListNS() ([]string, error) {
	ctx, cancel := m.opCtx()
	defer cancel()
	nss, err := m.client.NamespaceService().List(ctx)
	if err != nil {
		return nil, m.wrap("list namespaces", err)
	}
	slices.Sort(nss)
	return nss, nil
}

// List implements pkg.ContainerModule.
func (m *Module) List(ns string) ([]pkg.ContainerID, error) {
	ctx, cancel := m.opCtx()
	defer cancel()
	nss := []string{ns}
	if ns == "" {
		var err error
		if nss, err = m.client.NamespaceService().List(ctx); err != nil {
			return nil, m.wrap("list namespaces", err)
		}
	} else if err := ValidateName(ns); err != nil {
		return nil, fmt.Errorf("namespace: %w", err)
	}
	var out []pkg.ContainerID
	for _, n := range nss {
		cs, err := m.client.Containers(namespaces.WithNamespace(ctx, n))
		if err != nil {
			return nil, m.wrap("list containers of "+n, err)
		}
		for _, c := range cs {
			out = append(out, pkg.ContainerID(c.ID()))
		}
	}
	slices.Sort(out)
	return out, nil
}

// Inspect implements pkg.ContainerModule: the request Run completed
// (defaults, .startup.toml), or for a container made by someone else what
// its spec tells.
func (m *Module) Inspect(ns string, id pkg.ContainerID) (pkg.Container, error) {
	ctx, cancel := m.opCtx()
	defer cancel()
	return m.inspect(ctx, ns, string(id))
}

// Delete implements pkg.ContainerModule: SIGTERM, StopGrace, SIGKILL to
// every process, then the task, the container and all its state go.
// ErrNotFound if there is no such container.
func (m *Module) Delete(ns string, id pkg.ContainerID) error {
	ctx, cancel := m.opCtx()
	defer cancel()
	return m.delete(ctx, ns, string(id))
}

// Status implements Containers.
func (m *Module) Status(ctx context.Context, ns string, id pkg.ContainerID) (Status, error) {
	if err := validPair(ns, string(id)); err != nil {
		return Status{}, err
	}
	ctx = namespaces.WithNamespace(ctx, ns)
	c, err := m.client.LoadContainer(ctx, string(id))
	if err != nil {
		return Status{}, m.wrapC(ns, string(id), err)
	}
	return m.status(ctx, c)
}

// Logs implements Containers: the tail of the container's log ring.
func (m *Module) Logs(ctx context.Context, ns string, id pkg.ContainerID, maxBytes int) ([]byte, error) {
	if err := validPair(ns, string(id)); err != nil {
		return nil, err
	}
	if _, err := m.client.LoadContainer(namespaces.WithNamespace(ctx, ns), string(id)); err != nil {
		return nil, m.wrapC(ns, string(id), err)
	}
	return logger.ReadRing(logger.RingPath(m.cfg.Root, ns, string(id)), m.cfg.LogRingFiles, maxBytes)
}

func validPair(ns, id string) error {
	if err := ValidateName(ns); err != nil {
		return fmt.Errorf("namespace: %w", err)
	}
	if err := ValidateName(id); err != nil {
		return fmt.Errorf("container: %w", err)
	}
	return nil
}

// wrap maps containerd's error classes to the module's.
func (m *Module) wrap(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errdefs.IsNotFound(err):
		return fmt.Errorf("%s: %v: %w", what, err, ErrNotFound)
	case errdefs.IsAlreadyExists(err):
		return fmt.Errorf("%s: %v: %w", what, err, ErrExists)
	case errdefs.IsUnavailable(err), errors.Is(err, context.DeadlineExceeded) && !m.connected():
		return fmt.Errorf("%s: containerd %s: %v: %w", what, m.cfg.Address, err, ErrUnavailable)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// connected reports whether the client's connection to containerd is up.
func (m *Module) connected() bool {
	conn, ok := m.client.Conn().(*grpc.ClientConn)
	return ok && conn.GetState() == connectivity.Ready
}

func (m *Module) wrapC(ns, id string, err error) error {
	return m.wrap(fmt.Sprintf("container %s/%s", ns, id), err)
}

// netnsExists reports whether name is a mounted network namespace in
// NetNSDir.
func (m *Module) netnsExists(name string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Join(m.cfg.NetNSDir, name), &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// corexPath resolves the corex binary.
func (m *Module) corexPath() (string, error) {
	p, err := exec.LookPath(m.cfg.Corex)
	if err != nil {
		return "", fmt.Errorf("interactive container: corex %q: %v: %w", m.cfg.Corex, err, errors.ErrUnsupported)
	}
	return filepath.Abs(p)
}

// keyedMutex is a mutex per key.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyLock // guarded by mu
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

// Lock locks key and returns its unlock function.
func (k *keyedMutex) Lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}

// removeState removes the files the module keeps for a container.
func (m *Module) removeState(ns, id string) error {
	var errs []error
	for _, p := range []string{logger.ConfigPath(m.cfg.Root, ns, id), logger.SysLogPath(m.cfg.Root, ns, id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, logger.RemoveRing(logger.RingPath(m.cfg.Root, ns, id), m.cfg.LogRingFiles))
	for _, d := range []string{"config", "logs"} {
		_ = os.Remove(filepath.Join(m.cfg.Root, d, ns)) // only when empty
	}
	return errors.Join(errs...)
}
