package explorer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/zos-go/zos/pkg/gridtypes"
)

// Client is the explorer's HTTP client for users and tools (the zos CLI).
// Safe for concurrent use.
type Client struct {
	base string
	hc   *http.Client
}

// NewClient returns a client of the explorer at baseURL
// ("http://host:8080"); hc nil means http.DefaultClient.
func NewClient(baseURL string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(baseURL, "/") + "/api/v1", hc: hc}
}

// do sends a request and decodes a 2xx answer into out. Other answers are
// an *APIError; a transport failure wraps ErrUnavailable.
func (c *Client) do(ctx context.Context, method, path string, body, out any) (http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, ok := body.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(body); err != nil {
				return nil, fmt.Errorf("%s %s: %w", method, path, err)
			}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %w", method, path, ErrUnavailable, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %w", method, path, ErrUnavailable, err)
	}
	if resp.StatusCode/100 != 2 {
		var rep struct {
			Error string          `json:"error"`
			Code  string          `json:"code"`
			Data  json.RawMessage `json:"data"`
		}
		if json.Unmarshal(b, &rep) != nil || rep.Error == "" {
			rep.Error, rep.Code = fmt.Sprintf("%s %s: %s", method, path, resp.Status), statusCode(resp.StatusCode)
		}
		if out != nil && len(rep.Data) > 0 {
			_ = json.Unmarshal(rep.Data, out)
		}
		return resp.Header, &APIError{Status: resp.StatusCode, Code: rep.Code, Message: rep.Error}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("%s %s: answer: %w: %w", method, path, gridtypes.ErrMalformed, err)
		}
	}
	return resp.Header, nil
}

func statusCode(status int) string {
	switch status {
	case http.StatusNotFound:
		return "not_found"
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return "unavailable"
	}
	return "internal"
}

// CreateUser registers u (signed with its key) and returns its id.
func (c *Client) CreateUser(ctx context.Context, u gridtypes.User) (uint64, error) {
	var r CreatedResponse
	_, err := c.do(ctx, http.MethodPost, "/users", u, &r)
	return r.ID, err
}

// User returns user id.
func (c *Client) User(ctx context.Context, id uint64) (gridtypes.User, error) {
	var u gridtypes.User
	_, err := c.do(ctx, http.MethodGet, "/users/"+strconv.FormatUint(id, 10), nil, &u)
	return u, err
}

// UserByName returns the user called name.
func (c *Client) UserByName(ctx context.Context, name string) (gridtypes.User, error) {
	var us []gridtypes.User
	if _, err := c.do(ctx, http.MethodGet, "/users?name="+url.QueryEscape(name), nil, &us); err != nil {
		return gridtypes.User{}, err
	}
	if len(us) == 0 {
		return gridtypes.User{}, fmt.Errorf("user %q: %w", name, ErrNotFound)
	}
	return us[0], nil
}

// CreateFarm registers f (signed by its owner) and returns its id.
func (c *Client) CreateFarm(ctx context.Context, f gridtypes.Farm) (uint64, error) {
	var r CreatedResponse
	_, err := c.do(ctx, http.MethodPost, "/farms", f, &r)
	return r.ID, err
}

// Farm returns farm id.
func (c *Client) Farm(ctx context.Context, id uint64) (gridtypes.Farm, error) {
	var f gridtypes.Farm
	_, err := c.do(ctx, http.MethodGet, "/farms/"+strconv.FormatUint(id, 10), nil, &f)
	return f, err
}

// Farms lists farms (of owner when not 0).
func (c *Client) Farms(ctx context.Context, owner uint64) ([]gridtypes.Farm, error) {
	q := url.Values{}
	if owner != 0 {
		q.Set("owner", strconv.FormatUint(owner, 10))
	}
	return pages[gridtypes.Farm](ctx, c, "/farms", q)
}

// NodeQuery filters a node search; zero fields do not filter.
type NodeQuery struct {
	FarmID  uint64
	Country string
	City    string
	// Free is the least free capacity.
	Free gridtypes.Capacity
	// UpWithin keeps nodes that reported within this many seconds.
	UpWithin uint64
}

// Nodes searches nodes.
func (c *Client) Nodes(ctx context.Context, nq NodeQuery) ([]gridtypes.Node, error) {
	q := url.Values{}
	set := func(k string, v uint64) {
		if v != 0 {
			q.Set(k, strconv.FormatUint(v, 10))
		}
	}
	set("farm", nq.FarmID)
	set("cru", nq.Free.CRU)
	set("mru", nq.Free.MRU)
	set("sru", nq.Free.SRU)
	set("hru", nq.Free.HRU)
	set("ipv4u", nq.Free.IPV4U)
	set("up", nq.UpWithin)
	if nq.Country != "" {
		q.Set("country", nq.Country)
	}
	if nq.City != "" {
		q.Set("city", nq.City)
	}
	return pages[gridtypes.Node](ctx, c, "/nodes", q)
}

// Node returns one node.
func (c *Client) Node(ctx context.Context, nodeID string) (gridtypes.Node, error) {
	var n gridtypes.Node
	_, err := c.do(ctx, http.MethodGet, "/nodes/"+url.PathEscape(nodeID), nil, &n)
	return n, err
}

// SetPublicConfig sets a node's public interface (signed by the farm owner).
func (c *Client) SetPublicConfig(ctx context.Context, req gridtypes.PublicConfigRequest) (gridtypes.Node, error) {
	var n gridtypes.Node
	_, err := c.do(ctx, http.MethodPost, "/nodes/"+url.PathEscape(req.NodeID)+"/public_config", req, &n)
	return n, err
}

// CreateReservation submits a signed reservation and returns its id. When
// the same signed request was accepted before, the error wraps ErrReplay
// and the id is the one it got.
func (c *Client) CreateReservation(ctx context.Context, r *gridtypes.Reservation) (uint64, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return 0, fmt.Errorf("reservation: %w", err)
	}
	return c.CreateReservationJSON(ctx, b)
}

// CreateReservationJSON submits a reservation document as is.
func (c *Client) CreateReservationJSON(ctx context.Context, body []byte) (uint64, error) {
	var created CreatedResponse
	_, err := c.do(ctx, http.MethodPost, "/reservations", body, &created)
	return created.ID, err
}

// Reservation returns reservation id with its last result.
func (c *Client) Reservation(ctx context.Context, id uint64) (*gridtypes.Reservation, error) {
	var r gridtypes.Reservation
	if _, err := c.do(ctx, http.MethodGet, "/reservations/"+strconv.FormatUint(id, 10), nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// ReservationQuery filters a reservation listing.
type ReservationQuery struct {
	UserID     uint64
	NodeID     string
	NextAction string
}

// Reservations lists reservations.
func (c *Client) Reservations(ctx context.Context, rq ReservationQuery) ([]*gridtypes.Reservation, error) {
	q := url.Values{}
	if rq.UserID != 0 {
		q.Set("user", strconv.FormatUint(rq.UserID, 10))
	}
	if rq.NodeID != "" {
		q.Set("node", rq.NodeID)
	}
	if rq.NextAction != "" {
		q.Set("next_action", rq.NextAction)
	}
	return pages[*gridtypes.Reservation](ctx, c, "/reservations", q)
}

// Delete asks for the deletion of reservation id with a delete signature.
func (c *Client) Delete(ctx context.Context, id uint64, sig gridtypes.Signature) (*gridtypes.Reservation, error) {
	return c.sign(ctx, http.MethodDelete, "/reservations/"+strconv.FormatUint(id, 10), sig)
}

// Sign adds a provision or delete signature to reservation id.
func (c *Client) Sign(ctx context.Context, id uint64, action gridtypes.SignAction, sig gridtypes.Signature) (*gridtypes.Reservation, error) {
	return c.sign(ctx, http.MethodPost, "/reservations/"+strconv.FormatUint(id, 10)+"/sign/"+string(action), sig)
}

func (c *Client) sign(ctx context.Context, method, path string, sig gridtypes.Signature) (*gridtypes.Reservation, error) {
	var r gridtypes.Reservation
	if _, err := c.do(ctx, method, path, sig, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// pages fetches every page of a listing.
func pages[T any](ctx context.Context, c *Client, path string, q url.Values) ([]T, error) {
	var all []T
	q.Set("size", "1000")
	for p := 1; ; p++ {
		q.Set("page", strconv.Itoa(p))
		var items []T
		h, err := c.do(ctx, http.MethodGet, path+"?"+q.Encode(), nil, &items)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		n, err := strconv.Atoi(h.Get("Pages"))
		if err != nil || p >= n {
			return all, nil
		}
	}
}

// IsUnavailable reports whether err is a transport failure or an explorer
// that cannot serve now: the request may be retried as is.
func IsUnavailable(err error) bool { return errors.Is(err, ErrUnavailable) }
