package vm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/zos-go/zos/internal/atomicfile"
)

// readTail returns the last n bytes of the file at path.
func readTail(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := max(fi.Size()-n, 0)
	return io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
}

// consoleTail returns the last n bytes of a console log and its rotated
// predecessor (path + ".1"), starting at a line boundary when cut.
func consoleTail(path string, n int64) (string, error) {
	cur, err := readTail(path, n)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("console log: %w", err)
	}
	out := cur
	if rest := n - int64(len(cur)); rest > 0 {
		old, err := readTail(path+".1", rest)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("console log: %w", err)
		}
		out = append(old, cur...)
	}
	if int64(len(out)) >= n {
		if i := bytes.IndexByte(out, '\n'); i >= 0 && i < len(out)-1 {
			out = out[i+1:]
		}
	}
	return string(out), nil
}

// rotateConsole keeps a console log below max bytes: when it is larger, its
// content becomes path.1 (replacing the older one) and it is truncated in
// place. QEMU appends (O_APPEND), so it goes on writing at the new end;
// what the guest writes between the copy and the truncation is lost.
func rotateConsole(path string, max int64) (bool, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("console log: %w", err)
	}
	if fi.Size() <= max {
		return false, nil
	}
	b, err := readTail(path, max)
	if err != nil {
		return false, fmt.Errorf("console log: %w", err)
	}
	if err := atomicfile.WriteFile(path+".1", b, 0o600); err != nil {
		return false, fmt.Errorf("console log: %w", err)
	}
	if err := os.Truncate(path, 0); err != nil {
		return false, fmt.Errorf("console log: %w", err)
	}
	return true, nil
}
