package devgrid

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/internal/netns"
	"github.com/zos-go/zos/pkg/zinit"
)

// attachLoop binds img to a loop device, reusing one already bound to it
// (a grid restarted after a crash).
func attachLoop(img string) (string, error) {
	out, err := exec.Command("losetup", "-j", img).Output()
	if err == nil {
		if dev, _, ok := strings.Cut(string(out), ":"); ok && dev != "" {
			return dev, nil
		}
	}
	out, err = exec.Command("losetup", "--find", "--show", img).Output()
	if err != nil {
		return "", fmt.Errorf("losetup %s: %w", img, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Down stops the grid: every zinit service of every node (workloads
// included), zinit, the explorer; then it unmounts what the grid mounted,
// detaches its loop devices and deletes its namespaces. State files stay.
func (g *Grid) Down(ctx context.Context) error {
	var errs []error
	for i := 1; i <= g.cfg.Nodes; i++ {
		root := filepath.Join(g.cfg.Root, "node"+itoa(i))
		stopServices(ctx, filepath.Join(root, "run", "zinit.sock"), filepath.Join(root, "zinit"))
	}
	g.mu.Lock()
	procs := slices.Clone(g.procs)
	g.mu.Unlock()
	for _, p := range slices.Backward(procs) {
		p.stop(10 * time.Second)
	}
	if g.forward != nil {
		g.forward.Close()
	}
	// Whatever still runs in the grid's namespaces was started by the grid.
	killInNamespaces(g.cfg.Prefix)
	if err := unmountUnder(g.cfg.Root); err != nil {
		errs = append(errs, err)
	}
	detachLoopsUnder(g.cfg.Root)
	// Twice: a process killed above may have been creating a namespace.
	for round := range 2 {
		if round > 0 {
			time.Sleep(300 * time.Millisecond)
			killInNamespaces(g.cfg.Prefix)
		}
		names, _ := netns.List(g.cfg.Prefix)
		for _, ns := range names {
			if err := netns.Delete(ns); err != nil && round > 0 {
				errs = append(errs, fmt.Errorf("namespace %s: %w", ns, err))
			}
		}
	}
	removeCgroups(g.cfg.Prefix)
	if dirs, _ := filepath.Glob("/run/zos/" + g.cfg.Prefix + "[0-9]*"); len(dirs) > 0 {
		for _, d := range dirs {
			_ = os.RemoveAll(d)
		}
	}
	if g.lock != nil {
		g.lock.Close()
	}
	return errors.Join(errs...)
}

// stopServices stops every service of a node's zinit, workloads first and
// zosd last, waiting for each to exit.
func stopServices(ctx context.Context, socket, dir string) {
	zc, err := zinit.New(socket, zinit.WithConfigDir(dir), zinit.WithTimeout(5*time.Second))
	if err != nil {
		return
	}
	defer zc.Close()
	list, err := zc.ListContext(ctx)
	if err != nil {
		return
	}
	order := make([]string, 0, len(list))
	for name := range list {
		order = append(order, name)
	}
	// zosd first so it does not restart what is being stopped; containerd
	// last so containers are gone before it.
	slices.SortFunc(order, func(a, b string) int { return rank(a) - rank(b) })
	for _, name := range order {
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		_ = zc.StopAndWait(sctx, name)
		cancel()
		_ = zc.Forget(name)
	}
}

func rank(service string) int {
	switch {
	case service == "zosd":
		return 0
	case strings.HasSuffix(service, "containerd"):
		return 2
	}
	return 1
}

// killInNamespaces kills every process whose network namespace is one of
// the grid's.
func killInNamespaces(prefix string) {
	names, _ := netns.List(prefix)
	inodes := map[uint64]bool{}
	for _, ns := range names {
		var st unix.Stat_t
		if unix.Stat(netns.Path(ns), &st) == nil {
			inodes[st.Ino] = true
		}
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(filepath.Join("/proc", e.Name(), "ns/net"), &st) == nil && inodes[st.Ino] {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	time.Sleep(200 * time.Millisecond)
}

// unmountUnder lazily unmounts every mount below root, deepest first.
func unmountUnder(root string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var targets []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 {
			t := strings.ReplaceAll(fields[4], `\040`, " ")
			if strings.HasPrefix(t, root+"/") {
				targets = append(targets, t)
			}
		}
	}
	slices.SortFunc(targets, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, t := range targets {
		if err := unix.Unmount(t, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", t, err))
		}
	}
	return errors.Join(errs...)
}

// detachLoopsUnder detaches loop devices whose backing file is below root.
func detachLoopsUnder(root string) {
	entries, _ := os.ReadDir("/sys/block")
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "loop") {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/sys/block", e.Name(), "loop/backing_file"))
		if err != nil || !strings.HasPrefix(strings.TrimSpace(string(b)), root+"/") {
			continue
		}
		for range 20 {
			if exec.Command("losetup", "-d", "/dev/"+e.Name()).Run() == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// removeCgroups removes the (empty) cgroups the nodes' containers used.
func removeCgroups(prefix string) {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/" + prefix + "*")
	roots2, _ := filepath.Glob("/sys/fs/cgroup/" + prefix + "*")
	for _, r := range append(roots, roots2...) {
		var dirs []string
		_ = filepath.WalkDir(r, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for _, d := range slices.Backward(dirs) {
			_ = os.Remove(d)
		}
	}
}

// Cleanup stops and removes what a grid with cfg left on the machine when
// its zosdev process died: services, processes, mounts, loop devices and
// namespaces. State files stay.
func Cleanup(ctx context.Context, cfg Config) error {
	lock, err := os.OpenFile(filepath.Join(cfg.Root, "zosdev.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return fmt.Errorf("a grid still runs on %s (stop it with Ctrl-C): %w", cfg.Root, err)
	}
	g := &Grid{cfg: cfg, inetNS: cfg.Prefix + "inet", lock: lock}
	return g.Down(ctx)
}

// CleanStale removes what a grid with this prefix left behind when its
// process was killed without Down (its root unknown): processes in its
// namespaces, the namespaces, and, found through its pools' mounts
// (<root>/node<N>/root/mnt/<prefix><N>zos-…), every mount and loop device
// below that grid's root. State files stay.
func CleanStale(prefix string) error {
	killInNamespaces(prefix)
	roots := map[string]bool{}
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 5 {
				continue
			}
			t := fields[4]
			base := filepath.Base(t)
			mnt := filepath.Dir(t)
			if strings.HasPrefix(base, prefix) && strings.Contains(base, "zos-") && filepath.Base(mnt) == "mnt" {
				// <root>/node<N>/root/mnt/<label>
				roots[filepath.Dir(filepath.Dir(filepath.Dir(mnt)))] = true
			}
		}
		f.Close()
	}
	var errs []error
	for root := range roots {
		if err := unmountUnder(root); err != nil {
			errs = append(errs, err)
		}
		detachLoopsUnder(root)
	}
	names, _ := netns.List(prefix)
	for _, ns := range names {
		if err := netns.Delete(ns); err != nil {
			errs = append(errs, fmt.Errorf("namespace %s: %w", ns, err))
		}
	}
	removeCgroups(prefix)
	return errors.Join(errs...)
}
