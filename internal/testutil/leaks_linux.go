package testutil

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// LeakGrace is how long the leak checker waits for asynchronous teardown
// (a process reaped, a lazy unmount finished) before it reports.
const LeakGrace = 5 * time.Second

type snapshot struct {
	procs map[int]string
}

// CheckLeaks makes the test fail if, when it ends, it left behind objects of
// this process: loop devices backed by files under this process's directories,
// mounts below those directories or backed by such loop devices, network
// namespaces or host links carrying Prefix, or descendant processes that did
// not exist when CheckLeaks was called. Call it first in a test, so that its
// check runs after every other cleanup. After reporting, it removes what it
// found, so one failing test does not poison the machine.
//
// Loop devices and mounts are attributed to the test by path (TempDir and
// t.TempDir directories carry the test's name); processes by ancestry. So a
// test that calls CheckLeaks must not run in parallel (t.Parallel) with other
// tests of its package that start processes.
func CheckLeaks(t testing.TB) {
	t.Helper()
	roots := []string{
		filepath.Join(Root(t), sanitize(t.Name())), // TempDir(t) of this test and its subtests
		filepath.Dir(t.TempDir()),                  // t.TempDir() of this test
	}
	before := snapshot{procs: descendants(os.Getpid())}
	t.Cleanup(func() {
		var leaks []string
		deadline := time.Now().Add(LeakGrace)
		for {
			leaks = findLeaks(roots, before)
			if len(leaks) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(leaks) == 0 {
			return
		}
		t.Errorf("test left behind:\n  %s", strings.Join(leaks, "\n  "))
		cleanLeaks(roots, before)
	})
}

// underAny reports whether path is one of roots or below one; a root also
// matches as a name prefix, so that the directories TempDir names after the test
// ("<root>-123", "<root>_subtest-456") count.
func underAny(path string, roots []string) bool {
	for _, r := range roots {
		if strings.HasPrefix(path, r) {
			return true
		}
	}
	return false
}

func ourLoops(roots []string) map[string]string {
	out := map[string]string{}
	for dev, file := range loopBacking() {
		if underAny(strings.TrimSuffix(file, " (deleted)"), roots) {
			out[dev] = file
		}
	}
	return out
}

type mountEntry struct{ source, target, fstype string }

func mounts() []mountEntry {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []mountEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if len(fields) < 5 || sep < 0 || sep+2 >= len(fields) {
			continue
		}
		out = append(out, mountEntry{
			target: unescapeMount(fields[4]),
			fstype: fields[sep+1],
			source: unescapeMount(fields[sep+2]),
		})
	}
	return out
}

// unescapeMount decodes the octal escapes (\040 for space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func ourMounts(roots []string, loops map[string]string) []mountEntry {
	var out []mountEntry
	for _, m := range mounts() {
		_, fromLoop := loops[m.source]
		if underAny(m.target, roots) || fromLoop {
			out = append(out, m)
		}
	}
	return out
}

func findLeaks(roots []string, before snapshot) []string {
	var leaks []string
	loops := ourLoops(roots)
	for _, m := range ourMounts(roots, loops) {
		leaks = append(leaks, fmt.Sprintf("mount %s on %s (%s)", m.source, m.target, m.fstype))
	}
	for dev, file := range loops {
		leaks = append(leaks, fmt.Sprintf("loop device %s backed by %s", dev, file))
	}
	for _, ns := range netnsNames() {
		if hasPrefix(ns) {
			leaks = append(leaks, "network namespace "+ns)
		}
	}
	for _, l := range hostLinks() {
		if hasPrefix(l) {
			leaks = append(leaks, "link "+l)
		}
	}
	for pid, comm := range descendants(os.Getpid()) {
		if _, old := before.procs[pid]; !old && ProcessAlive(pid) {
			leaks = append(leaks, fmt.Sprintf("process %d (%s)", pid, comm))
		}
	}
	slices.Sort(leaks)
	return leaks
}

func cleanLeaks(roots []string, before snapshot) {
	for pid := range descendants(os.Getpid()) {
		if _, old := before.procs[pid]; !old {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	loops := ourLoops(roots)
	ms := ourMounts(roots, loops)
	// Deepest first.
	slices.SortFunc(ms, func(a, b mountEntry) int { return len(b.target) - len(a.target) })
	for _, m := range ms {
		_ = unix.Unmount(m.target, unix.MNT_DETACH)
	}
	for dev := range loops {
		_ = DetachLoop(dev)
	}
	for _, ns := range netnsNames() {
		if hasPrefix(ns) {
			_ = exec.Command("ip", "netns", "del", ns).Run()
		}
	}
	for _, l := range hostLinks() {
		if hasPrefix(l) {
			_ = exec.Command("ip", "link", "del", l).Run()
		}
	}
}
