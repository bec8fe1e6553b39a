package zosd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/provision"
	"github.com/zos-go/zos/pkg/provision/primitives"
)

// Status is the answer of GET /status on the local API.
type Status struct {
	NodeID       string             `json:"node_id"`
	FarmID       uint64             `json:"farm_id"`
	Version      string             `json:"version"`
	Ready        bool               `json:"ready"`
	Capabilities []Capability       `json:"capabilities"`
	Total        gridtypes.Capacity `json:"total"`
	System       gridtypes.Capacity `json:"system"`
	Used         gridtypes.Capacity `json:"used"`
}

// Workload is one entry of GET /workloads.
type Workload struct {
	ID        uint64                 `json:"id"`
	Name      string                 `json:"name"`
	Type      gridtypes.WorkloadType `json:"type"`
	User      uint64                 `json:"user_id"`
	State     provision.State        `json:"state"`
	Result    *gridtypes.Result      `json:"result,omitempty"`
	LastError string                 `json:"last_error,omitempty"`
	Retries   int                    `json:"retries,omitempty"`
}

// apiError is the error body of the local API.
type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (a *Agent) handler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		st, err := a.status()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, apiError{err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("GET /workloads", func(w http.ResponseWriter, r *http.Request) {
		recs, err := a.store.List()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, apiError{err.Error()})
			return
		}
		out := make([]Workload, 0, len(recs))
		for _, rec := range recs {
			out = append(out, workloadOf(rec))
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /workloads/{id}", func(w http.ResponseWriter, r *http.Request) {
		rec, ok := a.record(w, r)
		if ok {
			writeJSON(w, http.StatusOK, workloadOf(rec))
		}
	})
	mux.HandleFunc("GET /workloads/{id}/logs", func(w http.ResponseWriter, r *http.Request) {
		rec, ok := a.record(w, r)
		if !ok {
			return
		}
		logs, err := a.logs(r.Context(), rec)
		if err != nil {
			writeJSON(w, http.StatusNotFound, apiError{err.Error()})
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(logs)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

func (a *Agent) record(w http.ResponseWriter, r *http.Request) (*provision.Record, bool) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{"id: not a reservation id"})
		return nil, false
	}
	rec, err := a.store.Get(id)
	if errors.Is(err, provision.ErrNotFound) {
		writeJSON(w, http.StatusNotFound, apiError{err.Error()})
		return nil, false
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{err.Error()})
		return nil, false
	}
	return rec, true
}

func workloadOf(rec *provision.Record) Workload {
	return Workload{
		ID: rec.ID(), Name: rec.Name, Type: rec.Reservation.Type, User: rec.Reservation.UserID,
		State: rec.State, Result: rec.Result, LastError: rec.LastError, Retries: rec.Retries,
	}
}

// logs returns the tail of a container's output or a VM's console.
func (a *Agent) logs(ctx context.Context, rec *provision.Record) ([]byte, error) {
	switch rec.Reservation.Type {
	case gridtypes.TypeContainer:
		if a.container == nil {
			return nil, errors.New("containers are not available on this node")
		}
		return a.container.Logs(ctx, primitives.ContainerNS(rec.Reservation.UserID), pkg.ContainerID(rec.Name), 64<<10)
	case gridtypes.TypeVM, gridtypes.TypeKubernetes:
		if a.vm == nil {
			return nil, errors.New("virtual machines are not available on this node")
		}
		s, err := a.vm.Logs(rec.Name)
		return []byte(s), err
	}
	return nil, fmt.Errorf("a %s workload has no logs", rec.Reservation.Type)
}

func (a *Agent) status() (Status, error) {
	st := Status{NodeID: string(a.id.NodeID()), Version: Version, Capabilities: a.Capabilities()}
	if farm, err := a.id.FarmID(); err == nil {
		st.FarmID = uint64(farm)
	}
	if a.engine != nil {
		st.Ready = a.engine.Ready()
		rep, err := a.capacityReport()
		if err != nil {
			return Status{}, err
		}
		st.Total, st.System, st.Used = rep.Total, rep.System, rep.Used
	}
	return st, nil
}

// serveAPI serves the local API on a root-only unix socket, and /metrics on
// TCP when configured, until ctx ends.
func (a *Agent) serveAPI(ctx context.Context) error {
	reg := a.metrics()
	h := a.handler(reg)
	if err := os.MkdirAll(filepath.Dir(a.cfg.API), 0o755); err != nil {
		return err
	}
	_ = os.Remove(a.cfg.API) // a stale socket of a previous run
	l, err := net.Listen("unix", a.cfg.API)
	if err != nil {
		return fmt.Errorf("local api: %w", err)
	}
	if err := os.Chmod(a.cfg.API, 0o600); err != nil {
		l.Close()
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errs := make(chan error, 2)
	go func() { errs <- srv.Serve(l) }()
	var msrv *http.Server
	if a.cfg.Metrics != "" {
		ml, err := net.Listen("tcp", a.cfg.Metrics)
		if err != nil {
			_ = srv.Close()
			return fmt.Errorf("metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		msrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { errs <- msrv.Serve(ml) }()
	}
	a.log.Info("local api serving", "socket", a.cfg.API, "metrics", a.cfg.Metrics)
	select {
	case <-ctx.Done():
	case err := <-errs:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shut)
	if msrv != nil {
		_ = msrv.Shutdown(shut)
	}
	return nil
}
