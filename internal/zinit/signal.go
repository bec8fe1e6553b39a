package zinit

import (
	"strings"

	"golang.org/x/sys/unix"
)

// ParseSignal parses a signal name, case-insensitive, with or without the
// SIG prefix ("sigterm", "TERM", "SIGKILL").
func ParseSignal(name string) (unix.Signal, bool) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if !strings.HasPrefix(n, "SIG") {
		n = "SIG" + n
	}
	sig := unix.SignalNum(n)
	if sig == 0 {
		return 0, false
	}
	return sig, true
}

// SignalName returns the upper-case name of sig ("SIGTERM").
func SignalName(sig unix.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return sig.String()
}
