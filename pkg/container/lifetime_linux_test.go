package container_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/api/types/runc/options"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/redis/go-redis/v9"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/container"
	"github.com/zos-go/zos/pkg/container/containertest"
	"github.com/zos-go/zos/pkg/container/stats"
)

func TestZosdRestartKeepsTask(t *testing.T) {
	testutil.CheckLeaks(t)
	e := setup(t)
	addr := testutil.RedisServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	m1, stop1 := containertest.NewModule(t, e.cfg)
	c := e.container("keep", "sleep 3600")
	c.Stats = []stats.Stats{{Type: stats.RedisType, Data: stats.Redis{Endpoint: "redis://" + addr + "/keep"}}}
	ns := start(t, m1, c)
	before := status(t, m1, ns, "keep")
	stop1() // zosd exits: the watcher ends, the client closes

	sub := rdb.Subscribe(context.Background(), "keep")
	defer sub.Close()
	if _, err := sub.Receive(context.Background()); err != nil {
		t.Fatal(err)
	}
	m2, _ := containertest.NewModule(t, e.cfg)
	select { // the new zosd publishes the container's stats again
	case <-sub.Channel():
	case <-time.After(10 * time.Second):
		t.Fatal("no stats after the restart")
	}
	time.Sleep(2 * e.cfg.ReconcileInterval) // let the new watcher reconcile
	after := status(t, m2, ns, "keep")
	if after.State != container.StateRunning || after.Pid != before.Pid || after.Restarts != 0 {
		t.Fatalf("after a zosd restart: %+v, before %+v", after, before)
	}
	if !testutil.ProcessAlive(int(before.Pid)) {
		t.Fatalf("task pid %d died", before.Pid)
	}
	if err := m2.Delete(ns, "keep"); err != nil {
		t.Fatalf("Delete by the new module: %v", err)
	}
}

func TestContainerdRestartKeepsTask(t *testing.T) {
	testutil.CheckLeaks(t)
	e := setup(t)
	m, _ := containertest.NewModule(t, e.cfg)
	ns := run(t, m, e.container("survive", `sh -c 'i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.2; done'`))
	waitLog(t, m, ns, "survive", "tick 2\n")
	before := status(t, m, ns, "survive")
	e.ctd.Kill() // SIGKILL; zinit starts containerd again
	var after container.Status
	testutil.WaitFor(t, 20*time.Second, "status through the new containerd", func() error {
		var err error
		after, err = m.Status(context.Background(), ns, "survive")
		return err
	})
	if after.State != container.StateRunning || after.Pid != before.Pid {
		t.Fatalf("after a containerd restart: %+v, before %+v", after, before)
	}
	// Output still flows: the shim and its logger outlived containerd.
	n := strings.Count(waitLog(t, m, ns, "survive", "tick"), "tick")
	waitLog(t, m, ns, "survive", fmt.Sprintf("tick %d\n", n+3))
	time.Sleep(2 * e.cfg.ReconcileInterval)
	if st := status(t, m, ns, "survive"); st.Restarts != 0 || st.Pid != before.Pid {
		t.Fatalf("the watcher restarted a task that never stopped: %+v", st)
	}
}

func TestCrashLoopBacksOff(t *testing.T) {
	testutil.CheckLeaks(t)
	e := setup(t)
	m, _ := containertest.NewModule(t, e.cfg)
	ns := run(t, m, e.container("crash", `sh -c 'echo crashing; exit 3'`))
	var seen []container.Status
	testutil.WaitFor(t, 30*time.Second, "4 restarts", func() error {
		st := status(t, m, ns, "crash")
		if len(seen) == 0 || st.Restarts != seen[len(seen)-1].Restarts || st.Failures != seen[len(seen)-1].Failures {
			seen = append(seen, st)
		}
		if st.Restarts < 4 {
			return fmt.Errorf("%+v", st)
		}
		return nil
	})
	last := seen[len(seen)-1]
	if last.ExitCode != 3 || last.Reason != "exited with code 3" || last.Failures < 4 || last.OOMKilled {
		t.Fatalf("status %+v", last)
	}
	// The delays double: a restart never comes sooner than RestartMin
	// doubled per consecutive failure (a slow machine only makes it later),
	// and by the 3rd failure it is at least 4 × RestartMin.
	var longest time.Duration
	for _, st := range seen {
		if st.State != container.StateRestarting || st.NextRestart.IsZero() {
			continue
		}
		d := st.NextRestart.Sub(st.ExitedAt)
		want := min(e.cfg.RestartMin<<(st.Failures-1), e.cfg.RestartMax)
		if d < want-10*time.Millisecond {
			t.Errorf("failure %d: restart %s after the exit, want at least %s", st.Failures, d, want)
		}
		longest = max(longest, d)
	}
	if longest < 4*e.cfg.RestartMin-10*time.Millisecond {
		t.Errorf("longest restart delay %s over %d observations, want the backoff to reach %s: %+v", longest, len(seen), 4*e.cfg.RestartMin, seen)
	}
	if ids, _ := m.List(ns); !slices.Contains(ids, "crash") {
		t.Fatal("the crash looping container was removed")
	}
	if log := waitLog(t, m, ns, "crash", "crashing"); strings.Count(log, "crashing") < 4 {
		t.Errorf("the ring kept %d starts' output, want every one: %q", strings.Count(log, "crashing"), log)
	}
	if err := m.Delete(ns, "crash"); err != nil {
		t.Fatalf("Delete during the backoff: %v", err)
	}
}

func TestStoppedWatcherRecordsExitLater(t *testing.T) {
	testutil.CheckLeaks(t)
	e := setup(t)
	m1, stop1 := containertest.NewModule(t, e.cfg)
	ns := start(t, m1, e.container("late", `sh -c 'sleep 1; exit 7'`))
	stop1() // the exit happens while zosd is down
	time.Sleep(2 * time.Second)
	m2, _ := containertest.NewModule(t, e.cfg)
	t.Cleanup(func() { _ = m2.Delete(ns, "late") })
	testutil.WaitFor(t, 20*time.Second, "exit recorded and task restarted", func() error {
		st := status(t, m2, ns, "late")
		if st.ExitCode != 7 || st.Restarts < 1 {
			return fmt.Errorf("%+v", st)
		}
		return nil
	})
}

func TestInterruptedRunCleanedUp(t *testing.T) {
	testutil.CheckLeaks(t)
	e := setup(t)
	// What a zosd killed in the middle of Run leaves: a container marked
	// as being created, with a task.
	cl, err := containerd.New(e.cfg.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ns := testutil.Name(t, "ns")
	ctx := namespaces.WithNamespace(context.Background(), ns)
	c, err := cl.NewContainer(ctx, "half",
		containerd.WithNewSpec(oci.WithRootFSPath(e.rootfs), oci.WithDefaultPathEnv, oci.WithProcessArgs("sleep", "3600"),
			oci.WithLinuxNamespace(specsNetNS(e.netns)), oci.WithCgroup(e.cfg.CgroupParent+"/"+ns+"/half")),
		containerd.WithRuntime(e.cfg.Runtime, &options.Options{Root: e.cfg.RuncRoot}),
		containerd.WithContainerLabels(map[string]string{"zos.io/managed": "1", "zos.io/state": "creating"}))
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	m, _ := containertest.NewModule(t, e.cfg)
	testutil.WaitFor(t, 20*time.Second, "leftover removed", func() error {
		if _, err := m.Inspect(ns, "half"); err == nil {
			return fmt.Errorf("still there")
		}
		return nil
	})
	if testutil.ProcessAlive(int(task.Pid())) {
		t.Fatalf("leftover task %d alive", task.Pid())
	}
	assertClean(t, e)
}

func specsNetNS(name string) specs.LinuxNamespace {
	return specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/run/netns/" + name}
}
