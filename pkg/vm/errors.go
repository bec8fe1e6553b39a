package vm

import (
	"errors"
	"fmt"
	"time"
)

// Errors of the VM module, matchable with errors.Is. Every bad-input error
// of Run wraps ErrInvalidVM; nothing is started or written then.
var (
	// ErrInvalidVM is wrapped by every validation error of a VM.
	ErrInvalidVM = errors.New("invalid vm")
	// ErrKernelNotFound: the kernel or initrd file does not exist.
	ErrKernelNotFound = fmt.Errorf("kernel image not found: %w", ErrInvalidVM)
	// ErrDiskOutsideArea: a disk path outside the vdisk area (and, for
	// read-only disks, outside the image directories).
	ErrDiskOutsideArea = fmt.Errorf("disk outside the vdisk area: %w", ErrInvalidVM)
	// ErrTapNotFound: an interface names a tap that does not exist.
	ErrTapNotFound = fmt.Errorf("tap not found: %w", ErrInvalidVM)
	// ErrTooLarge: more memory or vCPUs than the node has.
	ErrTooLarge = fmt.Errorf("vm larger than the node: %w", ErrInvalidVM)

	// ErrExists: Run of a name whose VM runs (or will be restarted).
	ErrExists = errors.New("vm exists")
	// ErrNotFound: the module has no VM of that name.
	ErrNotFound = errors.New("vm not found")
	// ErrNotRunning: the VM is known but its QEMU does not run; the
	// error is a *StateError with the state and reason.
	ErrNotRunning = errors.New("vm not running")
	// ErrNotReady: a seed method was called before Run started the module
	// (or after it ended).
	ErrNotReady = errors.New("vm module not ready")
	// ErrStart: QEMU did not start; the error carries its output.
	ErrStart = errors.New("vm did not start")
)

// StateError is returned by Inspect (and Status users may build it) for a
// VM whose QEMU does not run: it carries why and what happens next. It
// wraps ErrNotRunning.
type StateError struct {
	Name  string
	State State
	// Reason is why the last QEMU ended.
	Reason string
	// NextRestart is when keep-alive starts it again (zero: never).
	NextRestart time.Time
}

// Error returns a one-line description.
func (e *StateError) Error() string {
	s := fmt.Sprintf("vm %s %s", e.Name, e.State)
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if !e.NextRestart.IsZero() {
		s += ", restart at " + e.NextRestart.UTC().Format(time.RFC3339)
	}
	return s
}

// Unwrap returns ErrNotRunning.
func (e *StateError) Unwrap() error { return ErrNotRunning }
