// Package zdbtest starts our 0-db server (cmd/zdb) for tests: a real process
// on a free loopback port and a unix socket, with its data in a test
// directory, stopped at the end of the test. Other packages use it for their
// zdb-backed tests (flist block store, zdb workloads).
package zdbtest

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
)

// Options configure a test server. The zero value is a mixed-mode server
// without admin password.
type Options struct {
	Mode     string // "user", "seq" or "" (mixed)
	Admin    string // admin password
	Protect  bool
	Sync     bool
	DataSize int64 // data file rotation size (0: server default)
	MaxSize  uint64
	Hook     string
	Args     []string // extra flags
	// Dir reuses a data directory (e.g. of a killed server); empty: a new
	// test directory.
	Dir string
}

// Server is a running cmd/zdb.
type Server struct {
	Dir    string // data and index root (index in Dir/index, data in Dir/data)
	Socket string // unix socket path
	Port   int
	// TCP and Unix are client addresses: tcp://127.0.0.1:port, unix://path.
	TCP  string
	Unix string
	Proc *testutil.Process
	opts Options
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary builds cmd/zdb once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, ok := runtime.Caller(0)
		if !ok {
			buildErr = fmt.Errorf("zdbtest: cannot locate the module")
			return
		}
		root := filepath.Join(filepath.Dir(file), "..", "..", "..")
		dir := filepath.Join(os.TempDir(), "zos-zdbtest")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			buildErr = err
			return
		}
		tmp, err := os.CreateTemp(dir, "zdb-*")
		if err != nil {
			buildErr = err
			return
		}
		tmp.Close()
		cmd := exec.Command("go", "build", "-o", tmp.Name(), "./cmd/zdb")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			os.Remove(tmp.Name())
			buildErr = fmt.Errorf("zdbtest: go build ./cmd/zdb: %v\n%s", err, out)
			return
		}
		// name the binary by its content: identical builds of many test
		// processes share one file, and a rename never changes a binary in use
		sum, err := fileHash(tmp.Name())
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "zdb-"+sum)
		if err := os.Rename(tmp.Name(), buildPath); err != nil {
			os.Remove(tmp.Name())
			buildErr = err
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// Start starts a server and waits until it answers PING on TCP and on the
// unix socket.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	testutil.RequireTools(t, "go")
	bin := Binary(t)
	dir := opts.Dir
	if dir == "" {
		dir = testutil.TempDir(t)
	}
	s := &Server{Dir: dir, opts: opts}
	s.start(t, bin)
	return s
}

func (s *Server) start(t testing.TB, bin string) {
	t.Helper()
	s.Port = testutil.FreePort(t)
	s.Socket = filepath.Join(s.Dir, "zdb.sock")
	s.TCP = "tcp://127.0.0.1:" + strconv.Itoa(s.Port)
	s.Unix = "unix://" + s.Socket
	args := []string{
		"--index", filepath.Join(s.Dir, "index"),
		"--data", filepath.Join(s.Dir, "data"),
		"--listen", "127.0.0.1", "--port", strconv.Itoa(s.Port),
		"--socket", s.Socket, "--dualnet",
	}
	o := s.opts
	if o.Mode != "" {
		args = append(args, "--mode", o.Mode)
	}
	if o.Admin != "" {
		args = append(args, "--admin", o.Admin)
	}
	if o.Protect {
		args = append(args, "--protect")
	}
	if o.Sync {
		args = append(args, "--sync")
	}
	if o.DataSize > 0 {
		args = append(args, "--datasize", strconv.FormatInt(o.DataSize, 10))
	}
	if o.MaxSize > 0 {
		args = append(args, "--maxsize", strconv.FormatUint(o.MaxSize, 10))
	}
	if o.Hook != "" {
		args = append(args, "--hook", o.Hook)
	}
	args = append(args, o.Args...)
	s.Proc = testutil.StartProcess(t, nil, bin, args...)
	testutil.WaitFor(t, 20*time.Second, "zdb ready", func() error {
		if s.Proc.Exited() {
			return fmt.Errorf("zdb exited: %s", s.Proc.Log())
		}
		if err := ping("tcp", "127.0.0.1:"+strconv.Itoa(s.Port)); err != nil {
			return err
		}
		return ping("unix", s.Socket)
	})
}

// Kill sends SIGKILL to the server and waits for it.
func (s *Server) Kill() { s.Proc.Kill() }

// Stop stops the server with SIGTERM.
func (s *Server) Stop() { s.Proc.Stop(10 * time.Second) }

// Restart stops the server (if still running) and starts it again on the
// same directory, with a new port.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if !s.Proc.Exited() {
		s.Stop()
	}
	s.start(t, Binary(t))
}

// Args returns the command line flags the server was started with, to start
// another process on the same directory.
func (s *Server) Args() []string { return s.Proc.Cmd.Args[1:] }

func fileHash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func ping(network, addr string) error {
	c, err := net.DialTimeout(network, addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
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
