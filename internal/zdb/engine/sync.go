package engine

import (
	"errors"
	"os"
	"sync"
)

// durable returns once write number w (and every write before it) is on
// disk. Concurrent callers share one fsync: the first one syncs for all the
// writes made before its sync started, the others wait for it (group commit).
func (ns *Namespace) durable(w uint64) error {
	g := &ns.synced
	g.mu.Lock()
	defer g.mu.Unlock()
	for g.done < w {
		if g.running {
			g.cond.Wait()
			continue
		}
		g.running = true
		g.mu.Unlock()
		upTo, err := ns.syncFiles()
		g.mu.Lock()
		g.running = false
		if err == nil && upTo > g.done {
			g.done = upTo
		}
		g.cond.Broadcast()
		if err != nil {
			ns.log.Error("sync failed", "err", err)
			return ErrWriteData
		}
	}
	return nil
}

// syncFiles fsyncs the current files and the older index files written in
// place. It returns the write count covered.
func (ns *Namespace) syncFiles() (uint64, error) {
	ns.lock()
	if ns.closed {
		ns.mu.Unlock()
		return 0, ErrClosed
	}
	upTo := ns.written.Load()
	files := []*os.File{ns.datFiles[ns.fileID], ns.idxFiles[ns.fileID]}
	for fid := range ns.oldDirty {
		files = append(files, ns.idxFiles[fid])
	}
	ns.oldDirty = nil
	ns.mu.Unlock()
	// the files sync in parallel: one device round trip instead of two
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fdatasync(f)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return upTo, nil
}

// Sync makes every write done so far durable (the periodic --synctime flush).
func (ns *Namespace) Sync() error {
	w := ns.written.Load()
	ns.synced.mu.Lock()
	done := ns.synced.done
	ns.synced.mu.Unlock()
	if done >= w {
		return nil
	}
	return ns.durable(w)
}
