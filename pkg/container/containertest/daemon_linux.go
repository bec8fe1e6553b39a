package containertest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/container"
	"github.com/zos-go/zos/pkg/zinit"
	"github.com/zos-go/zos/pkg/zinit/zinittest"
)

// Containerd is a private containerd for one test, run as a service of a
// private zinit exactly as a node runs it (container.DaemonConfig.Service).
type Containerd struct {
	Daemon  container.DaemonConfig
	Zinit   *zinit.Client
	Service string
	t       testing.TB

	mu      sync.Mutex
	cgroups []string // guarded by mu; cgroup parents given by Config
}

// StartContainerd starts zinit and containerd under testutil.TempDir and
// waits until containerd answers. At the end of the test every container
// left in it is killed and deleted, containerd and zinit are stopped, and
// the test fails if a shim of this containerd is still alive (it is then
// killed).
func StartContainerd(t testing.TB) *Containerd {
	t.Helper()
	testutil.RequireRoot(t, "containerd", "containerd-shim-runc-v2", "runc", "ctr")
	cl, _ := zinittest.Start(t)
	d := container.DaemonConfig{Dir: filepath.Join(testutil.TempDir(t), "ctd")}
	svc, err := d.Service()
	if err != nil {
		t.Fatalf("containerd service: %v", err)
	}
	name := testutil.Name(t, "ctd")
	if err := cl.AddService(name, svc); err != nil {
		t.Fatalf("add containerd service: %v", err)
	}
	if err := cl.Monitor(name); err != nil {
		t.Fatalf("monitor containerd: %v", err)
	}
	c := &Containerd{Daemon: d, Zinit: cl, Service: name, t: t}
	t.Cleanup(c.cleanup)
	c.WaitReady()
	return c
}

// WaitReady waits until containerd answers on its socket.
func (c *Containerd) WaitReady() {
	c.t.Helper()
	testutil.WaitFor(c.t, 30*time.Second, "containerd serving", func() error {
		cl, err := containerd.New(c.Daemon.Address(), containerd.WithTimeout(time.Second))
		if err != nil {
			return err
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err = cl.Version(ctx)
		return err
	})
}

// Pid returns the pid of the containerd process.
func (c *Containerd) Pid() int {
	c.t.Helper()
	st, err := c.Zinit.Status(c.Service)
	if err != nil {
		c.t.Fatalf("containerd status: %v", err)
	}
	return st.Pid
}

// Kill sends SIGKILL to containerd; zinit starts it again. It waits until
// the new containerd answers.
func (c *Containerd) Kill() {
	c.t.Helper()
	old := c.Pid()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		c.t.Fatalf("kill containerd: %v", err)
	}
	testutil.WaitFor(c.t, 30*time.Second, "containerd restarted by zinit", func() error {
		st, err := c.Zinit.Status(c.Service)
		if err != nil {
			return err
		}
		if st.Pid == 0 || st.Pid == old {
			return fmt.Errorf("pid %d", st.Pid)
		}
		return nil
	})
	c.WaitReady()
}

func (c *Containerd) cleanup() {
	t := c.t
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if cl, err := containerd.New(c.Daemon.Address(), containerd.WithTimeout(2*time.Second)); err == nil {
		removeAll(ctx, cl)
		cl.Close()
	}
	if err := c.Zinit.Destroy(ctx, c.Service); err != nil {
		t.Errorf("stop containerd: %v", err)
	}
	for _, pid := range shimsOf(c.Daemon.Address()) {
		t.Errorf("shim %d of the test's containerd left running; killing it", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	c.mu.Lock()
	parents := c.cgroups
	c.mu.Unlock()
	for _, p := range parents {
		removeCgroupTree(p)
	}
}

// removeCgroupTree removes the (empty) cgroup p and its descendants in
// every hierarchy: what runc leaves above its containers' cgroups.
func removeCgroupTree(p string) {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots = append(roots, "/sys/fs/cgroup")
	for _, r := range roots {
		top := filepath.Join(r, p)
		var dirs []string
		_ = filepath.WalkDir(top, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			_ = syscall.Rmdir(dirs[i])
		}
	}
}

// removeAll kills and deletes every task and container of a containerd.
func removeAll(ctx context.Context, cl *containerd.Client) {
	nss, _ := cl.NamespaceService().List(ctx)
	for _, ns := range nss {
		nctx := namespaces.WithNamespace(ctx, ns)
		cs, _ := cl.Containers(nctx)
		for _, c := range cs {
			if task, err := c.Task(nctx, nil); err == nil {
				_, _ = task.Delete(nctx, containerd.WithProcessKill)
			}
			_ = c.Delete(nctx)
		}
		_ = cl.NamespaceService().Delete(nctx, ns)
	}
}

// shimsOf lists the shim processes serving the containerd at address.
func shimsOf(address string) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) == 0 || !strings.Contains(filepath.Base(args[0]), "containerd-shim") {
			continue
		}
		for i, a := range args {
			if a == "-address" && i+1 < len(args) && args[i+1] == address {
				out = append(out, pid)
			}
		}
	}
	return out
}

// Shims lists the live shim processes of this containerd.
func (c *Containerd) Shims() []int { return shimsOf(c.Daemon.Address()) }

var (
	buildMu  sync.Mutex
	built    = map[string]string{}
	buildErr = map[string]error{}
)

// Binary returns a static build of one of the module's commands
// ("zos-shimlogs" or "zos-corex"), built once per test process with the go
// tool; the environment variable ZOS_SHIMLOGS_BIN or ZOS_COREX_BIN names a
// prebuilt one instead.
func Binary(t testing.TB, name string) string {
	t.Helper()
	env := "ZOS_" + strings.ToUpper(strings.TrimPrefix(name, "zos-")) + "_BIN"
	if p := os.Getenv(env); p != "" {
		return p
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[name]; ok {
		return p
	}
	if err, ok := buildErr[name]; ok {
		t.Fatalf("build %s: %v", name, err)
	}
	dir := filepath.Join(testutil.Root(t), "containertest-bin")
	out := filepath.Join(dir, name)
	err := os.MkdirAll(dir, 0o755)
	if err == nil {
		cmd := exec.Command("go", "build", "-o", out, "github.com/zos-go/zos/cmd/"+name)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		var msg []byte
		if msg, err = cmd.CombinedOutput(); err != nil {
			err = fmt.Errorf("%v: %s", err, msg)
		}
	}
	if err != nil {
		buildErr[name] = err
		t.Fatalf("build %s: %v", name, err)
	}
	built[name] = out
	return out
}

// BusyboxRootFS fills dir with a root filesystem made of the static busybox
// of the host (Debian's busybox-static): /bin/busybox, a relative link per
// applet in /bin, and the usual empty directories.
func BusyboxRootFS(t testing.TB, dir string) {
	t.Helper()
	testutil.RequireTools(t, "busybox")
	bb, _ := exec.LookPath("busybox")
	for _, d := range []string{"bin", "proc", "sys", "dev", "etc", "tmp", "run", "root", "var"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := copyFile(bb, filepath.Join(dir, "bin", "busybox"), 0o755); err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", applet)); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Config returns a module configuration for c: state under a test
// directory, cgroups under a parent carrying this process's prefix, fast
// restarts (100 ms doubling up to 2 s), a 1 s stop grace.
func (c *Containerd) Config(t testing.TB) container.Config {
	t.Helper()
	cfg := container.DefaultConfig(testutil.TempDir(t))
	cfg.Address = c.Daemon.Address()
	cfg.RuncRoot = c.Daemon.RuncRoot()
	cfg.CgroupParent = "/" + testutil.Prefix() + "-zos"
	c.mu.Lock()
	c.cgroups = append(c.cgroups, cfg.CgroupParent)
	c.mu.Unlock()
	cfg.ShimLogs = Binary(t, "zos-shimlogs")
	cfg.Corex = Binary(t, "zos-corex")
	cfg.StatsInterval = 200 * time.Millisecond
	cfg.StopGrace = time.Second
	cfg.RestartMin = 100 * time.Millisecond
	cfg.RestartMax = 2 * time.Second
	cfg.ReconcileInterval = time.Second
	cfg.OpTimeout = time.Minute
	return cfg
}

// NewModule makes a Module with cfg and runs its Watch until the end of
// the test (stopped before containerd). The returned stop function ends
// Watch early (as a zosd exit would) and waits for it.
func NewModule(t testing.TB, cfg container.Config) (*container.Module, func()) {
	t.Helper()
	m, err := container.New(cfg, slog.New(slog.NewTextHandler(testOutput(t), &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("container.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Watch(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Watch: %v", err)
			}
			m.Close()
		})
	}
	t.Cleanup(stop)
	return m, stop
}

func testOutput(t testing.TB) io.Writer {
	if o, ok := t.(interface{ Output() io.Writer }); ok {
		return o.Output()
	}
	return io.Discard
}
