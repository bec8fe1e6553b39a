package testutil

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is an external program started by a test.
type Process struct {
	Cmd *exec.Cmd
	// LogPath holds the program's combined stdout and stderr.
	LogPath string

	waitOnce sync.Once
	waitErr  error
	done     chan struct{}
}

// StartProcess starts name with args in its own process group, output going to
// a log file in a test directory. At the end of the test the whole group gets
// SIGTERM, then SIGKILL after 5 seconds, and is reaped; if the test failed the
// log's tail is printed. Configure p.Cmd fields (Env, Dir, ...) through the
// optional setup function, which runs before Start.
func StartProcess(t testing.TB, setup func(*exec.Cmd), name string, args ...string) *Process {
	t.Helper()
	logPath := filepath.Join(TempDir(t), filepath.Base(name)+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if setup != nil {
		setup(cmd)
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	logf.Close()
	p := &Process{Cmd: cmd, LogPath: logPath, done: make(chan struct{})}
	go func() { _ = p.Wait() }()
	t.Cleanup(func() {
		p.Stop(5 * time.Second)
		if t.Failed() {
			t.Logf("%s log (tail):\n%s", name, tail(logPath, 40))
		}
	})
	return p
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.Cmd.Process.Pid }

// Wait waits for the process to exit and returns its exit error. It may be
// called many times.
func (p *Process) Wait() error {
	p.waitOnce.Do(func() {
		p.waitErr = p.Cmd.Wait()
		close(p.done)
	})
	<-p.done
	return p.waitErr
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM to the process group, then SIGKILL after grace, and waits.
func (p *Process) Stop(grace time.Duration) {
	pgid := p.Cmd.Process.Pid
	if p.Exited() {
		// The leader is gone; members of its group may remain.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// Kill sends SIGKILL to the process group and waits for the leader.
func (p *Process) Kill() {
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Log returns the program's output so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// RedisServer starts a private redis-server on a free loopback port, with no
// persistence, and returns its address (host:port). It is stopped at the end
// of the test.
func RedisServer(t testing.TB) string {
	t.Helper()
	RequireTools(t, "redis-server")
	port := FreePort(t)
	dir := TempDir(t)
	StartProcess(t, nil, "redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	WaitFor(t, 10*time.Second, "redis-server "+addr, func() error { return redisPing(addr) })
	return addr
}

func redisPing(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}

// descendants returns the pids of every live descendant of pid, with their
// command names.
func descendants(pid int) map[int]string {
	children := map[int][]int{}
	comm := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// stat: pid (comm) state ppid ...; comm may contain spaces and parens.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(b[i+1:]))
		if len(fields) < 2 {
			continue
		}
		ppid, err := strconv.Atoi(fields[1])
		if err != nil {
			continue
		}
		children[ppid] = append(children[ppid], p)
		if j := bytes.IndexByte(b, '('); j >= 0 {
			comm[p] = string(b[j+1 : i])
		}
	}
	out := map[int]string{}
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if _, seen := out[c]; !seen {
				out[c] = comm[c]
				queue = append(queue, c)
			}
		}
	}
	return out
}

// ProcessAlive reports whether pid exists and is not a zombie.
func ProcessAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] != 'Z'
}
