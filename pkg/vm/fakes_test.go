package vm

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zos-go/zos/pkg"
)

// fakeLauncher is a stateful in-memory Launcher: processes "run" until
// killed or stopped.
type fakeLauncher struct {
	mu      sync.Mutex
	procs   map[string]*fakeProc
	nextPID int
	starts  []string // service names, in start order
	failing string   // Start of this service fails
}

type fakeProc struct {
	argv    []string
	running bool
	pid     int
	exit    string
}

func newFakeLauncher() *fakeLauncher {
	return &fakeLauncher{procs: map[string]*fakeProc{}, nextPID: 100}
}

func (f *fakeLauncher) Start(_ context.Context, name string, argv []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if name == f.failing {
		return fmt.Errorf("service %s: cannot spawn", name)
	}
	if p := f.procs[name]; p != nil && p.running {
		return fmt.Errorf("service %s: running", name)
	}
	f.nextPID++
	f.procs[name] = &fakeProc{argv: argv, running: true, pid: f.nextPID}
	f.starts = append(f.starts, name)
	return nil
}

func (f *fakeLauncher) Stop(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.procs, name)
	return nil
}

func (f *fakeLauncher) Status(_ context.Context, name string) (Proc, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.procs[name]
	if p == nil {
		return Proc{}, fmt.Errorf("service %s: %w", name, ErrNoService)
	}
	if p.running {
		return Proc{PID: p.pid, Running: true}, nil
	}
	return Proc{Exit: p.exit}, nil
}

func (f *fakeLauncher) List(_ context.Context, prefix string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for n := range f.procs {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (f *fakeLauncher) Output(context.Context, string) string { return "fake qemu: bad option\n" }

// kill ends the process of a service with exit.
func (f *fakeLauncher) kill(name, exit string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.procs[name]; p != nil {
		p.running, p.exit, p.pid = false, exit, 0
	}
}

func (f *fakeLauncher) pid(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.procs[name]; p != nil {
		return p.pid
	}
	return 0
}

func (f *fakeLauncher) names() []string {
	l, _ := f.List(context.Background(), "")
	return l
}

// fakeHV answers from the machine while its fake process runs.
type fakeHV struct {
	l          *fakeLauncher
	prefix     string
	powerdowns int
	// failAfterStart makes every QEMU end at once ("exited 1").
	failAfterStart bool
	mu             sync.Mutex
}

func (h *fakeHV) Probe(context.Context, string) (string, error) { return AccelTCG, nil }

func (h *fakeHV) Command(m Machine) ([]string, error) {
	return []string{"fake-qemu", m.Name, m.Cmdline}, nil
}

func (h *fakeHV) Info(ctx context.Context, m Machine) (MachineInfo, error) {
	if h.failAfterStart {
		h.l.kill(h.prefix+m.Name, "exited 1")
	}
	p, err := h.l.Status(ctx, h.prefix+m.Name)
	if err != nil || !p.Running {
		return MachineInfo{}, fmt.Errorf("qmp %s: connection refused", m.QMPSocket)
	}
	return MachineInfo{CPU: m.CPU, MemoryMiB: m.Memory, Status: "running"}, nil
}

func (h *fakeHV) Powerdown(ctx context.Context, m Machine) error {
	h.mu.Lock()
	h.powerdowns++
	h.mu.Unlock()
	h.l.kill(h.prefix+m.Name, "exited 0")
	return nil
}

// unitEnv is a module on fakes, with a kernel file and a vdisk area.
type unitEnv struct {
	m      *Module
	l      *fakeLauncher
	hv     *fakeHV
	cfg    Config
	kernel string
	area   string
	taps   map[string]bool
}

func newUnitEnv(t *testing.T, edit func(*Config)) *unitEnv {
	t.Helper()
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Root = filepath.Join(dir, "root")
	cfg.RunDir = filepath.Join(dir, "run")
	cfg.ServicePrefix = "test-qemu@"
	cfg.NodeMemoryMiB, cfg.NodeCPUs = 8192, 4
	cfg.StopTimeout = 0
	cfg.PollInterval = 50 * time.Millisecond
	if edit != nil {
		edit(&cfg)
	}
	e := &unitEnv{l: newFakeLauncher(), cfg: cfg, area: filepath.Join(dir, "vdisks"),
		kernel: filepath.Join(dir, "vmlinuz"), taps: map[string]bool{"t-net1": true}}
	e.hv = &fakeHV{l: e.l, prefix: cfg.ServicePrefix}
	if err := os.MkdirAll(e.area, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.kernel, []byte("kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.m = e.newModule(t)
	return e
}

// newModule returns another module on the same state (an agent restart).
func (e *unitEnv) newModule(t *testing.T) *Module {
	t.Helper()
	m, err := New(e.cfg, e.hv, e.l, Dirs{e.area}, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	m.tapExists = func(ns, name string) (bool, error) { return e.taps[name], nil }
	return m
}

// serve runs m.Serve until the test ends and waits until it is ready.
func serve(t *testing.T, m *Module) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx) }()
	for m.Accel() == "" {
		select {
		case err := <-done:
			t.Fatalf("Serve: %v", err)
		default:
		}
		waitABit()
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func (e *unitEnv) vm(name string) pkg.VM {
	return pkg.VM{Name: name, CPU: 1, Memory: 512, KernelImage: e.kernel}
}
