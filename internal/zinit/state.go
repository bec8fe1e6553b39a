package zinit

import (
	"fmt"
	"syscall"
)

// StateKind is the kind of a service's state, as the original zinit names
// them.
type StateKind int

// The states of a service.
const (
	Unknown   StateKind = iota
	Blocked             // a dependency is not ready
	Scheduled           // about to be spawned
	Spawned             // started; its test has not passed yet
	Running             // test passed, or no test
	Success             // oneshot exited 0
	Error               // exited with an error (or was killed)
	TestError           // the test command could not run
	Failure             // could not be spawned at all
)

var kindNames = [...]string{"Unknown", "Blocked", "Scheduled", "Spawned", "Running", "Success", "Error", "TestError", "Failure"}

// String returns the name the original zinit prints.
func (k StateKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Unknown"
}

// State is a service's state with its reason, printed like the original
// zinit ("Running", "Error(Exited(Pid(123), 1))").
type State struct {
	Kind   StateKind
	Reason string
}

// String returns the state as zinit prints it.
func (s State) String() string {
	if s.Reason == "" {
		return s.Kind.String()
	}
	return s.Kind.String() + "(" + s.Reason + ")"
}

// Exited reports whether the state is one of a service without a process
// that is not going to start on its own right now.
func (s State) Exited() bool {
	switch s.Kind {
	case Success, Error, Failure, Unknown:
		return true
	}
	return false
}

// Target is the desired state of a service.
type Target bool

// Targets.
const (
	Down Target = false
	Up   Target = true
)

// String returns "Up" or "Down".
func (t Target) String() string {
	if t {
		return "Up"
	}
	return "Down"
}

// exitReason formats a wait status like the original ("Exited(Pid(12), 1)",
// "Signaled(Pid(12), SIGKILL, false)").
func exitReason(pid int, ws syscall.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("Exited(Pid(%d), %d)", pid, ws.ExitStatus())
	case ws.Signaled():
		return fmt.Sprintf("Signaled(Pid(%d), %s, %t)", pid, SignalName(ws.Signal()), ws.CoreDump())
	}
	return fmt.Sprintf("Unknown(Pid(%d))", pid)
}
