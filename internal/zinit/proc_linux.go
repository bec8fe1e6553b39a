package zinit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// exitInfo is how a process ended. Known is false for processes zinit could
// not wait on (adopted ones), whose status is lost.
type exitInfo struct {
	Status syscall.WaitStatus
	Known  bool
}

// proc is one process zinit watches: a child it spawned, or a process it
// adopted from a previous zinit.
type proc struct {
	pid   int
	start uint64 // start time in clock ticks since boot (/proc/<pid>/stat field 22)
	osp   *os.Process
	pidfd *os.File // adopted processes only
	exit  chan exitInfo
}

// signal sends sig to the process itself; a process that is already gone is
// not an error.
func (p *proc) signal(sig unix.Signal) error {
	var err error
	if p.osp != nil {
		err = p.osp.Signal(sig)
		if errors.Is(err, os.ErrProcessDone) {
			return nil
		}
	} else {
		rc, cerr := p.pidfd.SyscallConn()
		if cerr != nil {
			return cerr
		}
		if cerr = rc.Control(func(fd uintptr) { err = unix.PidfdSendSignal(int(fd), sig, nil, 0) }); cerr != nil {
			return nil // closed: the process is gone
		}
	}
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	return err
}

// killGroup sends SIGKILL to the process group the service leads (it was
// started in its own session), unless the leader's pid now belongs to another
// process, which would mean the group is gone and the number reused.
func (p *proc) killGroup() {
	if st, err := readStat(p.pid); err == nil && st.start != p.start {
		return
	}
	_ = unix.Kill(-p.pid, unix.SIGKILL)
}

func (p *proc) release() {
	if p.osp != nil {
		_ = p.osp.Release()
	}
	if p.pidfd != nil {
		_ = p.pidfd.Close()
	}
}

// stat is what zinit reads from /proc/<pid>/stat.
type stat struct {
	state byte
	sid   int
	start uint64
}

// readStat reads /proc/<pid>/stat: the state (field 3), the session id
// (field 6) and the start time (field 22).
func readStat(pid int) (stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}, err
	}
	return parseStat(b)
}

func parseStat(b []byte) (stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 20 || len(f[0]) != 1 {
		return stat{}, errors.New("malformed /proc stat")
	}
	sid, err := strconv.Atoi(f[3])
	if err != nil {
		return stat{}, fmt.Errorf("malformed /proc stat: %w", err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return stat{}, fmt.Errorf("malformed /proc stat: %w", err)
	}
	return stat{state: f[0][0], sid: sid, start: start}, nil
}

// procTable spawns processes and tells each owner when its process exits.
// With reapAll (zinit as PID 1 or child subreaper) one reaper waits for every
// child, so orphans reparented to zinit are reaped too; otherwise each child
// is waited for on its own and other children of this process are left alone.
type procTable struct {
	reapAll bool
	log     *slog.Logger

	mu      sync.Mutex
	waiters map[int]*proc // guarded by mu; reapAll only
}

func newProcTable(reapAll bool, log *slog.Logger) *procTable {
	return &procTable{reapAll: reapAll, log: log, waiters: map[int]*proc{}}
}

// spawn starts the program at path with argv in a new session.
func (t *procTable) spawn(path string, argv []string, attr *os.ProcAttr) (*proc, error) {
	if attr.Sys == nil {
		attr.Sys = &syscall.SysProcAttr{}
	}
	attr.Sys.Setsid = true // its own session and process group: outlives zinit, killable as a group
	if t.reapAll {
		// Hold mu across the spawn: a reaper that collects the exit before
		// we registered waits on mu, then finds the waiter.
		t.mu.Lock()
		defer t.mu.Unlock()
	}
	osp, err := os.StartProcess(path, argv, attr)
	if err != nil {
		return nil, err
	}
	p := &proc{pid: osp.Pid, osp: osp, exit: make(chan exitInfo, 1)}
	if st, err := readStat(p.pid); err == nil {
		p.start = st.start
	}
	if t.reapAll {
		t.waiters[p.pid] = p
		return p, nil
	}
	go func() {
		ps, err := osp.Wait()
		if err != nil {
			p.exit <- exitInfo{}
			return
		}
		p.exit <- exitInfo{Status: ps.Sys().(syscall.WaitStatus), Known: true}
	}()
	return p, nil
}

// runReaper reaps every child of this process until ctx ends. Only used with
// reapAll.
func (t *procTable) runReaper(ctx context.Context) {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGCHLD)
	defer signal.Stop(sigs)
	tick := time.NewTicker(time.Second) // signals coalesce; the tick is a safety net
	defer tick.Stop()
	for {
		t.reapOnce()
		select {
		case <-ctx.Done():
			return
		case <-sigs:
		case <-tick.C:
		}
	}
}

func (t *procTable) reapOnce() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		t.mu.Lock()
		p, ok := t.waiters[pid]
		delete(t.waiters, pid)
		t.mu.Unlock()
		if ok {
			p.exit <- exitInfo{Status: ws, Known: true}
		} else {
			t.log.Debug("orphan reaped", "pid", pid, "status", exitReason(pid, ws))
		}
	}
}

// adopt takes over a process a previous zinit started: it holds a pidfd on
// it (so signals never reach a process that reused the pid) and notices its
// end by polling the pidfd. It fails if the process is gone or its start time
// differs from start.
func adopt(pid int, start uint64) (*proc, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("pid %d: %w", pid, err)
	}
	f := os.NewFile(uintptr(fd), "pidfd:"+strconv.Itoa(pid))
	st, err := readStat(pid) // after the pidfd: a reuse after this point cannot fool us
	if err != nil || st.start != start || st.state == 'Z' || st.state == 'X' {
		f.Close()
		return nil, fmt.Errorf("pid %d: %w", pid, os.ErrProcessDone)
	}
	p := &proc{pid: pid, start: start, pidfd: f, exit: make(chan exitInfo, 1)}
	go func() {
		rc, err := f.SyscallConn()
		if err == nil {
			_ = rc.Read(func(fd uintptr) bool {
				fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
				n, err := unix.Poll(fds, 0)
				return err == nil && n > 0 || err != nil && !errors.Is(err, unix.EINTR)
			})
		}
		p.exit <- exitInfo{}
	}()
	return p, nil
}

// findByStdout returns the session leader whose standard output is the file
// at path, or 0. It finds a service spawned by a zinit that died before it
// recorded the pid.
func findByStdout(path string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink("/proc/" + e.Name() + "/fd/1")
		if err != nil || target != path {
			continue
		}
		if st, err := readStat(pid); err == nil && st.sid == pid && st.state != 'Z' {
			return pid
		}
	}
	return 0
}

// lookPath resolves file against the PATH in env, like a shell.
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		if err := isExecutable(file); err != nil {
			return "", err
		}
		return file, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if isExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %q: executable file not found in PATH", file)
}

func isExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("exec %q: %w", p, err)
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("exec %q: permission denied", p)
	}
	return nil
}
