package flist

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/zos-go/zos/internal/atomicfile"
)

// FlistHash implements pkg.Flister: GET <url>.md5; the body, trimmed, on
// status 200.
func (m *Module) FlistHash(url string) (string, error) {
	ctx, cancel := m.ctx(m.cfg.HTTPTimeout)
	defer cancel()
	return m.flistHash(ctx, url)
}

func (m *Module) flistHash(ctx context.Context, url string) (string, error) {
	if p, ok := localPath(url); ok {
		b, err := os.ReadFile(p + ".md5")
		if err != nil {
			return "", fmt.Errorf("flist %s: hash: %w", url, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+".md5", nil)
	if err != nil {
		return "", fmt.Errorf("flist %s: hash: %w", url, err)
	}
	resp, err := m.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("flist %s: hash: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fail to fetch hash, response: %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if err != nil {
		return "", fmt.Errorf("flist %s: hash: %w", url, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// localPath returns the file of a file:// URL or an absolute path.
func localPath(url string) (string, bool) {
	if strings.HasPrefix(url, "/") {
		return url, true
	}
	if u, err := neturl.Parse(url); err == nil && u.Scheme == "file" {
		return u.Path, true
	}
	return "", false
}

func isMD5(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

func fileMD5(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// download makes sure the flist at url is in <root>/flist/<md5> and returns
// the md5. A copy whose hash the hub confirms is reused.
func (m *Module) download(ctx context.Context, url string) (string, error) {
	dir := m.dir("flist")
	if hash, err := m.flistHash(ctx, url); err == nil && isMD5(hash) {
		if got, err := fileMD5(filepath.Join(dir, hash)); err == nil && got == hash {
			return hash, nil
		}
	}
	var body io.ReadCloser
	if p, ok := localPath(url); ok {
		f, err := os.Open(p)
		if err != nil {
			return "", fmt.Errorf("flist %s: %w: %w", url, ErrDownload, err)
		}
		body = f
	} else {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return "", fmt.Errorf("flist %s: %w: %w", url, ErrDownload, err)
		}
		resp, err := m.http.Do(req)
		if err != nil {
			return "", fmt.Errorf("flist %s: %w: %w", url, ErrDownload, err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return "", fmt.Errorf("flist %s: %w: status %d", url, ErrDownload, resp.StatusCode)
		}
		body = resp.Body
	}
	defer body.Close()
	tmp, err := os.CreateTemp(dir, "*_flist_temp")
	if err != nil {
		return "", fmt.Errorf("flist %s: %w: %w", url, ErrDownload, err)
	}
	defer os.Remove(tmp.Name())
	h := md5.New()
	_, err = io.Copy(io.MultiWriter(tmp, h), body)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("flist %s: %w: %w", url, ErrDownload, err)
	}
	hash := hex.EncodeToString(h.Sum(nil))
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", fmt.Errorf("flist %s: %w: %w", url, ErrDownload, err)
	}
	final := filepath.Join(dir, hash)
	if err := os.Rename(tmp.Name(), final); err != nil {
		return "", fmt.Errorf("flist %s: %w: %w", url, ErrDownload, err)
	}
	if err := atomicfile.SyncDir(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("flist %s: %w: %w", url, ErrDownload, err)
	}
	m.log.Debug("flist downloaded", "url", url, "hash", hash)
	return hash, nil
}
