package cache

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Policy says what Evict keeps.
type Policy struct {
	// MaxAge drops blocks not read (atime) for longer; 0 keeps all.
	MaxAge time.Duration
	// MaxBytes drops the least recently read blocks until the cache holds
	// at most this much; 0 means no size limit.
	MaxBytes int64
}

// DefaultPolicy is the original's: 30 days, no size limit.
var DefaultPolicy = Policy{MaxAge: 30 * 24 * time.Hour}

// EvictResult reports what Evict did.
type EvictResult struct {
	Removed      int
	RemovedBytes int64
	KeptBytes    int64
}

type cached struct {
	path  string
	size  int64
	atime time.Time
}

// Evict removes blocks from the cache directory dir by policy, and
// temporary files older than an hour (left by a crash). A process that
// still holds a removed block open keeps reading it; the next open fetches
// it again.
func Evict(ctx context.Context, dir string, p Policy, now time.Time) (EvictResult, error) {
	var res EvictResult
	var files []cached
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		atime := info.ModTime()
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			atime = time.Unix(st.Atim.Sec, st.Atim.Nsec)
		}
		if strings.HasPrefix(d.Name(), ".tmp-") {
			if now.Sub(info.ModTime()) > time.Hour && os.Remove(path) == nil {
				res.Removed++
				res.RemovedBytes += info.Size()
			}
			return nil
		}
		files = append(files, cached{path: path, size: info.Size(), atime: atime})
		return nil
	})
	if err != nil {
		return res, err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].atime.Before(files[j].atime) })
	var total int64
	for _, f := range files {
		total += f.size
	}
	for _, f := range files {
		old := p.MaxAge > 0 && now.Sub(f.atime) > p.MaxAge
		big := p.MaxBytes > 0 && total > p.MaxBytes
		if !old && !big {
			continue
		}
		if err := os.Remove(f.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		res.Removed++
		res.RemovedBytes += f.size
		total -= f.size
	}
	res.KeptBytes = total
	return res, nil
}
