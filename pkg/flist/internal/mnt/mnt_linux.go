// Package mnt is the flist packages' only door to the kernel's mount table:
// it answers whether a path is a mount point and detaches mounts.
package mnt

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Info is one line of /proc/self/mountinfo.
type Info struct {
	Mountpoint string
	FSType     string
	Source     string
	Options    string
}

// List returns the mounts of this process's mount namespace.
func List() ([]Info, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Info
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 6 || len(b) < 2 {
			continue
		}
		in := Info{Mountpoint: unescape(a[4]), Options: a[5], FSType: b[0], Source: unescape(b[1])}
		if len(b) > 2 {
			in.Options += "," + b[2]
		}
		out = append(out, in)
	}
	return out, sc.Err()
}

// unescape decodes the octal escapes (\040 for space...) of mountinfo.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Lookup returns the topmost mount at path, if any.
func Lookup(path string) (Info, bool, error) {
	path = filepath.Clean(path)
	list, err := List()
	if err != nil {
		return Info{}, false, err
	}
	var found Info
	ok := false
	for _, m := range list {
		if m.Mountpoint == path {
			found, ok = m, true // later lines are mounted on top
		}
	}
	return found, ok, nil
}

// IsMounted reports whether path is a mount point.
func IsMounted(path string) (bool, error) {
	_, ok, err := Lookup(path)
	return ok, err
}

// Detach lazily unmounts every mount stacked at path (MNT_DETACH); nil when
// nothing is mounted there.
func Detach(path string) error {
	for range 16 {
		mounted, err := IsMounted(path)
		if err != nil {
			return err
		}
		if !mounted {
			return nil
		}
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("unmount %s: %w", path, err)
		}
	}
	return fmt.Errorf("unmount %s: still mounted", path)
}

// Under returns the mount points below dir (dir included), deepest first.
func Under(dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	list, err := List()
	if err != nil {
		return nil, err
	}
	var out []string
	for i := len(list) - 1; i >= 0; i-- {
		m := list[i].Mountpoint
		if m == dir || strings.HasPrefix(m, dir+"/") {
			out = append(out, m)
		}
	}
	return out, nil
}
