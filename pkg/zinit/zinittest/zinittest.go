// Package zinittest runs private zinit daemons for tests: each has its own
// config directory, state directory and sockets under testutil.TempDir, and
// is shut down at the end of the test, with every service process gone.
//
//	func TestMyHelper(t *testing.T) {
//		testutil.CheckLeaks(t)
//		cl, _ := zinittest.Start(t)
//		name := testutil.Name(t, "zdb")
//		if err := cl.AddService(name, zinit.InitService{Exec: "sleep 100"}); err != nil { ... }
//		if err := cl.Monitor(name); err != nil { ... }
//	}
//
// The zinit binary is built once per test process with the go tool (set
// ZINIT_BIN to use a prebuilt one).
package zinittest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/zinit"
)

// Options tune the daemon; the zero value gives test-friendly defaults.
type Options struct {
	// StopTimeout is zinit's stop signal to SIGKILL delay (default 2s).
	StopTimeout time.Duration
	// RestartDelay and MaxRestartDelay shape the restart backoff (default
	// 100ms and 2s).
	RestartDelay, MaxRestartDelay time.Duration
	// Args are extra arguments of zinit init.
	Args []string
}

// Daemon is a running private zinit.
type Daemon struct {
	Dir       string // everything lives below it
	ConfigDir string // service files
	StateDir  string
	Socket    string
	LogSocket string
	// LogPath holds zinit's stdout and stderr.
	LogPath string

	t    testing.TB
	opts Options
	mu   sync.Mutex
	cmd  *exec.Cmd     // guarded by mu
	done chan struct{} // guarded by mu; closed when cmd exited
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary returns the path of a zinit binary, building it on first use.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("ZINIT_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir := filepath.Join(testutil.Root(t), "zinittest-bin")
		if buildErr = os.MkdirAll(dir, 0o755); buildErr != nil {
			return
		}
		binPath = filepath.Join(dir, "zinit")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/zos-go/zos/cmd/zinit")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build zinit: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Start builds (once) and starts a private zinit with default options and
// returns a client (with the daemon's config directory) and the daemon.
// The daemon is shut down at the end of the test; a service process still
// alive then fails the test and is killed.
func Start(t testing.TB) (*zinit.Client, *Daemon) {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, opts Options) (*zinit.Client, *Daemon) {
	t.Helper()
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 2 * time.Second
	}
	if opts.RestartDelay == 0 {
		opts.RestartDelay = 100 * time.Millisecond
	}
	if opts.MaxRestartDelay == 0 {
		opts.MaxRestartDelay = 2 * time.Second
	}
	dir := testutil.TempDir(t)
	d := &Daemon{
		Dir:       dir,
		ConfigDir: filepath.Join(dir, "etc"),
		StateDir:  filepath.Join(dir, "run"),
		Socket:    filepath.Join(dir, "zinit.sock"),
		LogSocket: filepath.Join(dir, "log.sock"),
		LogPath:   filepath.Join(dir, "zinit.log"),
		t:         t,
		opts:      opts,
	}
	if err := os.MkdirAll(d.ConfigDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.cleanup()
		if strings.Contains(d.Log(), "WARNING: DATA RACE") { // a zinit built with -race (ZINIT_BIN)
			t.Errorf("zinit reported a data race")
		}
		if t.Failed() {
			t.Logf("zinit log (tail):\n%s", tail(d.Log(), 60))
		}
	})
	d.start()
	return d.Client(), d
}

// Client returns a new client of the daemon.
func (d *Daemon) Client() *zinit.Client {
	d.t.Helper()
	cl, err := zinit.New(d.Socket, zinit.WithConfigDir(d.ConfigDir), zinit.WithLogSocket(d.LogSocket))
	if err != nil {
		d.t.Fatalf("zinit client: %v", err)
	}
	d.t.Cleanup(func() { cl.Close() })
	return cl
}

func (d *Daemon) start() {
	d.t.Helper()
	logf, err := os.OpenFile(d.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		d.t.Fatal(err)
	}
	defer logf.Close()
	args := append([]string{"-s", d.Socket, "init", "-c", d.ConfigDir, "-d",
		"--state", d.StateDir, "--log-socket", d.LogSocket,
		"--stop-timeout", d.opts.StopTimeout.String(),
		"--restart-delay", d.opts.RestartDelay.String(),
		"--max-restart-delay", d.opts.MaxRestartDelay.String(),
	}, d.opts.Args...)
	cmd := exec.Command(Binary(d.t), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		d.t.Fatalf("start zinit: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	d.mu.Lock()
	d.cmd, d.done = cmd, done
	d.mu.Unlock()
	testutil.WaitFor(d.t, 10*time.Second, "zinit socket", func() error {
		select {
		case <-done:
			return errors.New("zinit exited")
		default:
		}
		cl, err := zinit.New(d.Socket)
		if err != nil {
			return err
		}
		defer cl.Close()
		_, err = cl.List()
		return err
	})
}

// Pid returns the pid of the zinit process.
func (d *Daemon) Pid() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cmd.Process.Pid
}

// Log returns zinit's output so far.
func (d *Daemon) Log() string {
	b, _ := os.ReadFile(d.LogPath)
	return string(b)
}

// Kill kills zinit with SIGKILL and waits for it; its services keep running.
func (d *Daemon) Kill() {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// Restart starts zinit again (after Kill or Shutdown) on the same
// directories; it adopts the services still running.
func (d *Daemon) Restart() {
	d.t.Helper()
	d.start()
}

// Shutdown asks zinit to stop every service and exit, and waits for it.
func (d *Daemon) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	done := d.done
	d.mu.Unlock()
	cl, err := zinit.New(d.Socket)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.Shutdown(ctx); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("zinit did not exit: %w", ctx.Err())
	}
}

// ServicePids returns the pids zinit recorded for its services (from its
// state directory), by service name.
func (d *Daemon) ServicePids() map[string]int {
	out := map[string]int{}
	entries, _ := os.ReadDir(d.StateDir)
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".state")
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d.StateDir, e.Name()))
		if err != nil {
			continue
		}
		var st struct {
			Pid int `json:"pid"`
		}
		if json.Unmarshal(b, &st) == nil && st.Pid > 0 {
			out[name] = st.Pid
		}
	}
	return out
}

func (d *Daemon) cleanup() {
	d.mu.Lock()
	done := d.done
	d.mu.Unlock()
	pids := d.ServicePids()
	select {
	case <-done: // zinit already gone (killed by the test): start it to stop the services
		if len(pids) == 0 {
			return
		}
		d.start()
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second+2*d.opts.StopTimeout)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		d.t.Errorf("zinit shutdown: %v", err)
		d.Kill()
	}
	for name, pid := range pids {
		if testutil.ProcessAlive(pid) {
			d.t.Errorf("service %s (pid %d) still alive after zinit shutdown", name, pid)
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
