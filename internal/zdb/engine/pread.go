package engine

import (
	"errors"
	"io"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrWouldBlock is returned by the reads that must not wait for the disk
// (AppendGetCached) when the bytes are not in the page cache. It is not a
// protocol error: the caller retries where it may block.
var ErrWouldBlock = errors.New("read would wait for the disk")

// noWaitUnsupported is set once the kernel or file system refused
// RWF_NOWAIT: every cached read then reports ErrWouldBlock.
var noWaitUnsupported atomic.Bool

// pread reads len(b) bytes of f at off. With nowait it takes them from the
// page cache only (preadv2 RWF_NOWAIT) and fails with ErrWouldBlock when
// reading them would wait for the device.
func pread(f *os.File, b []byte, off int64, nowait bool) error {
	if !nowait {
		_, err := f.ReadAt(b, off)
		return err
	}
	if noWaitUnsupported.Load() {
		return ErrWouldBlock
	}
	fd := f.Fd()
	for len(b) > 0 {
		iov := unix.Iovec{Base: &b[0]}
		iov.SetLen(len(b))
		// preadv2(fd, iov, 1, offset low word, offset high word, flags); the
		// two shifts make the high word 0 on 64-bit platforms
		const longBits = unsafe.Sizeof(uintptr(0)) * 8
		lo, hi := uintptr(off), uintptr(uint64(off)>>(longBits-1)>>1)
		n, _, errno := unix.Syscall6(unix.SYS_PREADV2, fd, uintptr(unsafe.Pointer(&iov)), 1, lo, hi, unix.RWF_NOWAIT)
		switch {
		case errno == unix.EINTR:
			continue
		case errno == unix.EAGAIN:
			return ErrWouldBlock
		case errno == unix.EOPNOTSUPP || errno == unix.EINVAL || errno == unix.ENOSYS:
			noWaitUnsupported.Store(true)
			return ErrWouldBlock
		case errno != 0:
			return &os.PathError{Op: "preadv2", Path: f.Name(), Err: errno}
		case n == 0:
			return io.ErrUnexpectedEOF
		}
		b = b[n:]
		off += int64(n)
	}
	return nil
}
