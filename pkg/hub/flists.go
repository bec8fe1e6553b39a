package hub

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/zos-go/zos/internal/atomicfile"
	"github.com/zos-go/zos/pkg/flist/format"
)

const objectsDir = ".objects"

func (s *Server) objects() string            { return filepath.Join(s.cfg.Dir, objectsDir) }
func (s *Server) userDir(user string) string { return filepath.Join(s.cfg.Dir, user) }

// resolve follows aliases from user/name to the content; it returns the
// object's md5.
func (s *Server) resolve(user, name string) (string, error) {
	for range 8 {
		target, err := os.Readlink(filepath.Join(s.userDir(user), name))
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%s/%s: %w", user, name, ErrNotFound)
		}
		if err != nil {
			return "", fmt.Errorf("%s/%s: %w", user, name, err)
		}
		if md5, ok := strings.CutPrefix(target, "../"+objectsDir+"/"); ok {
			return md5, nil
		}
		user, name = splitAlias(user, target)
	}
	return "", fmt.Errorf("%s/%s: alias chain too long: %w", user, name, ErrNotFound)
}

// splitAlias reads an alias link target ("name" or "../user/name").
func splitAlias(user, target string) (string, string) {
	if rest, ok := strings.CutPrefix(target, "../"); ok {
		if u, n, ok := strings.Cut(rest, "/"); ok {
			return u, n
		}
	}
	return user, target
}

func (s *Server) stat(user, name string) (Info, error) {
	p := filepath.Join(s.userDir(user), name)
	st, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("%s/%s: %w", user, name, ErrNotFound)
	}
	if err != nil {
		return Info{}, err
	}
	target, err := os.Readlink(p)
	if err != nil {
		return Info{}, err
	}
	info := Info{Name: name, Type: "regular", Updated: st.ModTime().Unix()}
	if !strings.HasPrefix(target, "../"+objectsDir+"/") {
		info.Type = "symlink"
		u, n := splitAlias(user, target)
		info.Target = n
		if u != user {
			info.Target = u + "/" + n
		}
	}
	if info.MD5, err = s.resolve(user, name); err != nil {
		return info, err
	}
	obj, err := os.Stat(filepath.Join(s.objects(), info.MD5))
	if err != nil {
		return info, fmt.Errorf("%s/%s: object: %w", user, name, err)
	}
	info.Size = obj.Size()
	return info, nil
}

func (s *Server) listUsers(w http.ResponseWriter, _ *http.Request) {
	entries, err := os.ReadDir(s.cfg.Dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		writeError(w, err)
		return
	}
	users := []string{}
	for _, e := range entries {
		if e.IsDir() && validUser(e.Name()) == nil {
			users = append(users, e.Name())
		}
	}
	writeJSON(w, http.StatusOK, users)
}

func (s *Server) listFlists(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user")
	if err := validUser(user); err != nil {
		writeError(w, err)
		return
	}
	entries, err := os.ReadDir(s.userDir(user))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		writeError(w, err)
		return
	}
	out := []Info{}
	for _, e := range entries {
		if validFlist(e.Name()) != nil {
			continue
		}
		info, err := s.stat(user, e.Name())
		if err != nil {
			info = Info{Name: e.Name(), Type: "symlink"} // a dangling alias still shows
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) info(full bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user, name := r.PathValue("user"), r.PathValue("name")
		if err := errors.Join(validUser(user), validFlist(name)); err != nil {
			writeError(w, err)
			return
		}
		info, err := s.stat(user, name)
		if err != nil {
			writeError(w, err)
			return
		}
		if full {
			if info.Contents, err = s.contents(r, info.MD5); err != nil {
				writeError(w, err)
				return
			}
		}
		writeJSON(w, http.StatusOK, info)
	}
}

// openError wraps an error of format.Open on behalf of request r:
// ErrInvalidFlist, unless the request ended first (the client went away),
// which says nothing about the flist.
func openError(r *http.Request, what string, err error) error {
	if r.Context().Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w: %w", what, ErrInvalidFlist, err)
}

func (s *Server) contents(r *http.Request, sum string) ([]Content, error) {
	rd, err := format.Open(r.Context(), filepath.Join(s.objects(), sum), format.Options{
		UnpackDir: filepath.Join(s.cfg.Dir, ".unpacked", sum+".d"),
	})
	if err != nil {
		return nil, openError(r, sum, err)
	}
	defer rd.Close()
	out := []Content{}
	err = format.Walk(r.Context(), rd, func(p string, in format.Inode) error {
		if in.IsRegular() {
			if len(out) >= s.cfg.MaxContents {
				return errTooLarge
			}
			out = append(out, Content{Path: "/" + p, Size: in.Size})
		}
		return nil
	})
	if err != nil && !errors.Is(err, errTooLarge) {
		return nil, err
	}
	return out, nil
}

func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	user, name := r.PathValue("user"), r.PathValue("name")
	if err := validUser(user); err != nil {
		writeError(w, err)
		return
	}
	if base, ok := strings.CutSuffix(name, ".md5"); ok && validFlist(base) == nil {
		sum, err := s.resolve(user, base)
		if err != nil {
			writeError(w, err)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, sum)
		return
	}
	if err := validFlist(name); err != nil {
		writeError(w, err)
		return
	}
	sum, err := s.resolve(user, name)
	if err != nil {
		writeError(w, err)
		return
	}
	f, err := os.Open(filepath.Join(s.objects(), sum))
	if err != nil {
		writeError(w, err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", `"`+sum+`"`)
	http.ServeContent(w, r, name, st.ModTime(), f)
}

// readSigned streams the body of a signed request to w (at most limit
// bytes) and checks it against the Digest header.
func readSigned(r *http.Request, w io.Writer, limit int64) error {
	sha := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, sha), io.LimitReader(r.Body, limit+1))
	if err != nil {
		return fmt.Errorf("%w: %w", errBadBody, err)
	}
	if n > limit {
		return fmt.Errorf("%d bytes or more: %w", n, errTooLarge)
	}
	if got := "SHA-256=" + base64.StdEncoding.EncodeToString(sha.Sum(nil)); got != r.Header.Get("Digest") {
		return fmt.Errorf("body does not match its digest: %w", ErrUnauthorized)
	}
	return nil
}

func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	user, name := r.PathValue("user"), r.PathValue("name")
	if err := errors.Join(validUser(user), validFlist(name)); err != nil {
		writeError(w, err)
		return
	}
	if _, err := s.authorize(r, user); err != nil {
		writeError(w, err)
		return
	}
	if err := os.MkdirAll(s.objects(), 0o755); err != nil {
		writeError(w, err)
		return
	}
	tmp, err := os.CreateTemp(s.objects(), ".tmp-*")
	if err != nil {
		writeError(w, err)
		return
	}
	defer os.Remove(tmp.Name())
	defer os.RemoveAll(tmp.Name() + ".d")
	var sum hash.Hash = md5.New()
	err = readSigned(r, io.MultiWriter(tmp, sum), s.cfg.MaxFlistBytes)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		writeError(w, err)
		return
	}
	rd, err := format.Open(r.Context(), tmp.Name(), format.Options{UnpackDir: tmp.Name() + ".d"})
	if err != nil {
		writeError(w, openError(r, user+"/"+name, err))
		return
	}
	rd.Close()
	hexSum := hex.EncodeToString(sum.Sum(nil))
	s.mu.Lock()
	err = s.commit(tmp.Name(), hexSum, user, name)
	s.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	info, err := s.stat(user, name)
	if err != nil {
		writeError(w, err)
		return
	}
	s.log.Info("flist uploaded", "user", user, "name", name, "md5", hexSum, "size", info.Size)
	writeJSON(w, http.StatusCreated, info)
}

// commit moves an uploaded file to its object and points user/name at it.
// Called with s.mu held.
func (s *Server) commit(tmp, sum, user, name string) error {
	obj := filepath.Join(s.objects(), sum)
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, obj); err != nil {
		return err
	}
	if err := atomicfile.SyncDir(s.objects()); err != nil {
		return err
	}
	return s.setLink(user, name, "../"+objectsDir+"/"+sum)
}

// setLink atomically points user/name at target.
func (s *Server) setLink(user, name, target string) error {
	dir := s.userDir(user)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(dir, fmt.Sprintf(".%s.%d.tmp", name, time.Now().UnixNano()))
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		os.Remove(tmp)
		return err
	}
	return atomicfile.SyncDir(dir)
}

func (s *Server) link(w http.ResponseWriter, r *http.Request) {
	user, name := r.PathValue("user"), r.PathValue("name")
	if err := errors.Join(validUser(user), validFlist(name)); err != nil {
		writeError(w, err)
		return
	}
	if _, err := s.authorize(r, user); err != nil {
		writeError(w, err)
		return
	}
	var body strings.Builder
	if err := readSigned(r, &body, 4096); err != nil {
		writeError(w, err)
		return
	}
	var req struct {
		Target string `json:"target"`
	}
	if err := json.Unmarshal([]byte(body.String()), &req); err != nil {
		writeError(w, fmt.Errorf("%w: %w", errBadBody, err))
		return
	}
	tu, tn := user, req.Target
	if u, n, ok := strings.Cut(req.Target, "/"); ok {
		tu, tn = u, n
	}
	if err := errors.Join(validUser(tu), validFlist(tn)); err != nil {
		writeError(w, err)
		return
	}
	if tu == user && tn == name {
		writeError(w, fmt.Errorf("alias to itself: %w", ErrInvalidName))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.aliasCycle(tu, tn, user, name); err != nil {
		writeError(w, err)
		return
	}
	target := tn
	if tu != user {
		target = "../" + tu + "/" + tn
	}
	if err := s.setLink(user, name, target); err != nil {
		writeError(w, err)
		return
	}
	info, err := s.stat(user, name)
	if err != nil {
		writeError(w, err)
		return
	}
	s.log.Info("flist alias set", "user", user, "name", name, "target", req.Target)
	writeJSON(w, http.StatusCreated, info)
}

// aliasCycle checks that tu/tn exists and that following it never reaches
// user/name.
func (s *Server) aliasCycle(tu, tn, user, name string) error {
	for range 8 {
		if tu == user && tn == name {
			return fmt.Errorf("alias loop through %s/%s: %w", user, name, ErrInvalidName)
		}
		target, err := os.Readlink(filepath.Join(s.userDir(tu), tn))
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("alias target %s/%s: %w", tu, tn, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if strings.HasPrefix(target, "../"+objectsDir+"/") {
			return nil
		}
		tu, tn = splitAlias(tu, target)
	}
	return fmt.Errorf("alias chain too long: %w", ErrInvalidName)
}

func (s *Server) remove(w http.ResponseWriter, r *http.Request) {
	user, name := r.PathValue("user"), r.PathValue("name")
	if err := errors.Join(validUser(user), validFlist(name)); err != nil {
		writeError(w, err)
		return
	}
	if _, err := s.authorize(r, user); err != nil {
		writeError(w, err)
		return
	}
	if err := readSigned(r, io.Discard, 4096); err != nil {
		writeError(w, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := os.Remove(filepath.Join(s.userDir(user), name))
	if errors.Is(err, fs.ErrNotExist) {
		writeError(w, fmt.Errorf("%s/%s: %w", user, name, ErrNotFound))
		return
	}
	if err != nil {
		writeError(w, err)
		return
	}
	s.gc()
	s.log.Info("flist deleted", "user", user, "name", name)
	w.WriteHeader(http.StatusNoContent)
}

// gc removes objects no name points at. Called with s.mu held.
func (s *Server) gc() {
	used := map[string]bool{}
	users, _ := os.ReadDir(s.cfg.Dir)
	for _, u := range users {
		if !u.IsDir() || validUser(u.Name()) != nil {
			continue
		}
		names, _ := os.ReadDir(s.userDir(u.Name()))
		for _, n := range names {
			if strings.HasPrefix(n.Name(), ".") && strings.HasSuffix(n.Name(), ".tmp") {
				if info, err := n.Info(); err == nil && time.Since(info.ModTime()) > time.Hour {
					_ = os.Remove(filepath.Join(s.userDir(u.Name()), n.Name()))
				}
				continue
			}
			if t, err := os.Readlink(filepath.Join(s.userDir(u.Name()), n.Name())); err == nil {
				if sum, ok := strings.CutPrefix(t, "../"+objectsDir+"/"); ok {
					used[sum] = true
				}
			}
		}
	}
	objs, _ := os.ReadDir(s.objects())
	for _, o := range objs {
		if strings.HasPrefix(o.Name(), ".tmp-") {
			// an upload that died (crash) leaves its temporary file
			if info, err := o.Info(); err == nil && time.Since(info.ModTime()) > time.Hour {
				_ = os.RemoveAll(filepath.Join(s.objects(), o.Name()))
			}
			continue
		}
		if strings.HasPrefix(o.Name(), ".") || used[o.Name()] {
			continue
		}
		_ = os.Remove(filepath.Join(s.objects(), o.Name()))
		_ = os.RemoveAll(filepath.Join(s.cfg.Dir, ".unpacked", o.Name()+".d"))
	}
}
