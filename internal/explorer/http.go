package explorer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zos-go/zos/pkg/explorer"
	"github.com/zos-go/zos/pkg/gridtypes"
)

// APIPrefix is the path prefix of the HTTP API.
const APIPrefix = "/api/v1"

// Handler is the explorer's HTTP API (and the hub under /hub/ when set).
func (x *Explorer) Handler() http.Handler {
	mux := http.NewServeMux()
	p := APIPrefix
	mux.HandleFunc("POST "+p+"/users", x.postUser)
	mux.HandleFunc("GET "+p+"/users", x.getUsers)
	mux.HandleFunc("GET "+p+"/users/{id}", x.getUser)
	mux.HandleFunc("POST "+p+"/farms", x.postFarm)
	mux.HandleFunc("GET "+p+"/farms", x.getFarms)
	mux.HandleFunc("GET "+p+"/farms/{id}", x.getFarm)
	mux.HandleFunc("GET "+p+"/nodes", x.getNodes)
	mux.HandleFunc("GET "+p+"/nodes/{node}", x.getNode)
	mux.HandleFunc("POST "+p+"/nodes/{node}/public_config", x.postPublicConfig)
	mux.HandleFunc("POST "+p+"/reservations", x.postReservation)
	mux.HandleFunc("GET "+p+"/reservations", x.getReservations)
	mux.HandleFunc("GET "+p+"/reservations/{id}", x.getReservation)
	mux.HandleFunc("DELETE "+p+"/reservations/{id}", x.signHandler(gridtypes.SignDelete))
	mux.HandleFunc("POST "+p+"/reservations/{id}/sign/provision", x.signHandler(gridtypes.SignProvision))
	mux.HandleFunc("POST "+p+"/reservations/{id}/sign/delete", x.signHandler(gridtypes.SignDelete))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	if x.hub != nil {
		mux.Handle("/hub/", http.StripPrefix("/hub", x.hub))
	}
	return mux
}

// status maps an error to its HTTP status.
func status(err error) int {
	switch {
	case errors.Is(err, explorer.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, explorer.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, explorer.ErrInsufficientCapacity):
		return http.StatusConflict
	case errors.Is(err, explorer.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, gridtypes.ErrUnsigned), errors.Is(err, gridtypes.ErrBadSignature):
		return http.StatusUnauthorized
	case errors.Is(err, gridtypes.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, gridtypes.ErrInvalid), errors.Is(err, gridtypes.ErrExpired), errors.Is(err, gridtypes.ErrNotYetValid):
		return http.StatusBadRequest
	case errors.Is(err, explorer.ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func (x *Explorer) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := status(err)
	if code >= 500 {
		x.log.WarnContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	writeJSON(w, code, explorer.Reply{Error: err.Error(), Code: explorer.Code(err)})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// body reads a request body of at most MaxBodyBytes.
func (x *Explorer) body(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, x.cfg.MaxBodyBytes))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, fmt.Errorf("request body over %d bytes: %w", x.cfg.MaxBodyBytes, gridtypes.ErrTooLarge)
	}
	if err != nil {
		return nil, fmt.Errorf("request body: %w: %w", gridtypes.ErrMalformed, err)
	}
	return b, nil
}

func decodeJSON[T any](x *Explorer, r *http.Request) (T, error) {
	var v T
	b, err := x.body(r)
	if err != nil {
		return v, err
	}
	if err := decodeStrict(b, &v); err != nil {
		return v, err
	}
	return v, nil
}

func decodeStrict(b []byte, v any) error {
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("request: %w: %w", gridtypes.ErrMalformed, err)
	}
	if d.More() {
		return fmt.Errorf("request: trailing data: %w", gridtypes.ErrMalformed)
	}
	return nil
}

func pathID(r *http.Request) (uint64, error) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("id %q: %w", r.PathValue("id"), explorer.ErrNotFound)
	}
	return id, nil
}

func queryU64(r *http.Request, name string) (uint64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("query %s=%q: %w", name, s, gridtypes.ErrInvalid)
	}
	return v, nil
}

// page writes items [page*size, ...) of all, and the page count in the
// "Pages" header (page is 1-based, size defaults to 100).
func page[T any](w http.ResponseWriter, r *http.Request, all []T) ([]T, error) {
	p, err := queryU64(r, "page")
	if err != nil {
		return nil, err
	}
	size, err := queryU64(r, "size")
	if err != nil {
		return nil, err
	}
	if size == 0 || size > 1000 {
		size = 100
	}
	if p == 0 {
		p = 1
	}
	pages := (uint64(len(all)) + size - 1) / size
	w.Header().Set("Pages", strconv.FormatUint(pages, 10))
	start := (p - 1) * size
	if start >= uint64(len(all)) {
		return []T{}, nil
	}
	return all[start:min(start+size, uint64(len(all)))], nil
}

func (x *Explorer) postUser(w http.ResponseWriter, r *http.Request) {
	u, err := decodeJSON[gridtypes.User](x, r)
	if err != nil {
		x.fail(w, r, err)
		return
	}
	id, err := x.CreateUser(r.Context(), u)
	if err != nil {
		x.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, explorer.CreatedResponse{ID: id})
}

func (x *Explorer) getUsers(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if name == "" {
		x.fail(w, r, fmt.Errorf("query name is required: %w", gridtypes.ErrInvalid))
		return
	}
	u, err := x.UserByName(r.Context(), name)
	if err != nil {
		x.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, []gridtypes.User{u})
}

func (x *Explorer) getUser(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err == nil {
		var u gridtypes.User
		if u, err = x.User(r.Context(), id); err == nil {
			writeJSON(w, http.StatusOK, u)
			return
		}
	}
	x.fail(w, r, err)
}

func (x *Explorer) postFarm(w http.ResponseWriter, r *http.Request) {
	f, err := decodeJSON[gridtypes.Farm](x, r)
	if err != nil {
		x.fail(w, r, err)
		return
	}
	id, err := x.CreateFarm(r.Context(), f)
	if err != nil {
		x.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, explorer.CreatedResponse{ID: id})
}

func (x *Explorer) getFarms(w http.ResponseWriter, r *http.Request) {
	owner, err := queryU64(r, "owner")
	if err != nil {
		x.fail(w, r, err)
		return
	}
	all, err := x.Farms(r.Context(), owner)
	if err != nil {
		x.fail(w, r, err)
		return
	}
	if name := r.URL.Query().Get("name"); name != "" {
		var keep []gridtypes.Farm
		for _, f := range all {
			if f.Name == name {
				keep = append(keep, f)
			}
		}
		all = keep
	}
	out, err := page(w, r, all)
	if err != nil {
		x.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (x *Explorer) getFarm(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err == nil {
		var f gridtypes.Farm
		if f, err = x.Farm(r.Context(), id); err == nil {
			writeJSON(w, http.StatusOK, f)
			return
		}
	}
	x.fail(w, r, err)
}

// getNodes is the capacity search: query farm, country, city, minimum
// free cru, mru/sru/hru (bytes) and ipv4u, up (seconds since last report).
func (x *Explorer) getNodes(w http.ResponseWriter, r *http.Request) {
	var f NodeFilter
	var err error
	q := r.URL.Query()
	f.Country, f.City = q.Get("country"), q.Get("city")
	for _, v := range []struct {
		name string
		dst  *uint64
	}{{"farm", &f.FarmID}, {"cru", &f.Free.CRU}, {"mru", &f.Free.MRU}, {"sru", &f.Free.SRU}, {"hru", &f.Free.HRU}, {"ipv4u", &f.Free.IPV4U}} {
		if *v.dst, err = queryU64(r, v.name); err != nil {
			x.fail(w, r, err)
			return
		}
	}
	up, err := queryU64(r, "up")
	if err != nil {
		x.fail(w, r, err)
		return
	}
	if up > 0 {
		f.UpSince = x.now().Add(-time.Duration(up) * time.Second)
	}
	all, err := x.Nodes(r.Context(), f)
	if err != nil {
		x.fail(w, r, err)
		return
	}
	out, err := page(w, r, all)
	if err != nil {
		x.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (x *Explorer) getNode(w http.ResponseWriter, r *http.Request) {
	n, err := x.Node(r.Context(), r.PathValue("node"))
	if err != nil {
		x.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, n)
}

func (x *Explorer) postPublicConfig(w http.ResponseWriter, r *http.Request) {
	req, err := decodeJSON[gridtypes.PublicConfigRequest](x, r)
	if err == nil && req.NodeID != r.PathValue("node") {
		err = fmt.Errorf("node %s in the path, %s in the body: %w", r.PathValue("node"), req.NodeID, gridtypes.ErrInvalid)
	}
	var n gridtypes.Node
	if err == nil {
		n, err = x.SetPublicConfig(r.Context(), req)
	}
	if err != nil {
		x.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, n)
}

func (x *Explorer) postReservation(w http.ResponseWriter, r *http.Request) {
	b, err := x.body(r)
	if err != nil {
		x.fail(w, r, err)
		return
	}
	id, err := x.CreateReservation(r.Context(), b)
	if err != nil {
		if errors.Is(err, explorer.ErrReplay) && id != 0 {
			writeJSON(w, http.StatusConflict, explorer.Reply{Error: err.Error(), Code: explorer.Code(err), Data: explorer.CreatedResponse{ID: id}})
			return
		}
		x.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, explorer.CreatedResponse{ID: id})
}

func (x *Explorer) getReservations(w http.ResponseWriter, r *http.Request) {
	var f ResFilter
	var err error
	if f.UserID, err = queryU64(r, "user"); err != nil {
		x.fail(w, r, err)
		return
	}
	f.NodeID = r.URL.Query().Get("node")
	if a := r.URL.Query().Get("next_action"); a != "" {
		action, err := gridtypes.ParseNextAction(a)
		if err != nil {
			x.fail(w, r, err)
			return
		}
		f.Actions = []gridtypes.NextAction{action}
	}
	all, err := x.Reservations(r.Context(), f)
	if err != nil {
		x.fail(w, r, err)
		return
	}
	out, err := page(w, r, all)
	if err != nil {
		x.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (x *Explorer) getReservation(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err == nil {
		var res *gridtypes.Reservation
		if res, err = x.Reservation(r.Context(), id); err == nil {
			writeJSON(w, http.StatusOK, res)
			return
		}
	}
	x.fail(w, r, err)
}

func (x *Explorer) signHandler(action gridtypes.SignAction) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r)
		if err != nil {
			x.fail(w, r, err)
			return
		}
		sig, err := decodeJSON[gridtypes.Signature](x, r)
		if err != nil {
			x.fail(w, r, err)
			return
		}
		res, err := x.Sign(r.Context(), id, action, sig)
		if err != nil {
			x.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	}
}
