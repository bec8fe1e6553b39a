package testutil

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// NetNS creates a named network namespace (ip netns add) with a unique name
// carrying this process's prefix, brings its loopback up, and deletes it at the
// end of the test. It returns the name; its path is /run/netns/<name>.
func NetNS(t testing.TB) string {
	t.Helper()
	RequireRoot(t, "ip")
	name := Name(t, "ns")
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("netns del %s: %v: %s", name, err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("netns %s: lo up: %v: %s", name, err, out)
	}
	return name
}

// InNetNS runs a command inside the named namespace (ip netns exec) and returns
// its combined output.
func InNetNS(t testing.TB, ns string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func netnsNames() []string {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// hostLinks lists the interface names of the namespace the test runs in.
func hostLinks() []string {
	entries, err := os.ReadDir("/sys/class/net")
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func hasPrefix(name string) bool { return strings.HasPrefix(name, Prefix()) }
