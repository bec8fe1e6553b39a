package zinit

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

var statusRegex = regexp.MustCompile(`^(\w+)(?:\((.+)\))?$`)

// PossibleState represents the state of a service managed by zinit.
type PossibleState string

// The states zinit reports, lower-cased.
const (
	// ServiceStateUnknown is returned when the state cannot be determined.
	ServiceStateUnknown PossibleState = "unknown"
	// ServiceStateBlocked means a dependency is not ready.
	ServiceStateBlocked PossibleState = "blocked"
	// ServiceStateScheduled means the service is about to be spawned.
	ServiceStateScheduled PossibleState = "scheduled"
	// ServiceStateSpawned means the service started but its test did not
	// pass yet.
	ServiceStateSpawned PossibleState = "spawned"
	// ServiceStateRunning means the service runs and its test passed.
	ServiceStateRunning PossibleState = "running"
	// ServiceStateSuccess means a service exited 0 (a oneshot finished).
	ServiceStateSuccess PossibleState = "success"
	// ServiceStateError means the service exited with an error or a signal.
	ServiceStateError PossibleState = "error"
	// ServiceStateTestError means the test command could not run.
	ServiceStateTestError PossibleState = "testerror"
	// ServiceStateFailure means zinit could not spawn the service at all
	// (a missing executable, for example).
	ServiceStateFailure PossibleState = "failure"
)

// ServiceState is a state with its reason, as in "error(exited(pid(12), 1))".
type ServiceState struct {
	state  PossibleState
	reason string
}

// State returns the state without its reason.
func (s ServiceState) State() PossibleState {
	if s.state == "" {
		return ServiceStateUnknown
	}
	return s.state
}

// Reason returns the text in parentheses after the state, if any (lower
// case, as the original client gives it).
func (s ServiceState) Reason() string { return s.reason }

// UnmarshalText parses a state as zinit prints it.
func (s *ServiceState) UnmarshalText(text []byte) error {
	m := statusRegex.FindStringSubmatch(strings.TrimSpace(string(text)))
	if m == nil {
		return fmt.Errorf("service state %q: %w", text, ErrProtocol)
	}
	s.state = PossibleState(strings.ToLower(m[1]))
	s.reason = strings.ToLower(m[2])
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *ServiceState) UnmarshalYAML(n *yaml.Node) error {
	var text string
	if err := n.Decode(&text); err != nil {
		return err
	}
	return s.UnmarshalText([]byte(text))
}

// MarshalYAML implements yaml.Marshaler.
func (s ServiceState) MarshalYAML() (any, error) { return s.String(), nil }

// String returns the state in lower case, with its reason in parentheses.
func (s ServiceState) String() string {
	if s.reason == "" {
		return string(s.State())
	}
	return string(s.State()) + "(" + s.reason + ")"
}

// Is checks if the service state is equal to a possible state.
func (s ServiceState) Is(state PossibleState) bool {
	return strings.EqualFold(string(s.State()), string(state))
}

// Any reports whether the state is one of states.
func (s ServiceState) Any(states ...PossibleState) bool {
	for _, st := range states {
		if s.Is(st) {
			return true
		}
	}
	return false
}

// Exited is true if the service has no process: success, error or failure.
func (s ServiceState) Exited() bool {
	return s.Any(ServiceStateSuccess, ServiceStateError, ServiceStateFailure)
}

// ServiceTarget represents the desired state of a service.
type ServiceTarget string

// Targets, lower-cased as the client reports them.
const (
	// ServiceTargetUp means the service has been asked to run.
	ServiceTargetUp ServiceTarget = "up"
	// ServiceTargetDown means the service has been asked to stop.
	ServiceTargetDown ServiceTarget = "down"
)

// UnmarshalYAML implements yaml.Unmarshaler.
func (t *ServiceTarget) UnmarshalYAML(n *yaml.Node) error {
	var text string
	if err := n.Decode(&text); err != nil {
		return err
	}
	*t = ServiceTarget(strings.ToLower(text))
	return nil
}

// ServiceDependency is a dependency of a service and its state.
type ServiceDependency struct {
	Name  string
	State ServiceState
}

// ServiceStatus represents the status of a service.
type ServiceStatus struct {
	Name   string
	Pid    int
	State  ServiceState
	Target ServiceTarget
	// Deps are the services of the after list, in order.
	Deps []ServiceDependency
}

type statusYAML struct {
	Name   string                    `yaml:"name"`
	Pid    int                       `yaml:"pid"`
	State  ServiceState              `yaml:"state"`
	Target ServiceTarget             `yaml:"target"`
	After  []map[string]ServiceState `yaml:"after"`
}

func decodeBody(lines []string, out any) error {
	if len(lines) == 0 {
		return nil
	}
	if err := yaml.Unmarshal([]byte(strings.Join(lines, "\n")), out); err != nil {
		return fmt.Errorf("response body: %w: %w", ErrProtocol, err)
	}
	return nil
}

// List returns all the services monitored and their states.
func (c *Client) List() (map[string]ServiceState, error) {
	return c.ListContext(context.Background())
}

// ListContext is List bounded by ctx.
func (c *Client) ListContext(ctx context.Context) (map[string]ServiceState, error) {
	lines, err := c.ctxDo(ctx, "list")
	if err != nil {
		return nil, err
	}
	out := map[string]ServiceState{}
	if err := decodeBody(lines, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Status returns the status of a service; ErrUnknownService if zinit does
// not manage it.
func (c *Client) Status(service string) (ServiceStatus, error) {
	return c.StatusContext(context.Background(), service)
}

// StatusContext is Status bounded by ctx.
func (c *Client) StatusContext(ctx context.Context, service string) (ServiceStatus, error) {
	lines, err := c.ctxDo(ctx, "status", service)
	if err != nil {
		return ServiceStatus{}, err
	}
	var y statusYAML
	if err := decodeBody(lines, &y); err != nil {
		return ServiceStatus{}, err
	}
	st := ServiceStatus{Name: y.Name, Pid: y.Pid, State: y.State, Target: y.Target}
	for _, m := range y.After {
		for name, state := range m {
			st.Deps = append(st.Deps, ServiceDependency{Name: name, State: state})
		}
	}
	return st, nil
}

// Exists reports whether zinit manages service.
func (c *Client) Exists(service string) (bool, error) {
	_, err := c.Status(service)
	if errors.Is(err, ErrUnknownService) {
		return false, nil
	}
	return err == nil, err
}

// Start sets the target of service up; it has no effect if it runs.
func (c *Client) Start(service string) error { _, err := c.cmd("start", service); return err }

// Stop sets the target of service down and sends its stop signal; it does
// not wait.
func (c *Client) Stop(service string) error { _, err := c.cmd("stop", service); return err }

// Monitor makes zinit load <service>.yaml from its config directory and
// manage it. ErrAlreadyMonitored if it does already (which callers often
// treat as success), ErrInvalidService for a bad file.
func (c *Client) Monitor(service string) error { _, err := c.cmd("monitor", service); return err }

// Forget makes zinit stop managing a stopped service (target down, no
// process): ErrTargetNotDown, ErrServiceRunning otherwise.
func (c *Client) Forget(service string) error { _, err := c.cmd("forget", service); return err }

// Kill sends a signal to the process of a service; ErrNotRunning if it has
// none. The service is restarted if its target is up.
func (c *Client) Kill(service string, sig Signal) error {
	_, err := c.cmd("kill", service, string(sig))
	return err
}

// Shutdown stops every service, dependents first, and ends zinit (on a node,
// where zinit is PID 1, the machine powers off). It returns once zinit
// stopped every service.
func (c *Client) Shutdown(ctx context.Context) error {
	_, err := c.ctxDo(ctx, "shutdown")
	return err
}

// Reboot is Shutdown followed by a reboot; only a zinit running as PID 1
// accepts it (ErrNotSupported otherwise).
func (c *Client) Reboot(ctx context.Context) error {
	_, err := c.ctxDo(ctx, "reboot")
	return err
}

func (c *Client) ctxDo(ctx context.Context, cmd string, args ...string) ([]string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	return c.Do(ctx, cmd, args...)
}

// WaitStatus polls the status of service every interval until cond holds,
// and returns that status; it fails when ctx ends or status fails.
func (c *Client) WaitStatus(ctx context.Context, service string, interval time.Duration, cond func(ServiceStatus) bool) (ServiceStatus, error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last ServiceStatus
	for {
		st, err := c.StatusContext(ctx, service)
		if err != nil {
			if ctx.Err() != nil {
				return last, fmt.Errorf("service %s: waiting (last state %s, target %s): %w", service, last.State, last.Target, ctx.Err())
			}
			return st, err
		}
		if cond(st) {
			return st, nil
		}
		last = st
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("service %s: waiting (last state %s, target %s): %w", service, st.State, st.Target, ctx.Err())
		case <-t.C:
		}
	}
}

const pollInterval = 50 * time.Millisecond

// StartWait starts a service and waits until it is running (or a oneshot
// succeeded). At the timeout it fails if the service has exited; a timeout
// of 0 does not wait.
func (c *Client) StartWait(timeout time.Duration, service string) error {
	if err := c.Start(service); err != nil {
		return err
	}
	if timeout == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := c.WaitStatus(ctx, service, pollInterval, func(st ServiceStatus) bool {
		return st.Target != ServiceTargetUp || st.State.Any(ServiceStateRunning, ServiceStateSuccess)
	})
	if errors.Is(err, context.DeadlineExceeded) {
		st, serr := c.Status(service)
		if serr != nil {
			return serr
		}
		if st.State.Exited() {
			return fmt.Errorf("service %s did not start in time (state %s)", service, st.State)
		}
		return nil
	}
	if err != nil {
		return err
	}
	st, err := c.Status(service)
	if err == nil && st.Target != ServiceTargetUp {
		return fmt.Errorf("service %s: target set down while starting", service)
	}
	return err
}

// StopWait stops a service and waits until it exited; at the timeout it
// sends SIGKILL. A timeout of 0 does not wait.
func (c *Client) StopWait(timeout time.Duration, service string) error {
	if err := c.Stop(service); err != nil {
		return err
	}
	if timeout == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := c.waitGone(ctx, service)
	if errors.Is(err, context.DeadlineExceeded) {
		if err := c.Kill(service, SIGKILL); err != nil && !errors.Is(err, ErrNotRunning) {
			return err
		}
		return nil
	}
	return err
}

// waitGone waits until service has no process while its target is down.
func (c *Client) waitGone(ctx context.Context, service string) error {
	_, err := c.WaitStatus(ctx, service, pollInterval, func(st ServiceStatus) bool {
		return st.Target == ServiceTargetDown && st.Pid == 0
	})
	return err
}

// StopAndWait stops a service and waits until its process (and its process
// group) is gone. zinit sends SIGKILL itself after its stop timeout; if ctx
// ends first, StopAndWait sends SIGKILL and waits a little longer.
func (c *Client) StopAndWait(ctx context.Context, service string) error {
	if _, err := c.ctxDo(ctx, "stop", service); err != nil {
		return err
	}
	err := c.waitGone(ctx, service)
	if ctx.Err() == nil || errors.Is(err, ErrUnknownService) {
		return err
	}
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := c.Do(kctx, "kill", service, string(SIGKILL)); err != nil && !errors.Is(err, ErrNotRunning) {
		return err
	}
	return c.waitGone(kctx, service)
}

// Destroy removes a service completely: stop and wait until its process is
// gone (StopAndWait), forget it, and remove its file. A service zinit does
// not know is not an error, so Destroy suits cleanups.
func (c *Client) Destroy(ctx context.Context, service string) error {
	err := c.StopAndWait(ctx, service)
	if err == nil {
		_, err = c.ctxDo(ctx, "forget", service)
	}
	if err != nil && !errors.Is(err, ErrUnknownService) {
		return fmt.Errorf("destroy service %s: %w", service, err)
	}
	return c.RemoveService(service)
}
