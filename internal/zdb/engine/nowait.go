package engine

import (
	"errors"
	"io"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrWouldBlock is returned by the methods of NoWait when they would wait,
// for the disk or for the namespace lock. It is not a protocol error: the
// caller runs the blocking method where waiting is harmless.
var ErrWouldBlock = errors.New("operation would wait")

// NoWait is the face of a namespace for an event loop: its methods never
// wait, neither for the disk (reads the page cache lacks, fsync) nor for
// the namespace lock. When they would, they fail with ErrWouldBlock having
// changed nothing, and the caller runs the Namespace method of the same name
// where waiting is harmless. Writes do go to the page cache, as any write.
type NoWait struct{ ns *Namespace }

// NoWait returns the non-blocking face of ns.
func (ns *Namespace) NoWait() NoWait { return NoWait{ns} }

// AppendGet is Namespace.AppendGet.
func (n NoWait) AppendGet(dst, key []byte, header func([]byte, int) []byte) ([]byte, bool, error) {
	return n.ns.appendGet(dst, key, header, true)
}

// SetBatched is Namespace.SetBatched; it fails with ErrWouldBlock where
// setting needs a disk read (replacing a key whose index entry is not in the
// page cache, updating a sequential id) or a rotation of the files.
func (n NoWait) SetBatched(key, value []byte, timestamp uint32) (SetResult, error) {
	return n.ns.setBatched(key, value, timestamp, true)
}

// Del is Namespace.Del, for a server without Config.Sync.
func (n NoWait) Del(key []byte, timestamp uint32) error {
	ns := n.ns
	if len(key) > MaxKeySize {
		return ErrKeyTooLarge
	}
	if ns.eng.cfg.Sync {
		return ErrWouldBlock
	}
	if timestamp == 0 {
		timestamp = uint32(time.Now().Unix())
	}
	if !ns.mu.TryLock() {
		return ErrWouldBlock
	}
	defer ns.mu.Unlock()
	_ = ns.flushLocked()
	return ns.delLocked(key, timestamp, true)
}

// Exists is Namespace.Exists.
func (n NoWait) Exists(key []byte) (bool, error) {
	_, ok, err := n.lookup(key)
	return ok, err
}

// Length is Namespace.Length.
func (n NoWait) Length(key []byte) (uint32, bool, error) {
	loc, ok, err := n.lookup(key)
	return loc.Length, ok, err
}

func (n NoWait) lookup(key []byte) (location, bool, error) {
	ns := n.ns
	excl, ok := ns.tryRLock()
	if !ok {
		return location{}, false, ErrWouldBlock
	}
	defer ns.runlock(excl)
	if err := ns.readableLocked(); err != nil {
		return location{}, false, err
	}
	return ns.lookupModeLocked(key, true)
}

// Frozen is Namespace.Frozen.
func (n NoWait) Frozen() (bool, error) {
	if !n.ns.mu.TryRLock() {
		return false, ErrWouldBlock
	}
	defer n.ns.mu.RUnlock()
	return n.ns.frozen, nil
}

// Commit is Namespace.Commit.
func (n NoWait) Commit(id uint64) error {
	if id == 0 {
		return nil
	}
	if !n.ns.mu.TryLock() {
		return ErrWouldBlock
	}
	defer n.ns.mu.Unlock()
	return n.ns.commitLocked(id)
}

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
