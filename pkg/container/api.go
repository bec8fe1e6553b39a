package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/pkg"
)

var (
	// ErrInvalidName is returned for a namespace or container name that is
	// empty, longer than MaxNameLen, or not made of letters and digits
	// separated by single '.', '_' or '-' (no slashes). Nothing is created.
	ErrInvalidName = errors.New("invalid name")
	// ErrInvalidRootFS is returned when Container.RootFS is empty, not an
	// absolute path, or not an existing directory. Nothing is created.
	ErrInvalidRootFS = errors.New("invalid root filesystem")
	// ErrNoNetwork is returned when Container.Network.Namespace is empty,
	// not a plain name, or names no existing network namespace.
	ErrNoNetwork = errors.New("cannot create container without network namespace")
	// ErrInvalidEntrypoint is returned for an empty or unparsable
	// entrypoint (when not interactive), or one that cannot be executed in
	// the root filesystem.
	ErrInvalidEntrypoint = errors.New("invalid entrypoint definition")
	// ErrInvalidMount is returned for a volume mount whose source is not an
	// existing absolute path or whose target is not an absolute path.
	ErrInvalidMount = errors.New("invalid mount")
	// ErrInvalidLimit is returned for a CPU count above the node's logical
	// CPUs.
	ErrInvalidLimit = errors.New("invalid resource limit")
	// ErrInvalidBackend is returned for a log or stats backend of unknown
	// type or with a malformed redis URL.
	ErrInvalidBackend = errors.New("invalid backend")
	// ErrInvalidEnv is returned for an environment entry without '=' or
	// with an empty key.
	ErrInvalidEnv = errors.New("invalid environment variable")
	// ErrNotFound is returned for an unknown namespace or container; it
	// wraps os.ErrNotExist.
	ErrNotFound = fmt.Errorf("not found: %w", os.ErrNotExist)
	// ErrExists is returned by Run when the namespace already has a
	// container of that name; it wraps os.ErrExist.
	ErrExists = fmt.Errorf("already exists: %w", os.ErrExist)
	// ErrUnavailable is returned when containerd cannot be reached.
	ErrUnavailable = fmt.Errorf("containerd unavailable: %w", errdefs.ErrUnavailable)
)

// MaxNameLen is the longest namespace or container name (containerd's own
// identifier limit).
const MaxNameLen = 76

// State is the lifecycle state of a container as the module sees it.
type State string

const (
	// StateRunning means the container's task runs.
	StateRunning State = "running"
	// StateRestarting means the task exited and the module waits for the
	// backoff delay (Status.NextRestart) before starting it again.
	StateRestarting State = "restarting"
	// StateStopped means the container has no running task and no restart
	// is scheduled (the module is not running, or the container is being
	// deleted).
	StateStopped State = "stopped"
	// StateCreating means Run is creating it (or was interrupted doing so;
	// the next start of the module removes it).
	StateCreating State = "creating"
)

// Status is what the seed's Inspect cannot tell: whether a container runs,
// and the history of its restarts. Restarts are never given up: a crash
// looping container stays visible here with the reason of its last exit.
type Status struct {
	// ID of the container.
	ID pkg.ContainerID
	// State of the container.
	State State
	// Pid of the task's init process, 0 when none runs.
	Pid uint32
	// StartedAt is when the current (or last) task was started.
	StartedAt time.Time
	// Restarts counts the restarts done by the module since Run.
	Restarts int
	// Failures counts the consecutive exits that came sooner than the
	// module's reset period after their start; it drives the backoff.
	Failures int
	// ExitCode of the last exit (128+signal when killed).
	ExitCode uint32
	// ExitedAt is when the task last exited; zero if it never did.
	ExitedAt time.Time
	// OOMKilled tells that the last exit was caused by the memory limit.
	OOMKilled bool
	// Reason explains the last exit or failed restart in words.
	Reason string
	// NextRestart is when the module starts the task again (StateRestarting).
	NextRestart time.Time
}

// Containers is the container module's full surface: the seed's
// ContainerModule plus the run status and logs that the seed lacks. The
// Module and containertest.Fake implement it; both are safe for concurrent
// use.
type Containers interface {
	pkg.ContainerModule
	// Status returns the run status of container id in ns; ErrNotFound if
	// there is no such container.
	Status(ctx context.Context, ns string, id pkg.ContainerID) (Status, error)
	// Logs returns up to maxBytes of the container's most recent output
	// (stdout and stderr interleaved, as written to the node's log ring);
	// maxBytes <= 0 means everything kept. ErrNotFound for an unknown
	// container.
	Logs(ctx context.Context, ns string, id pkg.ContainerID, maxBytes int) ([]byte, error)
}

// ExitReason describes a task exit in words: the out-of-memory kill, a
// signal (exit codes 129 to 192 are 128 + the signal number), or the code.
func ExitReason(code uint32, oom bool) string {
	switch {
	case oom:
		return fmt.Sprintf("killed by the out-of-memory killer (memory limit reached), exit code %d", code)
	case code > 128 && code <= 128+64:
		name := unix.SignalName(syscall.Signal(code - 128))
		if name == "" {
			name = fmt.Sprintf("signal %d", code-128)
		}
		return fmt.Sprintf("killed by %s (exit code %d)", name, code)
	default:
		return fmt.Sprintf("exited with code %d", code)
	}
}
