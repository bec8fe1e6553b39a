package zinit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// streams are the output FIFOs of a service: <state>/<name>.out and .err.
var streams = [2]string{"out", "err"}

func fifoPath(dir, name, stream string) string {
	return filepath.Join(dir, name+"."+stream)
}

// output is the reading side of a service's FIFOs, kept open while zinit
// manages the service. zinit opens them read-write, so a read never sees
// end-of-file between two processes of the service: it waits for data.
type output struct {
	files [2]*os.File
}

func (o *output) close() { closeAll(o.files[:]...) }

// ensureOutput creates (or reuses, after a restart of zinit) the FIFOs of s
// and starts copying their lines to the ring.
func (m *Manager) ensureOutput(s *service) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.out != nil {
		return nil
	}
	if s.forgotten || m.runCtx.Err() != nil {
		return errors.New("service is going away")
	}
	o := &output{}
	for i, stream := range streams {
		f, err := openFIFO(fifoPath(m.cfg.StateDir, s.name, stream))
		if err != nil {
			o.close()
			return fmt.Errorf("output of %s: %w", s.name, err)
		}
		o.files[i] = f
	}
	s.out = o
	toStdout := s.cfg.Log == LogStdout
	for i, f := range o.files {
		tag := "[+] "
		if i == 1 {
			tag = "[-] "
		}
		m.pumps.Go(func() { m.pump(f, tag+s.name+": ", toStdout) })
	}
	return nil
}

// openFIFO creates the FIFO at path unless it exists, and opens it
// read-write and non-blocking (reads wait in Go's poller).
func openFIFO(path string) (*os.File, error) {
	if err := unix.Mkfifo(path, 0o600); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, err
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeNamedPipe == 0 {
		return nil, fmt.Errorf("%s: not a FIFO", path)
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// closeOutputLocked stops reading the output of s; with remove, the FIFOs
// are deleted (the service is gone for good).
func (m *Manager) closeOutputLocked(s *service, remove bool) {
	if s.out != nil {
		s.out.close()
		s.out = nil
	}
	if remove {
		for _, stream := range streams {
			_ = os.Remove(fifoPath(m.cfg.StateDir, s.name, stream))
		}
	}
}

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		if f != nil {
			_ = f.Close()
		}
	}
}

// removeStaleFiles removes FIFOs and temp files of the state directory that
// belong to no managed service.
func (m *Manager) removeStaleFilesLocked() {
	entries, _ := os.ReadDir(m.cfg.StateDir)
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") && strings.Contains(n, ".tmp-") {
			_ = os.Remove(filepath.Join(m.cfg.StateDir, n))
			continue
		}
		for _, stream := range streams {
			if name, ok := strings.CutSuffix(n, "."+stream); ok {
				if _, managed := m.services[name]; !managed {
					_ = os.Remove(filepath.Join(m.cfg.StateDir, n))
				}
			}
		}
	}
}
