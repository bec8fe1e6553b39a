package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
)

// dirStore keeps block <hex> in <root>/<hex[0:2]>/<hex> (rfs layout); reads
// fall back to <root>/<hex>.
type dirStore struct {
	root string
	url  string
}

func newDir(u *url.URL) (*dirStore, error) {
	root := u.Path
	if u.Host != "" || !filepath.IsAbs(root) {
		return nil, fmt.Errorf("store %q: dir:// needs an absolute path: %w", u.Redacted(), ErrInvalidURL)
	}
	return &dirStore{root: filepath.Clean(root), url: u.String()}, nil
}

func (d *dirStore) path(key []byte) (string, error) {
	h, err := hexKey(key)
	if err != nil {
		return "", err
	}
	return filepath.Join(d.root, h[:2], h), nil
}

func (d *dirStore) Get(_ context.Context, key []byte) ([]byte, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		data, err = os.ReadFile(filepath.Join(d.root, filepath.Base(p)))
	}
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(data) == 0) {
		return nil, fmt.Errorf("block %x in %s: %w", key, d.root, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("block %x in %s: %w", key, d.root, err)
	}
	return data, nil
}

func (d *dirStore) Set(_ context.Context, key, data []byte) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if st, err := os.Stat(p); err == nil && st.Size() > 0 {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("block %x in %s: %w", key, d.root, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("block %x in %s: %w", key, d.root, err)
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("block %x in %s: %w", key, d.root, err)
	}
	return nil
}

func (d *dirStore) Exists(_ context.Context, key []byte) (bool, error) {
	p, err := d.path(key)
	if err != nil {
		return false, err
	}
	for _, c := range []string{p, filepath.Join(d.root, filepath.Base(p))} {
		if st, err := os.Stat(c); err == nil && st.Size() > 0 {
			return true, nil
		}
	}
	return false, nil
}

func (d *dirStore) String() string { return d.url }
func (d *dirStore) Close() error   { return nil }
