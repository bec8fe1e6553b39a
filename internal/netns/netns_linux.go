// Package netns is the one place where zos switches network namespaces. Every
// switch happens on a dedicated goroutine locked to its OS thread; the thread
// is switched back before it is released, and a thread that cannot be switched
// back is never reused (its goroutine exits still locked, so the Go runtime
// destroys it). It also creates and deletes named namespaces (the bind mounts
// under /run/netns that `ip netns` uses), in a way that is crash safe: a name
// left as a plain file by an interrupted create is detected and repaired.
package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Dir is where named network namespaces are bind-mounted (as `ip netns` does).
const Dir = "/run/netns"

// ErrNotExist is wrapped when a named namespace does not exist.
var ErrNotExist = errors.New("network namespace does not exist")

// Path returns the file of a named namespace. An empty name stands for the
// namespace of this process (its main thread at start), /proc/1/... is never
// used.
func Path(name string) string {
	if name == "" {
		return selfPath
	}
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(Dir, name)
}

// selfPath is the namespace this process started in. It is resolved once at
// init, before any thread could have been switched.
var selfPath = func() string {
	return fmt.Sprintf("/proc/%d/ns/net", os.Getpid())
}()

// Do runs fn on an OS thread switched into the network namespace at path (or
// the named namespace when path is not absolute; "" is this process's own
// namespace) and returns fn's error. Sockets, netlink handles and child
// processes created by fn belong to that namespace. fn must not start
// goroutines that expect to run in the namespace.
func Do(path string, fn func() error) error {
	target, err := unix.Open(Path(path), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("netns %s: %w", path, ErrNotExist)
		}
		return fmt.Errorf("netns %s: %w", path, err)
	}
	defer unix.Close(target)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: current namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns %s: enter: %w", path, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Keep the thread locked: the runtime kills it when this
			// goroutine exits, so no other goroutine runs in the wrong
			// namespace.
			errc <- errors.Join(ferr, fmt.Errorf("netns %s: restore: %w", path, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Exists reports whether name is a mounted network namespace.
func Exists(name string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(Path(name), &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// Create makes a new named network namespace with its loopback interface up.
// It is idempotent: an existing namespace is kept (created=false). A plain
// file left by an interrupted Create is replaced.
func Create(name string) (created bool, err error) {
	if name == "" || filepath.IsAbs(name) || filepath.Base(name) != name {
		return false, fmt.Errorf("netns %q: invalid name", name)
	}
	if Exists(name) {
		return false, nil
	}
	if err := ensureDir(); err != nil {
		return false, err
	}
	p := Path(name)
	// A leftover plain file (crash between create and mount) is removed.
	_ = unix.Unmount(p, unix.MNT_DETACH)
	_ = os.Remove(p)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return false, fmt.Errorf("netns %s: %w", name, err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		// The thread goes back to its namespace before it is released: a
		// thread that dies would also kill the children that were forked
		// from it with a parent-death signal (exec.Cmd Pdeathsig).
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		err = unix.Mount("/proc/thread-self/ns/net", p, "none", unix.MS_BIND, "")
		if err == nil {
			err = loUp()
		} else {
			err = fmt.Errorf("bind mount: %w", err)
		}
		if rerr := unix.Setns(orig, unix.CLONE_NEWNET); rerr != nil {
			// Stay locked: the runtime destroys the thread.
			errc <- errors.Join(err, fmt.Errorf("restore: %w", rerr))
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	if err := <-errc; err != nil {
		_ = unix.Unmount(p, unix.MNT_DETACH)
		_ = os.Remove(p)
		return false, fmt.Errorf("netns %s: %w", name, err)
	}
	return true, nil
}

// Delete removes a named namespace. The namespace itself (and every
// interface in it) is destroyed once no process runs in it any more. A
// missing namespace is not an error.
func Delete(name string) error {
	if name == "" || filepath.Base(name) != name {
		return fmt.Errorf("netns %q: invalid name", name)
	}
	p := Path(name)
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("netns %s: unmount: %w", name, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	return nil
}

// List returns the names of the namespaces under Dir that start with prefix.
func List(prefix string) ([]string, error) {
	entries, err := os.ReadDir(Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list netns: %w", err)
	}
	var out []string
	for _, e := range entries {
		if len(e.Name()) >= len(prefix) && e.Name()[:len(prefix)] == prefix && Exists(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// ensureDir makes Dir a shared mount point, as `ip netns` does, so that
// namespaces created later show in every mount namespace that has a copy.
func ensureDir() error {
	if err := os.MkdirAll(Dir, 0o755); err != nil {
		return fmt.Errorf("netns dir: %w", err)
	}
	err := unix.Mount("", Dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) {
		// Not a mount point yet: bind it onto itself first.
		if err := unix.Mount(Dir, Dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("netns dir: bind: %w", err)
		}
		err = unix.Mount("", Dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	}
	if err != nil {
		return fmt.Errorf("netns dir: make shared: %w", err)
	}
	return nil
}

// loUp brings the loopback interface of the current thread's namespace up
// with an ioctl (no netlink handle needed).
func loUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	return nil
}
