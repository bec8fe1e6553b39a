package container

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd/api/types/runc/options"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/zos-go/zos/internal/revert"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/container/logger"
)

// Labels and extension the module keeps on its containers (containerd's
// store, so they survive restarts of zosd).
const (
	labelManaged     = "zos.io/managed"
	labelState       = "zos.io/state" // stateCreating, stateCreated, stateDeleting
	labelStartedAt   = "zos.io/started-at"
	labelRestarts    = "zos.io/restarts"
	labelFailures    = "zos.io/failures"
	labelExitCode    = "zos.io/exit-code"
	labelExitedAt    = "zos.io/exited-at"
	labelOOM         = "zos.io/oom"
	labelReason      = "zos.io/reason"
	labelNextRestart = "zos.io/next-restart"
	extRequest       = "zos.io/request"
	requestTypeURL   = "zos.io/container.Request"

	stateCreating = "creating"
	stateCreated  = "created"
	stateDeleting = "deleting"
)

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseStamp(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

func (m *Module) run(ctx context.Context, ns string, data pkg.Container) (pkg.ContainerID, error) {
	req, err := Prepare(ns, data, PrepareOptions{NetNSExists: m.netnsExists, DefaultMemoryBytes: m.cfg.DefaultMemoryBytes})
	if err != nil {
		return "", err
	}
	c := req.Container
	env := specEnv{netnsDir: m.cfg.NetNSDir, cgroupParent: m.cfg.CgroupParent, corexPort: m.cfg.CorexPort, swapAccount: m.swap}
	if m.cfg.ResolvConf != "" {
		if _, err := os.Stat(m.cfg.ResolvConf); err == nil {
			env.resolvConf = m.cfg.ResolvConf
		}
	}
	if c.Interactive {
		if env.corex, err = m.corexPath(); err != nil {
			return "", err
		}
	}
	spec, err := buildSpec(ctx, env, req)
	if err != nil {
		return "", fmt.Errorf("container %s/%s: spec: %w", ns, c.Name, err)
	}
	reqJSON, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("container %s/%s: %w", ns, c.Name, err)
	}

	unlock := m.locks.Lock(key(ns, c.Name))
	defer unlock()
	ctx = namespaces.WithNamespace(ctx, ns)
	nss, err := m.client.NamespaceService().List(ctx)
	if err != nil {
		return "", m.wrapC(ns, c.Name, err)
	}
	var undo revert.Stack
	defer undo.Unwind()
	cleanup := context.WithoutCancel(ctx)
	if !slices.Contains(nss, ns) {
		undo.Push(func() { _ = m.client.NamespaceService().Delete(cleanup, ns) }) // fails unless empty
	}
	cont, err := m.client.NewContainer(ctx, c.Name,
		containerd.WithSpec(spec),
		containerd.WithRuntime(m.cfg.Runtime, &options.Options{Root: m.cfg.RuncRoot}),
		containerd.WithContainerLabels(map[string]string{labelManaged: "1", labelState: stateCreating}),
		containerd.WithContainerExtension(extRequest, &anypb.Any{TypeUrl: requestTypeURL, Value: reqJSON}),
	)
	if err != nil {
		return "", m.wrapC(ns, c.Name, err)
	}
	undo.Push(func() {
		_ = cont.Delete(cleanup)
		removeEmptyCgroups(path.Join(m.cfg.CgroupParent, ns))
	})
	if err := logger.WriteConfig(m.cfg.Root, ns, c.Name, c.Logs); err != nil {
		return "", err
	}
	undo.Push(func() { _ = m.removeState(ns, c.Name) })
	task, err := m.startTask(ctx, cont)
	if err != nil {
		return "", fmt.Errorf("container %s/%s: %w", ns, c.Name, err)
	}
	undo.Push(func() { _, _ = task.Delete(cleanup, containerd.WithProcessKill) })
	if _, err := cont.SetLabels(ctx, map[string]string{labelState: stateCreated, labelStartedAt: stamp(time.Now())}); err != nil {
		return "", m.wrapC(ns, c.Name, err)
	}
	undo.Done()
	m.log.InfoContext(ctx, "container started", "namespace", ns, "container", c.Name, "pid", task.Pid())
	m.watch(ns, c.Name, c)
	return pkg.ContainerID(c.Name), nil
}

// startTask creates and starts the task of cont, its output going to the
// shim logger.
func (m *Module) startTask(ctx context.Context, cont containerd.Container) (containerd.Task, error) {
	ns, _ := namespaces.Namespace(ctx)
	args := logger.ShimConfig{Root: m.cfg.Root, RingBytes: m.cfg.LogRingBytes, RingFiles: m.cfg.LogRingFiles}.Args()
	task, err := cont.NewTask(ctx, cio.BinaryIO(m.shimLogs, args))
	if err != nil {
		return nil, m.taskError("create task", err)
	}
	if err := task.Start(ctx); err != nil {
		_, _ = task.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
		return nil, m.taskError("start task", err)
	}
	m.log.DebugContext(ctx, "task started", "namespace", ns, "container", cont.ID(), "pid", task.Pid())
	return task, nil
}

// taskError classifies runc's complaints about the process to run as
// ErrInvalidEntrypoint.
func (m *Module) taskError(what string, err error) error {
	msg := err.Error()
	for _, s := range []string{"executable file not found", "no such file or directory: unknown", "permission denied: unknown", "exec format error"} {
		if strings.Contains(msg, s) && strings.Contains(msg, "exec") {
			return fmt.Errorf("%s: %v: %w", what, err, ErrInvalidEntrypoint)
		}
	}
	return m.wrap(what, err)
}

func (m *Module) inspect(ctx context.Context, ns, id string) (pkg.Container, error) {
	if err := validPair(ns, id); err != nil {
		return pkg.Container{}, err
	}
	ctx = namespaces.WithNamespace(ctx, ns)
	cont, err := m.client.LoadContainer(ctx, id)
	if err != nil {
		return pkg.Container{}, m.wrapC(ns, id, err)
	}
	info, err := cont.Info(ctx)
	if err != nil {
		return pkg.Container{}, m.wrapC(ns, id, err)
	}
	if ext, ok := info.Extensions[extRequest]; ok && ext.GetTypeUrl() == requestTypeURL {
		var c pkg.Container
		if err := json.Unmarshal(ext.GetValue(), &c); err == nil {
			return c, nil
		}
	}
	spec, err := cont.Spec(ctx)
	if err != nil {
		return pkg.Container{}, m.wrapC(ns, id, err)
	}
	return fromSpec(id, spec), nil
}

// fromSpec reads a container back from its spec, as the original did for
// every container.
func fromSpec(id string, spec *specs.Spec) pkg.Container {
	c := pkg.Container{Name: id}
	if spec.Root != nil {
		c.RootFS = spec.Root.Path
	}
	if p := spec.Process; p != nil {
		c.Entrypoint = strings.Join(p.Args, " ")
		c.Env = p.Env
		if p.Cwd != "/" {
			c.WorkingDir = p.Cwd
		}
		c.Interactive = len(p.Args) > 0 && p.Args[0] == corexPath
	}
	for _, mnt := range spec.Mounts {
		switch mnt.Type {
		case "proc", "tmpfs", "devpts", "mqueue", "sysfs", "cgroup":
			continue
		}
		c.Mounts = append(c.Mounts, pkg.MountInfo{Source: mnt.Source, Target: mnt.Destination})
	}
	if l := spec.Linux; l != nil {
		for _, n := range l.Namespaces {
			if n.Type == specs.NetworkNamespace && n.Path != "" {
				c.Network.Namespace = path.Base(n.Path)
			}
		}
		if r := l.Resources; r != nil {
			if r.Memory != nil && r.Memory.Limit != nil && *r.Memory.Limit > 0 {
				c.Memory = uint64(*r.Memory.Limit)
			}
			if r.CPU != nil && r.CPU.Quota != nil && r.CPU.Period != nil && *r.CPU.Period > 0 && *r.CPU.Quota > 0 {
				c.CPU = uint((uint64(*r.CPU.Quota) + *r.CPU.Period - 1) / *r.CPU.Period)
			}
		}
	}
	return c
}

func (m *Module) delete(ctx context.Context, ns, id string) error {
	if err := validPair(ns, id); err != nil {
		return err
	}
	k := key(ns, id)
	unlock := m.locks.Lock(k)
	defer unlock()
	ctx = namespaces.WithNamespace(ctx, ns)
	cont, err := m.client.LoadContainer(ctx, id)
	if err != nil {
		return m.wrapC(ns, id, err)
	}
	m.unwatch(ns, id, true)
	defer func() {
		m.mu.Lock()
		delete(m.deleting, k)
		m.mu.Unlock()
	}()
	if _, err := cont.SetLabels(ctx, map[string]string{labelState: stateDeleting, labelNextRestart: ""}); err != nil {
		return m.wrapC(ns, id, err)
	}
	if err := m.stopTask(ctx, cont); err != nil {
		return fmt.Errorf("container %s/%s: %w", ns, id, err)
	}
	if err := cont.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
		return m.wrapC(ns, id, err)
	}
	if err := m.removeState(ns, id); err != nil {
		m.log.WarnContext(ctx, "container state not removed", "namespace", ns, "container", id, "err", err)
	}
	removeEmptyCgroups(path.Join(m.cfg.CgroupParent, ns))
	_ = m.client.NamespaceService().Delete(ctx, ns) // only succeeds when empty
	m.log.InfoContext(ctx, "container deleted", "namespace", ns, "container", id)
	return nil
}

// stopTask stops and deletes the task of cont, if any: SIGTERM, StopGrace,
// then SIGKILL to all its processes.
func (m *Module) stopTask(ctx context.Context, cont containerd.Container) error {
	task, err := cont.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return m.wrap("load task", err)
	}
	st, err := task.Status(ctx)
	if err != nil && !errdefs.IsNotFound(err) {
		return m.wrap("task status", err)
	}
	if st.Status == containerd.Running || st.Status == containerd.Paused || st.Status == containerd.Created {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		exited, err := task.Wait(wctx)
		if err != nil {
			return m.wrap("wait task", err)
		}
		if err := task.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
			return m.wrap("SIGTERM", err)
		}
		select {
		case <-exited:
		case <-time.After(m.cfg.StopGrace):
			m.log.InfoContext(ctx, "container ignored SIGTERM, killing", "container", cont.ID())
			if err := task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
				return m.wrap("SIGKILL", err)
			}
			select {
			case <-exited:
			case <-ctx.Done():
				return fmt.Errorf("task did not exit after SIGKILL: %w", ctx.Err())
			}
		case <-ctx.Done():
			return fmt.Errorf("task did not exit: %w", ctx.Err())
		}
	}
	if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
		return m.wrap("delete task", err)
	}
	return nil
}

// status reads the run status of cont.
func (m *Module) status(ctx context.Context, cont containerd.Container) (Status, error) {
	labels, err := cont.Labels(ctx)
	if err != nil {
		return Status{}, m.wrap("container "+cont.ID(), err)
	}
	st := Status{
		ID:          pkg.ContainerID(cont.ID()),
		StartedAt:   parseStamp(labels[labelStartedAt]),
		ExitedAt:    parseStamp(labels[labelExitedAt]),
		NextRestart: parseStamp(labels[labelNextRestart]),
		OOMKilled:   labels[labelOOM] == "1",
		Reason:      labels[labelReason],
		State:       StateStopped,
	}
	st.Restarts, _ = strconv.Atoi(labels[labelRestarts])
	st.Failures, _ = strconv.Atoi(labels[labelFailures])
	code, _ := strconv.ParseUint(labels[labelExitCode], 10, 32)
	st.ExitCode = uint32(code)
	switch labels[labelState] {
	case stateCreating:
		st.State = StateCreating
		return st, nil
	case stateDeleting:
		return st, nil
	}
	task, err := cont.Task(ctx, nil)
	switch {
	case err == nil:
		ts, err := task.Status(ctx)
		if err != nil && !errdefs.IsNotFound(err) {
			return Status{}, m.wrap("task of "+cont.ID(), err)
		}
		if ts.Status == containerd.Running || ts.Status == containerd.Paused {
			st.State, st.Pid = StateRunning, task.Pid()
			st.NextRestart = time.Time{}
			return st, nil
		}
	case !errdefs.IsNotFound(err):
		return Status{}, m.wrap("task of "+cont.ID(), err)
	}
	if !st.NextRestart.IsZero() {
		st.State = StateRestarting
	}
	return st, nil
}
