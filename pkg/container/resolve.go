package container

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// defaultPath is the PATH of containerd's default spec, used when the
// container's Env has none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// errLoop reports too many symbolic links.
var errLoop = errors.New("too many levels of symbolic links")

// resolveIn returns the host path of p inside rootfs, following symbolic
// links as the container would see them: absolute targets are taken from
// rootfs, and ".." never leaves it.
func resolveIn(rootfs, p string) (string, error) {
	todo := strings.Split(path.Clean("/"+p), "/")
	cur := "/"
	for hops := 0; len(todo) > 0; {
		part := todo[0]
		todo = todo[1:]
		if part == "" || part == "." {
			continue
		}
		if part == ".." {
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, part)
		fi, err := os.Lstat(filepath.Join(rootfs, next))
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", errLoop
		}
		target, err := os.Readlink(filepath.Join(rootfs, next))
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			cur = "/"
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return filepath.Join(rootfs, cur), nil
}

// findProgram checks that the container can execute prog: a path is
// resolved in rootfs (relative to workdir), a bare name is looked up in
// the container's PATH. It returns the program's path inside the
// container.
func findProgram(rootfs, prog, workdir string, env []string) (string, error) {
	isExec := func(p string) bool {
		host, err := resolveIn(rootfs, p)
		if err != nil {
			return false
		}
		fi, err := os.Stat(host)
		return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
	}
	if strings.Contains(prog, "/") {
		p := prog
		if !path.IsAbs(p) {
			p = path.Join("/", workdir, p)
		}
		if !isExec(p) {
			return "", fmt.Errorf("%s: no executable file in the root filesystem", prog)
		}
		return p, nil
	}
	search := defaultPath
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			search = v
		}
	}
	for _, dir := range filepath.SplitList(search) {
		if dir == "" || !path.IsAbs(dir) {
			continue
		}
		if p := path.Join(dir, prog); isExec(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH %s of the root filesystem", prog, search)
}
