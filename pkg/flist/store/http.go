package store

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// httpStore reads block <hex> from <base>/<hex[0:2]>/<hex>, falling back to
// <base>/<hex>; with Options.Authorize it writes with PUT <base>/<hex> and
// checks with HEAD.
type httpStore struct {
	base      string
	client    *http.Client
	authorize func(*http.Request) error
}

func newHTTP(u *url.URL, opts Options) (*httpStore, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("store %q: no host: %w", u.Redacted(), ErrInvalidURL)
	}
	client := opts.HTTPClient
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DialContext = (&net.Dialer{Timeout: opts.dialTimeout()}).DialContext
		tr.ResponseHeaderTimeout = 4 * opts.dialTimeout()
		tr.MaxIdleConnsPerHost = 16
		client = &http.Client{Transport: tr}
	}
	return &httpStore{base: strings.TrimRight(u.String(), "/"), client: client, authorize: opts.Authorize}, nil
}

func (h *httpStore) do(ctx context.Context, method, u string, body []byte) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	if method != http.MethodGet && method != http.MethodHead && h.authorize != nil {
		if err := h.authorize(req); err != nil {
			return nil, err
		}
	}
	return h.client.Do(req)
}

func (h *httpStore) Get(ctx context.Context, key []byte) ([]byte, error) {
	hx, err := hexKey(key)
	if err != nil {
		return nil, err
	}
	for _, u := range []string{h.base + "/" + hx[:2] + "/" + hx, h.base + "/" + hx} {
		resp, err := h.do(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, fmt.Errorf("block %x from %s: %w", key, h.base, err)
		}
		if resp.StatusCode == http.StatusNotFound {
			resp.Body.Close()
			continue
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("block %x from %s: %w", key, h.base, err)
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("block %x from %s: status %d", key, h.base, resp.StatusCode)
		}
		if len(data) == 0 {
			break
		}
		return data, nil
	}
	return nil, fmt.Errorf("block %x from %s: %w", key, h.base, ErrNotFound)
}

func (h *httpStore) Set(ctx context.Context, key, data []byte) error {
	if h.authorize == nil {
		return fmt.Errorf("block %x to %s: %w", key, h.base, ErrReadOnly)
	}
	hx, err := hexKey(key)
	if err != nil {
		return err
	}
	resp, err := h.do(ctx, http.MethodPut, h.base+"/"+hx, data)
	if err != nil {
		return fmt.Errorf("block %x to %s: %w", key, h.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("block %x to %s: status %d: %s", key, h.base, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}

func (h *httpStore) Exists(ctx context.Context, key []byte) (bool, error) {
	hx, err := hexKey(key)
	if err != nil {
		return false, err
	}
	for _, u := range []string{h.base + "/" + hx[:2] + "/" + hx, h.base + "/" + hx} {
		resp, err := h.do(ctx, http.MethodHead, u, nil)
		if err != nil {
			return false, fmt.Errorf("block %x at %s: %w", key, h.base, err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return true, nil
		}
	}
	return false, nil
}

func (h *httpStore) String() string { return redact(h.base) }
func (h *httpStore) Close() error {
	h.client.CloseIdleConnections()
	return nil
}
