package hub

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Client talks to a hub. Read methods need no key; changes are signed
// with Key as User.
type Client struct {
	// URL of the hub (where its handler is mounted).
	URL string
	// User and Key sign uploads, aliases, deletions and block uploads.
	User string
	Key  ed25519.PrivateKey
	// HTTP client (default: 5 minute timeout).
	HTTP *http.Client
}

// APIError is a non-2xx answer of the hub.
type APIError struct {
	Status  int
	Message string
}

// Error implements error.
func (e *APIError) Error() string { return fmt.Sprintf("hub: status %d: %s", e.Status, e.Message) }

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 5 * time.Minute}
}

func (c *Client) url(parts ...string) string {
	escaped := make([]string, len(parts))
	for i, p := range parts {
		escaped[i] = url.PathEscape(p)
	}
	return strings.TrimRight(c.URL, "/") + "/" + strings.Join(escaped, "/")
}

// BlockStoreURL is the block store URL of the hub (for store.Open).
func (c *Client) BlockStoreURL() string { return strings.TrimRight(c.URL, "/") + "/blocks" }

// FlistURL is the download URL of user's flist name.
func (c *Client) FlistURL(user, name string) string { return c.url(user, name) }

// Authorize signs r as the client's user; use it as store.Options.Authorize
// for block uploads.
func (c *Client) Authorize(r *http.Request) error {
	if c.User == "" || c.Key == nil {
		return fmt.Errorf("hub: no user key to sign with: %w", ErrUnauthorized)
	}
	return SignRequest(r, c.User, c.Key)
}

func (c *Client) do(ctx context.Context, method, u string, body []byte, signed bool, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if signed {
		if c.User == "" || c.Key == nil {
			return fmt.Errorf("hub: no user key to sign with: %w", ErrUnauthorized)
		}
		Sign(req, c.User, c.Key, Digest(body), time.Now())
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("hub: answer: %w", err)
		}
	}
	return nil
}

// Upload uploads the flist file at path as the client's user's name.
func (c *Client) Upload(ctx context.Context, path, name string) (Info, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Info{}, fmt.Errorf("hub: %w", err)
	}
	var info Info
	err = c.do(ctx, http.MethodPut, c.url("api", "flist", c.User, name), data, true, &info)
	return info, err
}

// Link makes name an alias of target ("other.flist" or "user/other.flist").
func (c *Client) Link(ctx context.Context, name, target string) (Info, error) {
	body, _ := json.Marshal(map[string]string{"target": target})
	var info Info
	err := c.do(ctx, http.MethodPut, c.url("api", "flist", c.User, name, "link"), body, true, &info)
	return info, err
}

// Delete removes the client's user's flist or alias name.
func (c *Client) Delete(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, c.url("api", "flist", c.User, name), nil, true, nil)
}

// Users lists the users that have flists.
func (c *Client) Users(ctx context.Context) ([]string, error) {
	var out []string
	err := c.do(ctx, http.MethodGet, c.url("api", "flist"), nil, false, &out)
	return out, err
}

// List lists user's flists.
func (c *Client) List(ctx context.Context, user string) ([]Info, error) {
	var out []Info
	err := c.do(ctx, http.MethodGet, c.url("api", "flist", user), nil, false, &out)
	return out, err
}

// Info describes user's flist name; with contents, it lists its files.
func (c *Client) Info(ctx context.Context, user, name string, contents bool) (Info, error) {
	u := c.url("api", "flist", user, name)
	if !contents {
		u += "/light"
	}
	var info Info
	err := c.do(ctx, http.MethodGet, u, nil, false, &info)
	return info, err
}
