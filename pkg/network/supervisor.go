package network

import (
	"context"

	"github.com/zos-go/zos/internal/detached"
)

// Supervisor runs the module's long-lived helper processes (userspace
// WireGuard devices, DHCP clients) so that they outlive the agent. On a node
// it is zinit; ProcessSupervisor is a plain implementation for tests and
// development. Implementations must be safe for concurrent use.
type Supervisor interface {
	// Start makes sure service name runs argv. It is idempotent: a running
	// service with the same argv is left alone; one with another argv is
	// restarted with the new one.
	Start(ctx context.Context, name string, argv []string) error
	// Stop stops the service and forgets it; nil when it does not exist.
	Stop(ctx context.Context, name string) error
	// List returns the names of the known services that start with prefix.
	List(ctx context.Context, prefix string) ([]string, error)
}

// ProcessSupervisor starts services as detached processes (own session, not
// killed with the agent) and remembers them in <Dir>/<name>.json, so a new
// agent process finds and stops them. It does not restart a service that
// exits; Start starts it again. Output goes to <Dir>/<name>.log, which Stop
// keeps.
type ProcessSupervisor struct {
	Dir string
}

// dir is the detached directory: a process that outlives SIGKILL is
// forgotten all the same by Stop.
func (s ProcessSupervisor) dir() detached.Dir {
	return detached.Dir{Path: s.Dir, ForgetUndead: true}
}

// Start implements Supervisor.
func (s ProcessSupervisor) Start(ctx context.Context, name string, argv []string) error {
	return s.dir().Ensure(ctx, name, argv)
}

// Stop implements Supervisor: SIGTERM, then SIGKILL after 5 s.
func (s ProcessSupervisor) Stop(ctx context.Context, name string) error {
	return s.dir().Stop(ctx, name)
}

// List implements Supervisor.
func (s ProcessSupervisor) List(ctx context.Context, prefix string) ([]string, error) {
	return s.dir().List(prefix)
}

// Pid returns the pid of a running service (0 when not running). Tests use
// it to check that a restart of the agent left the process alone.
func (s ProcessSupervisor) Pid(name string) int {
	r, _ := s.dir().Find(name)
	return r.Pid
}
