package container_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/container"
	"github.com/zos-go/zos/pkg/container/containertest"
)

// env is what the root tests of this file share: a private containerd,
// a busybox root filesystem and a network namespace.
type env struct {
	ctd    *containertest.Containerd
	cfg    container.Config
	rootfs string
	netns  string
}

func setup(t *testing.T) env {
	t.Helper()
	testutil.RequireRoot(t, "containerd", "runc", "busybox", "ip")
	ctd := containertest.StartContainerd(t)
	rootfs := filepath.Join(testutil.TempDir(t), "rootfs")
	containertest.BusyboxRootFS(t, rootfs)
	return env{ctd: ctd, cfg: ctd.Config(t), rootfs: rootfs, netns: testutil.NetNS(t)}
}

func (e env) container(name, entry string) pkg.Container {
	return pkg.Container{
		Name:       name,
		RootFS:     e.rootfs,
		Network:    pkg.NetworkInfo{Namespace: e.netns},
		Entrypoint: entry,
		Memory:     64 << 20,
	}
}

// run starts c in a fresh namespace and deletes it at the end of the test.
func run(t *testing.T, m container.Containers, c pkg.Container) string {
	t.Helper()
	ns := testutil.Name(t, "ns")
	if _, err := m.Run(ns, c); err != nil {
		t.Fatalf("Run %s: %v", c.Name, err)
	}
	t.Cleanup(func() {
		if err := m.Delete(ns, pkg.ContainerID(c.Name)); err != nil && !errors.Is(err, container.ErrNotFound) {
			t.Errorf("Delete %s: %v", c.Name, err)
		}
	})
	return ns
}

// start starts c in a fresh namespace; the test deletes it.
func start(t *testing.T, m container.Containers, c pkg.Container) string {
	t.Helper()
	ns := testutil.Name(t, "ns")
	if _, err := m.Run(ns, c); err != nil {
		t.Fatalf("Run %s: %v", c.Name, err)
	}
	return ns
}

// waitLog waits until the container's log contains want and returns it.
func waitLog(t *testing.T, m container.Containers, ns, id, want string) string {
	t.Helper()
	var got string
	testutil.WaitFor(t, 20*time.Second, fmt.Sprintf("log of %s containing %q", id, want), func() error {
		b, err := m.Logs(context.Background(), ns, pkg.ContainerID(id), 0)
		if err != nil {
			return err
		}
		got = string(b)
		if !strings.Contains(got, want) {
			return fmt.Errorf("log so far: %q", got)
		}
		return nil
	})
	return got
}

func status(t *testing.T, m container.Containers, ns, id string) container.Status {
	t.Helper()
	st, err := m.Status(context.Background(), ns, pkg.ContainerID(id))
	if err != nil {
		t.Fatalf("Status %s: %v", id, err)
	}
	return st
}

func TestModuleConformance(t *testing.T) {
	testutil.CheckLeaks(t)
	e := setup(t)
	containertest.Run(t, func(t *testing.T) containertest.Target {
		m, _ := containertest.NewModule(t, e.cfg)
		return containertest.Target{
			Module: m, RootFS: e.rootfs, NetNS: e.netns, Entrypoint: "sleep 3600",
			NS: func() string { return testutil.Name(t, "ns") },
		}
	})
	assertClean(t, e)
}

// assertClean checks that nothing of the module is left: no container, no
// namespace, no state file, no cgroup.
func assertClean(t *testing.T, e env) {
	t.Helper()
	m, stop := containertest.NewModule(t, e.cfg)
	defer stop()
	if ids, err := m.List(""); err != nil || len(ids) != 0 {
		t.Errorf("containers left: %v, %v", ids, err)
	}
	if nss, err := m.ListNS(); err != nil || len(nss) != 0 {
		t.Errorf("namespaces left: %v, %v", nss, err)
	}
	for _, d := range []string{"config", "logs"} {
		entries, _ := os.ReadDir(filepath.Join(e.cfg.Root, d))
		if len(entries) != 0 {
			t.Errorf("state left in %s: %v", d, entries)
		}
	}
	cg, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", e.cfg.CgroupParent, "*"))
	cg = slices.DeleteFunc(cg, func(p string) bool {
		fi, err := os.Stat(p)
		return err != nil || !fi.IsDir()
	})
	if len(cg) != 0 {
		t.Errorf("cgroups left: %v", cg)
	}
}

func TestEnvEntrypointWorkdir(t *testing.T) {
	testutil.CheckLeaks(t)
	e := setup(t)
	m, _ := containertest.NewModule(t, e.cfg)
	c := e.container("show", `sh -c 'echo "greeting=$GREETING"; echo "cwd=$(pwd)"; echo "args=$0|$1"; echo "host=$(hostname)"; exec sleep 3600' first "second arg"`)
	c.Env = []string{"GREETING=hello world"}
	c.WorkingDir = "/root"
	ns := run(t, m, c)
	log := waitLog(t, m, ns, "show", "host=")
	for _, want := range []string{"greeting=hello world\n", "cwd=/root\n", "args=first|second arg\n", "host=show\n"} {
		if !strings.Contains(log, want) {
			t.Errorf("log %q lacks %q", log, want)
		}
	}
	got, err := m.Inspect(ns, "show")
	if err != nil || got.Entrypoint != c.Entrypoint || got.WorkingDir != "/root" || !slices.Equal(got.Env, c.Env) || got.CPU != 1 {
		t.Errorf("Inspect = %+v, %v", got, err)
	}
}

func TestVolumeMount(t *testing.T) {
	testutil.CheckLeaks(t)
	e := setup(t)
	m, _ := containertest.NewModule(t, e.cfg)
	vol := testutil.TempDir(t)
	if err := os.WriteFile(filepath.Join(vol, "in"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := e.container("vol", `sh -c 'cat /data/in; echo from container > /data/out; exec sleep 3600'`)
	c.Mounts = []pkg.MountInfo{{Source: vol, Target: "/data"}}
	ns := run(t, m, c)
	waitLog(t, m, ns, "vol", "from host")
	testutil.WaitFor(t, 10*time.Second, "file written by the container", func() error {
		b, err := os.ReadFile(filepath.Join(vol, "out"))
		if err != nil || string(b) != "from container\n" {
			return fmt.Errorf("%q, %v", b, err)
		}
		return nil
	})
}

func TestRuncFailureLeavesNothing(t *testing.T) {
	testutil.CheckLeaks(t)
	e := setup(t)
	m, _ := containertest.NewModule(t, e.cfg)
	c := e.container("bad", "sleep 10")
	c.WorkingDir = "/etc/passwd" // a file: runc refuses it
	if _, err := m.Run(testutil.Name(t, "ns"), c); err == nil {
		t.Fatal("Run with a file as working dir succeeded")
	}
	assertClean(t, e)
}

func TestDeleteStopsEverything(t *testing.T) {
	testutil.CheckLeaks(t)
	e := setup(t)
	m, _ := containertest.NewModule(t, e.cfg)
	// A process that ignores SIGTERM, and a child of it.
	ns := run(t, m, e.container("stubborn", `sh -c 'trap "" TERM; sleep 3600 & echo ready; while :; do sleep 1; done'`))
	waitLog(t, m, ns, "stubborn", "ready")
	st := status(t, m, ns, "stubborn")
	start := time.Now()
	if err := m.Delete(ns, "stubborn"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if d := time.Since(start); d < e.cfg.StopGrace {
		t.Errorf("Delete took %s, less than the grace %s given to SIGTERM", d, e.cfg.StopGrace)
	}
	if testutil.ProcessAlive(int(st.Pid)) {
		t.Errorf("task pid %d still alive", st.Pid)
	}
	if shims := e.ctd.Shims(); len(shims) != 0 {
		t.Errorf("shims left after Delete: %v", shims)
	}
	if out, err := exec.Command("pgrep", "-f", "sleep 3600").Output(); err == nil {
		for _, p := range strings.Fields(string(out)) {
			if b, _ := os.ReadFile("/proc/" + p + "/cgroup"); strings.Contains(string(b), e.cfg.CgroupParent) {
				t.Errorf("process %s of the container survived", p)
			}
		}
	}
	assertClean(t, e)
}
