package container

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// cgroupRoot is where the host mounts its cgroup hierarchies.
const cgroupRoot = "/sys/fs/cgroup"

// cgroupV2 reports whether the host runs the unified hierarchy only (what
// runc checks: /sys/fs/cgroup is a cgroup2 filesystem). Hybrid hosts count
// as v1.
func cgroupV2() bool {
	var st unix.Statfs_t
	return unix.Statfs(cgroupRoot, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

// swapAccounted reports whether the memory cgroup limits memory+swap, so
// the spec can forbid swapping beyond the limit (runc fails on a swap
// limit the kernel does not account).
func swapAccounted() bool {
	if cgroupV2() {
		m, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", "memory.swap.max"))
		return len(m) > 0
	}
	_, err := os.Stat(filepath.Join(cgroupRoot, "memory", "memory.memsw.limit_in_bytes"))
	return err == nil
}

// cgroupDirs lists the directories of cgroup path p in every hierarchy
// (each v1 controller, or the unified tree).
func cgroupDirs(p string) []string {
	if cgroupV2() {
		return []string{filepath.Join(cgroupRoot, p)}
	}
	entries, err := os.ReadDir(cgroupRoot)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		// cpu,cpuacct style links point at the same hierarchy: rmdir on
		// each is harmless.
		out = append(out, filepath.Join(cgroupRoot, e.Name(), p))
	}
	return out
}

// removeEmptyCgroups removes, in every hierarchy, cgroup p and its
// ancestors as long as they are empty (rmdir fails on a cgroup with
// processes or children, which is what we want).
func removeEmptyCgroups(p string) {
	for p != "/" && p != "." && p != "" {
		for _, d := range cgroupDirs(p) {
			if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOENT) {
				continue
			}
		}
		p = filepath.Dir(p)
	}
}

// cgroupFile reads a file of container cgroup p from controller (v1) or
// the unified tree (v2); used by tests and the stats fallback.
func cgroupFile(controller, p, file string) (string, error) {
	dir := filepath.Join(cgroupRoot, controller, p)
	if cgroupV2() {
		dir = filepath.Join(cgroupRoot, p)
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	return strings.TrimSpace(string(b)), err
}
