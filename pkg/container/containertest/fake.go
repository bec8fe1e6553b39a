// Package containertest has a Fake container module for unit tests of other
// packages, the conformance suite (Run) that the real container.Module and
// the Fake both pass, and helpers that start a private containerd for root
// tests.
package containertest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/container"
)

// Fake is an in-memory container.Containers. Requests are checked by
// container.Prepare exactly as the Module checks them (so the root
// filesystem and mount sources must exist), containers "run" at once with a
// made-up pid, and tests can make one exit (Exit) to see the restart
// bookkeeping, or give it output (WriteLog). It is safe for concurrent use.
type Fake struct {
	// NetNSExists reports whether a network namespace exists; nil accepts
	// every name.
	NetNSExists func(name string) bool
	// CPUs is the node's CPU count for the CPU limit check (default 8).
	CPUs int
	// RestartMin and RestartMax drive the simulated backoff (default 2 s
	// and 5 min).
	RestartMin, RestartMax time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time

	mu      sync.Mutex
	ns      map[string]map[pkg.ContainerID]*fakeContainer // guarded by mu
	nextPid uint32                                        // guarded by mu
}

type fakeContainer struct {
	c      pkg.Container
	status container.Status
	logs   []byte
}

var _ container.Containers = (*Fake)(nil)

// NewFake returns an empty Fake.
func NewFake() *Fake {
	return &Fake{CPUs: 8, RestartMin: 2 * time.Second, RestartMax: 5 * time.Minute, ns: map[string]map[pkg.ContainerID]*fakeContainer{}, nextPid: 1000}
}

func (f *Fake) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// Run implements pkg.ContainerModule.
func (f *Fake) Run(ns string, data pkg.Container) (pkg.ContainerID, error) {
	req, err := container.Prepare(ns, data, container.PrepareOptions{NetNSExists: f.NetNSExists, CPUs: f.CPUs})
	if err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	id := pkg.ContainerID(req.Container.Name)
	if _, ok := f.ns[ns][id]; ok {
		return "", fmt.Errorf("container %s/%s: %w", ns, id, container.ErrExists)
	}
	if f.ns[ns] == nil {
		f.ns[ns] = map[pkg.ContainerID]*fakeContainer{}
	}
	f.nextPid++
	f.ns[ns][id] = &fakeContainer{c: req.Container, status: container.Status{
		ID: id, State: container.StateRunning, Pid: f.nextPid, StartedAt: f.now(),
	}}
	return id, nil
}

// ListNS implements pkg.ContainerModule: the namespaces holding containers.
func (f *Fake) ListNS() ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.ns)), nil
}

// List implements pkg.ContainerModule.
func (f *Fake) List(ns string) ([]pkg.ContainerID, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []pkg.ContainerID
	for name, cs := range f.ns {
		if ns == "" || ns == name {
			out = append(out, slices.Collect(maps.Keys(cs))...)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (f *Fake) getLocked(ns string, id pkg.ContainerID) (*fakeContainer, error) {
	c, ok := f.ns[ns][id]
	if !ok {
		return nil, fmt.Errorf("container %s/%s: %w", ns, id, container.ErrNotFound)
	}
	return c, nil
}

// Inspect implements pkg.ContainerModule: the request as completed by
// container.Prepare.
func (f *Fake) Inspect(ns string, id pkg.ContainerID) (pkg.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.getLocked(ns, id)
	if err != nil {
		return pkg.Container{}, err
	}
	return clone(c.c), nil
}

// Delete implements pkg.ContainerModule.
func (f *Fake) Delete(ns string, id pkg.ContainerID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.getLocked(ns, id); err != nil {
		return err
	}
	delete(f.ns[ns], id)
	if len(f.ns[ns]) == 0 {
		delete(f.ns, ns)
	}
	return nil
}

// Status implements container.Containers. A container that Exit made
// restart is shown running again once its NextRestart has passed.
func (f *Fake) Status(_ context.Context, ns string, id pkg.ContainerID) (container.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.getLocked(ns, id)
	if err != nil {
		return container.Status{}, err
	}
	if c.status.State == container.StateRestarting && !f.now().Before(c.status.NextRestart) {
		f.nextPid++
		c.status.State, c.status.Pid, c.status.StartedAt = container.StateRunning, f.nextPid, c.status.NextRestart
		c.status.NextRestart = time.Time{}
		c.status.Restarts++
	}
	return c.status, nil
}

// Logs implements container.Containers.
func (f *Fake) Logs(_ context.Context, ns string, id pkg.ContainerID, maxBytes int) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.getLocked(ns, id)
	if err != nil {
		return nil, err
	}
	b := c.logs
	if maxBytes > 0 && len(b) > maxBytes {
		b = b[len(b)-maxBytes:]
	}
	return slices.Clone(b), nil
}

// Exit simulates the exit of a running container's task with code (oom
// tells the memory limit killed it): the container goes to
// StateRestarting with the backoff the Module would apply.
func (f *Fake) Exit(ns string, id pkg.ContainerID, code uint32, oom bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.getLocked(ns, id)
	if err != nil {
		return err
	}
	now := f.now()
	c.status.Failures++
	delay := f.RestartMin << min(c.status.Failures-1, 30)
	if delay > f.RestartMax || delay <= 0 {
		delay = f.RestartMax
	}
	c.status.State, c.status.Pid = container.StateRestarting, 0
	c.status.ExitCode, c.status.ExitedAt, c.status.OOMKilled = code, now, oom
	c.status.Reason = container.ExitReason(code, oom)
	c.status.NextRestart = now.Add(delay)
	return nil
}

// WriteLog appends b to the container's output as Logs returns it.
func (f *Fake) WriteLog(ns string, id pkg.ContainerID, b []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.getLocked(ns, id)
	if err != nil {
		return err
	}
	c.logs = append(c.logs, b...)
	return nil
}

func clone(c pkg.Container) pkg.Container {
	c.Env = slices.Clone(c.Env)
	c.Mounts = slices.Clone(c.Mounts)
	c.Logs = slices.Clone(c.Logs)
	c.Stats = slices.Clone(c.Stats)
	return c
}
