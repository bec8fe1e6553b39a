package container

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"

	"github.com/zos-go/zos/pkg"
)

// watchedState is what Watch keeps per container: a pending restart and
// the stats publisher.
type watchedState struct {
	timer       *restartTimer
	statsCancel context.CancelFunc
}

type restartTimer struct {
	t  *time.Timer
	at time.Time
}

// ErrWatching is returned by a second concurrent Watch.
var ErrWatching = errors.New("container module already watching")

// Watch runs the module's watcher until ctx ends: it follows containerd's
// task exit and out-of-memory events, restarts exited tasks with backoff,
// publishes stats, and every ReconcileInterval (and at start, and after
// losing containerd) compares each container with its task, finishing
// what a crash interrupted. It returns nil when ctx ends; containers keep
// running.
func (m *Module) Watch(ctx context.Context) error {
	m.mu.Lock()
	if m.runCtx != nil {
		m.mu.Unlock()
		return ErrWatching
	}
	m.runCtx = ctx
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.runCtx = nil
		for k, ws := range m.watched {
			m.stopWatchLocked(ws)
			delete(m.watched, k)
		}
		m.mu.Unlock()
		m.wg.Wait()
	}()
	wait := time.Second
	for {
		err := m.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		m.log.WarnContext(ctx, "containerd events lost, resubscribing", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(wait*2, 10*time.Second)
	}
}

// follow subscribes to events, reconciles, then handles events until the
// stream fails.
func (m *Module) follow(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, errs := m.client.Subscribe(sctx, `topic=="/tasks/exit"`, `topic=="/tasks/oom"`)
	if err := m.reconcile(ctx); err != nil {
		return err
	}
	tick := time.NewTicker(m.cfg.ReconcileInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-ch:
			m.handle(ctx, e)
		case err := <-errs:
			return err
		case <-tick.C:
			if err := m.reconcile(ctx); err != nil {
				return err
			}
		}
	}
}

// handle dispatches one event; exits are handled in their own goroutine
// (they wait for the container's lock, which a Delete may hold).
func (m *Module) handle(ctx context.Context, e *events.Envelope) {
	if e == nil || e.Event == nil {
		return
	}
	v, err := typeurl.UnmarshalAny(e.Event)
	if err != nil {
		return
	}
	switch ev := v.(type) {
	case *apievents.TaskOOM:
		m.mu.Lock()
		m.oomSeen[key(e.Namespace, ev.ContainerID)] = time.Now()
		m.mu.Unlock()
	case *apievents.TaskExit:
		if ev.ID != ev.ContainerID { // an exec'd process, not the task
			return
		}
		at := time.Now()
		if ev.ExitedAt != nil {
			at = ev.ExitedAt.AsTime()
		}
		m.wg.Go(func() { m.onExit(ctx, e.Namespace, ev.ContainerID, ev.ExitStatus, at) })
	}
}

func (m *Module) isDeleting(k string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.deleting[k]
}

// onExit records an exit of the task of a managed container and schedules
// its restart.
func (m *Module) onExit(ctx context.Context, ns, id string, code uint32, at time.Time) {
	unlock := m.locks.Lock(key(ns, id))
	defer unlock()
	ctx = namespaces.WithNamespace(ctx, ns)
	cont, err := m.client.LoadContainer(ctx, id)
	if err != nil {
		return
	}
	labels, err := cont.Labels(ctx)
	if err != nil || labels[labelManaged] != "1" || labels[labelState] != stateCreated || m.isDeleting(key(ns, id)) {
		return
	}
	if st, err := m.taskState(ctx, cont); err == nil && st.Status == containerd.Running {
		return // a late event of a task already restarted
	}
	m.recordExitLocked(ctx, cont, labels, code, at, "")
}

// recordExitLocked writes the exit and the restart plan to the labels and
// schedules the restart. reason overrides the one derived from code.
func (m *Module) recordExitLocked(ctx context.Context, cont containerd.Container, labels map[string]string, code uint32, at time.Time, reason string) {
	ns, _ := namespaces.Namespace(ctx)
	id := cont.ID()
	if labels[labelExitedAt] == stamp(at) && labels[labelNextRestart] != "" {
		m.schedule(ns, id, parseStamp(labels[labelNextRestart]))
		return
	}
	oom := m.takeOOM(key(ns, id), ns, id)
	if reason == "" {
		reason = ExitReason(code, oom)
	}
	failures, _ := strconv.Atoi(labels[labelFailures])
	if started := parseStamp(labels[labelStartedAt]); !started.IsZero() && at.Sub(started) >= m.cfg.RestartReset {
		failures = 0
	}
	failures++
	next := at.Add(m.backoff(failures))
	if now := time.Now(); next.Before(now) {
		next = now
	}
	oomLabel := ""
	if oom {
		oomLabel = "1"
	}
	if _, err := cont.SetLabels(ctx, map[string]string{
		labelExitCode: strconv.FormatUint(uint64(code), 10), labelExitedAt: stamp(at), labelOOM: oomLabel,
		labelReason: reason, labelFailures: strconv.Itoa(failures), labelNextRestart: stamp(next),
	}); err != nil {
		m.log.WarnContext(ctx, "exit not recorded", "namespace", ns, "container", id, "err", err)
	}
	m.log.WarnContext(ctx, "container exited, restart scheduled", "namespace", ns, "container", id,
		"reason", reason, "failures", failures, "restart_at", next)
	m.schedule(ns, id, next)
}

// backoff is the delay before the restart following the n-th consecutive
// failure.
func (m *Module) backoff(n int) time.Duration {
	d := m.cfg.RestartMin << min(n-1, 30)
	if d <= 0 || d > m.cfg.RestartMax {
		return m.cfg.RestartMax
	}
	return d
}

// takeOOM reports whether the container's last exit was an out-of-memory
// kill: an OOM event in the last minute, or the kill counter of its
// (still present) memory cgroup.
func (m *Module) takeOOM(k, ns, id string) bool {
	m.mu.Lock()
	seen, ok := m.oomSeen[k]
	delete(m.oomSeen, k)
	m.mu.Unlock()
	if ok && time.Since(seen) < time.Minute {
		return true
	}
	p := cgroupsPath(m.cfg.CgroupParent, ns, id)
	for _, f := range []string{"memory.oom_control", "memory.events"} {
		s, err := cgroupFile("memory", p, f)
		if err != nil {
			continue
		}
		for line := range strings.Lines(s) {
			if n, ok := strings.CutPrefix(strings.TrimSpace(line), "oom_kill "); ok && n != "0" {
				return true
			}
		}
	}
	return false
}

func (m *Module) taskState(ctx context.Context, cont containerd.Container) (containerd.Status, error) {
	task, err := cont.Task(ctx, nil)
	if err != nil {
		return containerd.Status{}, err
	}
	return task.Status(ctx)
}

// schedule arranges a restart of the container at `at` (when Watch runs).
func (m *Module) schedule(ns, id string, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.runCtx == nil {
		return
	}
	k := key(ns, id)
	ws := m.watched[k]
	if ws == nil {
		ws = &watchedState{}
		m.watched[k] = ws
	}
	if ws.timer != nil {
		if ws.timer.at.Equal(at) {
			return
		}
		if ws.timer.t.Stop() {
			m.wg.Done()
		}
	}
	rt := &restartTimer{at: at}
	m.wg.Add(1)
	rt.t = time.AfterFunc(time.Until(at), func() {
		defer m.wg.Done()
		m.mu.Lock()
		ctx := m.runCtx
		if w := m.watched[k]; w != nil && w.timer == rt {
			w.timer = nil
		}
		m.mu.Unlock()
		if ctx != nil {
			m.restart(ctx, ns, id)
		}
	})
	ws.timer = rt
}

// restart starts the task of a container whose restart time has come.
func (m *Module) restart(ctx context.Context, ns, id string) {
	unlock := m.locks.Lock(key(ns, id))
	defer unlock()
	if m.isDeleting(key(ns, id)) {
		return
	}
	ctx = namespaces.WithNamespace(ctx, ns)
	cont, err := m.client.LoadContainer(ctx, id)
	if err != nil {
		return
	}
	labels, err := cont.Labels(ctx)
	if err != nil || labels[labelManaged] != "1" || labels[labelState] != stateCreated {
		return
	}
	next := parseStamp(labels[labelNextRestart])
	if next.IsZero() {
		return
	}
	if time.Now().Before(next) {
		m.schedule(ns, id, next)
		return
	}
	if task, err := cont.Task(ctx, nil); err == nil {
		if st, err := task.Status(ctx); err == nil && st.Status == containerd.Running {
			_, _ = cont.SetLabels(ctx, map[string]string{labelNextRestart: ""})
			return
		}
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			m.log.WarnContext(ctx, "old task not deleted", "namespace", ns, "container", id, "err", err)
		}
	}
	restarts, _ := strconv.Atoi(labels[labelRestarts])
	task, err := m.startTask(ctx, cont)
	if err != nil {
		failures, _ := strconv.Atoi(labels[labelFailures])
		failures++
		next := time.Now().Add(m.backoff(failures))
		reason := fmt.Sprintf("restart failed: %v", err)
		_, _ = cont.SetLabels(ctx, map[string]string{labelFailures: strconv.Itoa(failures), labelReason: reason, labelNextRestart: stamp(next)})
		m.log.WarnContext(ctx, "container restart failed", "namespace", ns, "container", id, "err", err, "retry_at", next)
		m.schedule(ns, id, next)
		return
	}
	if _, err := cont.SetLabels(ctx, map[string]string{
		labelRestarts: strconv.Itoa(restarts + 1), labelStartedAt: stamp(time.Now()), labelNextRestart: "",
	}); err != nil {
		m.log.WarnContext(ctx, "restart not recorded", "namespace", ns, "container", id, "err", err)
	}
	m.log.InfoContext(ctx, "container restarted", "namespace", ns, "container", id, "pid", task.Pid(), "restarts", restarts+1)
}

// reconcile compares every managed container with its task.
func (m *Module) reconcile(ctx context.Context) error {
	nss, err := m.client.NamespaceService().List(ctx)
	if err != nil {
		return m.wrap("list namespaces", err)
	}
	for _, ns := range nss {
		cs, err := m.client.Containers(namespaces.WithNamespace(ctx, ns), `labels."`+labelManaged+`"==1`)
		if err != nil {
			return m.wrap("list containers of "+ns, err)
		}
		for _, c := range cs {
			if ctx.Err() != nil {
				return nil
			}
			m.reconcileOne(ctx, ns, c.ID())
		}
	}
	return nil
}

func (m *Module) reconcileOne(ctx context.Context, ns, id string) {
	k := key(ns, id)
	unlock := m.locks.Lock(k)
	defer unlock()
	if m.isDeleting(k) {
		return
	}
	ctx = namespaces.WithNamespace(ctx, ns)
	cont, err := m.client.LoadContainer(ctx, id)
	if err != nil {
		return
	}
	labels, err := cont.Labels(ctx)
	if err != nil {
		return
	}
	switch labels[labelState] {
	case stateCreating, stateDeleting:
		// Run holds the lock while creating, Delete while deleting: this
		// one was left by a crash. Finish removing it.
		m.log.WarnContext(ctx, "removing container left by an interrupted run or delete", "namespace", ns, "container", id, "state", labels[labelState])
		if err := m.stopTask(ctx, cont); err != nil {
			m.log.WarnContext(ctx, "leftover task not removed", "namespace", ns, "container", id, "err", err)
			return
		}
		if err := cont.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
			m.log.WarnContext(ctx, "leftover container not removed", "namespace", ns, "container", id, "err", err)
			return
		}
		_ = m.removeState(ns, id)
		removeEmptyCgroups(path.Join(m.cfg.CgroupParent, ns))
		_ = m.client.NamespaceService().Delete(ctx, ns)
		return
	}
	task, err := cont.Task(ctx, nil)
	if err != nil && !errdefs.IsNotFound(err) {
		return
	}
	if err == nil {
		st, err := task.Status(ctx)
		if err != nil {
			return
		}
		if st.Status == containerd.Running || st.Status == containerd.Paused {
			if labels[labelNextRestart] != "" {
				_, _ = cont.SetLabels(ctx, map[string]string{labelNextRestart: ""})
			}
			if c, err := m.inspect(ctx, ns, id); err == nil {
				m.watch(ns, id, c)
			}
			return
		}
		if next := labels[labelNextRestart]; next != "" {
			m.schedule(ns, id, parseStamp(next))
			return
		}
		m.recordExitLocked(ctx, cont, labels, st.ExitStatus, st.ExitTime, "")
		return
	}
	if next := labels[labelNextRestart]; next != "" {
		m.schedule(ns, id, parseStamp(next))
		return
	}
	m.recordExitLocked(ctx, cont, labels, 255, time.Now(), "task lost (its shim is gone)")
}

// unwatch stops the restart timer and the stats of a container; with
// deleting, the container is marked as being deleted until Delete ends.
func (m *Module) unwatch(ns, id string, deleting bool) {
	k := key(ns, id)
	m.mu.Lock()
	defer m.mu.Unlock()
	if deleting {
		m.deleting[k] = true
	}
	if ws := m.watched[k]; ws != nil {
		m.stopWatchLocked(ws)
		delete(m.watched, k)
	}
}

func (m *Module) stopWatchLocked(ws *watchedState) {
	if ws.timer != nil && ws.timer.t.Stop() {
		m.wg.Done()
	}
	ws.timer = nil
	if ws.statsCancel != nil {
		ws.statsCancel()
		ws.statsCancel = nil
	}
}

// watch starts the stats publisher of a running container with stats
// backends (once; when Watch runs).
func (m *Module) watch(ns, id string, c pkg.Container) {
	if len(c.Stats) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.runCtx == nil || m.deleting[key(ns, id)] {
		return
	}
	ws := m.watched[key(ns, id)]
	if ws == nil {
		ws = &watchedState{}
		m.watched[key(ns, id)] = ws
	}
	if ws.statsCancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(m.runCtx)
	ws.statsCancel = cancel
	m.wg.Go(func() { m.publishStats(ctx, ns, id, c) })
}
