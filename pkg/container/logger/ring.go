package logger

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// Ring is a log kept in at most Files files of at most MaxBytes each:
// path (being written), then path.1 (older) … path.<Files-1> (oldest).
// When a write would make path exceed MaxBytes, the files are shifted by
// renames and path starts empty, so the oldest output goes first. A crash
// at any moment loses at most the line being written. It is safe for
// concurrent use by one process; one writer process per ring.
type Ring struct {
	path     string
	maxBytes int64
	files    int

	mu   sync.Mutex
	f    *os.File // guarded by mu
	size int64    // guarded by mu
}

// OpenRing opens (creating it and its directory) the ring at path.
func OpenRing(path string, maxBytes int64, files int) (*Ring, error) {
	if maxBytes <= 0 || files < 1 {
		return nil, fmt.Errorf("log ring %s: %d files of %d bytes", path, files, maxBytes)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("log ring %s: %w", path, err)
	}
	r := &Ring{path: path, maxBytes: maxBytes, files: files}
	if err := r.openLocked(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Ring) openLocked() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("log ring %s: %w", r.path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("log ring %s: %w", r.path, err)
	}
	r.f, r.size = f, fi.Size()
	return nil
}

// rotateLocked shifts path.i to path.i+1, dropping the oldest, and starts
// an empty path.
func (r *Ring) rotateLocked() error {
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("log ring %s: %w", r.path, err)
	}
	if r.files == 1 {
		if err := os.Truncate(r.path, 0); err != nil {
			return fmt.Errorf("log ring %s: %w", r.path, err)
		}
		return r.openLocked()
	}
	for i := r.files - 2; i >= 1; i-- {
		err := os.Rename(rotated(r.path, i), rotated(r.path, i+1))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("log ring %s: %w", r.path, err)
		}
	}
	if err := os.Rename(r.path, rotated(r.path, 1)); err != nil {
		return fmt.Errorf("log ring %s: %w", r.path, err)
	}
	return r.openLocked()
}

func rotated(path string, i int) string { return path + "." + strconv.Itoa(i) }

// Write appends p, rotating first when p would not fit in the current
// file. A p larger than MaxBytes is cut to its last MaxBytes.
func (r *Ring) Write(p []byte) (int, error) {
	n := len(p)
	if int64(len(p)) > r.maxBytes {
		p = p[int64(len(p))-r.maxBytes:]
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, fmt.Errorf("log ring %s: %w", r.path, os.ErrClosed)
	}
	if r.size > 0 && r.size+int64(len(p)) > r.maxBytes {
		if err := r.rotateLocked(); err != nil {
			return 0, err
		}
	}
	w, err := r.f.Write(p)
	r.size += int64(w)
	if err != nil {
		return w, fmt.Errorf("log ring %s: %w", r.path, err)
	}
	return n, nil
}

// Close closes the current file.
func (r *Ring) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// ReadRing returns the last maxBytes (all when maxBytes <= 0) of the ring
// at path, oldest file first. A ring never written reads as empty.
func ReadRing(path string, files int, maxBytes int) ([]byte, error) {
	var out []byte
	for i := files - 1; i >= 0; i-- {
		p := path
		if i > 0 {
			p = rotated(path, i)
		}
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("log ring %s: %w", path, err)
		}
		out = append(out, b...)
	}
	if maxBytes > 0 && len(out) > maxBytes {
		out = out[len(out)-maxBytes:]
	}
	return out, nil
}

// RemoveRing removes every file of the ring at path.
func RemoveRing(path string, files int) error {
	var errs []error
	for i := range max(files, 1) + 8 { // also files of a larger former ring
		p := path
		if i > 0 {
			p = rotated(path, i)
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

var _ io.WriteCloser = (*Ring)(nil)
