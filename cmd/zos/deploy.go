package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"gopkg.in/yaml.v3"

	"github.com/zos-go/zos/pkg/explorer"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/identity"
)

// deployFile is what a user writes: the reservation without what zos
// fills in (owner, version, times, signature). Secrets are in clear.
type deployFile struct {
	NodeID      string                 `json:"node_id,omitempty"`
	Type        gridtypes.WorkloadType `json:"type"`
	Data        json.RawMessage        `json:"data"`
	Description string                 `json:"description,omitempty"`
	Metadata    string                 `json:"metadata,omitempty"`
	Reference   string                 `json:"reference,omitempty"`
	// Lifetime is a Go duration ("720h"): the workload is removed then.
	Lifetime                string                   `json:"lifetime,omitempty"`
	SigningRequestProvision gridtypes.SigningRequest `json:"signing_request_provision,omitzero"`
	SigningRequestDelete    gridtypes.SigningRequest `json:"signing_request_delete,omitzero"`
}

// readDocuments returns the JSON of each document of a YAML (multi
// document) or JSON file; "-" is stdin.
func readDocuments(path string, stdin io.Reader) ([][]byte, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(stdin, 16<<20))
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("reservation file: %w", err)
	}
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		return [][]byte{t}, nil
	}
	var docs [][]byte
	d := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var v any
		err := d.Decode(&v)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reservation file %s: %w: %w", path, gridtypes.ErrMalformed, err)
		}
		if v == nil {
			continue
		}
		j, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("reservation file %s: %w: %w", path, gridtypes.ErrMalformed, err)
		}
		docs = append(docs, j)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("reservation file %s is empty: %w", path, gridtypes.ErrMalformed)
	}
	return docs, nil
}

// buildReservation turns a document into a signed reservation of m, with
// its secrets sealed to the node (unless sealed says they already are).
func buildReservation(doc []byte, m me, node, reference string, lifetime time.Duration, now time.Time, validity time.Duration, sealed bool) (*gridtypes.Reservation, error) {
	var f deployFile
	d := json.NewDecoder(bytes.NewReader(doc))
	d.DisallowUnknownFields()
	if err := d.Decode(&f); err != nil {
		return nil, fmt.Errorf("reservation: %w: %w", gridtypes.ErrMalformed, err)
	}
	if node != "" {
		f.NodeID = node
	}
	if reference != "" {
		f.Reference = reference
	}
	if lifetime == 0 && f.Lifetime != "" {
		var err error
		if lifetime, err = time.ParseDuration(f.Lifetime); err != nil || lifetime < time.Second {
			return nil, fmt.Errorf("lifetime %q: not a duration of at least 1s: %w", f.Lifetime, gridtypes.ErrInvalid)
		}
	}
	r := &gridtypes.Reservation{Version: gridtypes.CurrentVersion, NodeID: f.NodeID, UserID: m.id, Type: f.Type, Data: f.Data,
		Description: f.Description, Metadata: f.Metadata, Reference: f.Reference, Created: now.Unix(), Expires: now.Add(validity).Unix(),
		Lifetime:                int64(lifetime / time.Second),
		SigningRequestProvision: f.SigningRequestProvision, SigningRequestDelete: f.SigningRequestDelete}
	w, err := r.Workload()
	if err != nil {
		return nil, err
	}
	if err := r.SetWorkload(w); err != nil {
		return nil, err
	}
	if r.NodeID == "" {
		return r, nil // the caller picks a node, then calls seal
	}
	return r, seal(r, m, sealed)
}

// seal encrypts the secrets of r to its node and signs it.
func seal(r *gridtypes.Reservation, m me, sealed bool) error {
	if _, err := gridtypes.ParseNodeID(r.NodeID); err != nil {
		return err
	}
	if !sealed {
		err := r.TransformSecrets(func(field string, kind gridtypes.SecretKind, v string) (string, error) {
			var ct []byte
			var err error
			if kind == gridtypes.SecretSealed || r.Version == 0 {
				ct, err = identity.SealToNode(r.NodeID, []byte(v))
			} else {
				ct, err = identity.EncryptECDHToNode(m.sk, r.NodeID, []byte(v))
			}
			if err != nil {
				return "", fmt.Errorf("seal %s: %w", field, err)
			}
			return hex.EncodeToString(ct), nil
		})
		if err != nil {
			return err
		}
	}
	if err := r.Validate(); err != nil {
		return err
	}
	return r.Sign(m.sk)
}

// pickNode returns the first node that reported in the last 20 minutes
// with room for r.
func (a *app) pickNode(ctx context.Context, r *gridtypes.Reservation) (string, error) {
	need, err := r.Resources()
	if err != nil {
		return "", err
	}
	need.IPV4U = 0
	ns, err := a.client().Nodes(ctx, explorer.NodeQuery{Free: need, UpWithin: 1200})
	if err != nil {
		return "", err
	}
	if len(ns) == 0 {
		return "", fmt.Errorf("no node has %s free: %w", need, explorer.ErrInsufficientCapacity)
	}
	return ns[0].NodeID, nil
}

func deployCmd(a *app) *cobra.Command {
	var file, node string
	var watch, sealed bool
	var validity, wait, lifetime time.Duration
	var replaces uint64
	cmd := &cobra.Command{
		Use:   "deploy -f reservation.yaml",
		Short: "sign and submit reservations (YAML or JSON, several YAML documents allowed)",
		Long: `deploy reads reservations (node_id, type, data, and optionally description,
metadata and signing requests), encrypts their secrets to the target node,
signs them with your identity and submits them. Without node_id (or --node)
a node with enough free capacity is picked. See examples/ for every type.

--replaces ID updates a workload in place: the reservation replaces
reservation ID (same type, on its node), keeps its working name and what it
holds (a volume keeps its data and grows), and ID is reported deleted once
the update is deployed. Only the difference in capacity must be free. If the
update fails, ID stays as it was.

--lifetime (or lifetime: in the file) makes the node remove the workload
when it ends; its result then reads deleted, "expired".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return fmt.Errorf("-f is required: %w", errUsage)
			}
			m, err := a.identity()
			if err != nil {
				return err
			}
			docs, err := readDocuments(file, cmd.InOrStdin())
			if err != nil {
				return err
			}
			reference := ""
			if replaces != 0 {
				if len(docs) != 1 {
					return fmt.Errorf("--replaces takes a file of one reservation, not %d: %w", len(docs), errUsage)
				}
				ctx, cancel := a.ctx(cmd.Context())
				old, err := a.client().Reservation(ctx, replaces)
				cancel()
				if err != nil {
					return fmt.Errorf("reservation %d: %w", replaces, err)
				}
				if node != "" && node != old.NodeID {
					return fmt.Errorf("--node %s: reservation %d is on node %s, an update stays there: %w", node, replaces, old.NodeID, errUsage)
				}
				node, reference = old.NodeID, old.GWID()
			}
			var ids []uint64
			for i, doc := range docs {
				r, err := buildReservation(doc, m, node, reference, lifetime, time.Now(), validity, sealed)
				if err != nil {
					return fmt.Errorf("document %d: %w", i+1, err)
				}
				ctx, cancel := a.ctx(cmd.Context())
				if r.NodeID == "" {
					if r.NodeID, err = a.pickNode(ctx, r); err == nil {
						err = seal(r, m, sealed)
					}
				}
				var id uint64
				if err == nil {
					id, err = a.client().CreateReservation(ctx, r)
				}
				cancel()
				if err != nil {
					return fmt.Errorf("document %d: %w", i+1, err)
				}
				fmt.Fprintf(a.errOut, "reservation %d (%s) submitted to node %s\n", id, r.Type, r.NodeID)
				ids = append(ids, id)
			}
			if watch {
				return a.watch(cmd.Context(), ids, wait, false)
			}
			return a.printIDs(ids)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "reservation file (YAML or JSON, - for stdin)")
	f.StringVar(&node, "node", "", "target node (overrides node_id)")
	f.BoolVar(&watch, "watch", false, "wait for the node's result")
	f.DurationVar(&wait, "wait", 5*time.Minute, "how long --watch waits")
	f.BoolVar(&sealed, "sealed", false, "secrets in the file are already encrypted (hex)")
	f.Uint64Var(&replaces, "replaces", 0, "update reservation `ID` in place (same type and node)")
	f.DurationVar(&lifetime, "lifetime", 0, "remove the workload this long after now (e.g. 720h; default: until deleted)")
	f.DurationVar(&validity, "validity", 10*time.Minute, "how long the signed request may be submitted")
	_ = cmd.MarkFlagFilename("file", "yaml", "yml", "json")
	return cmd
}

func (a *app) printIDs(ids []uint64) error {
	out := make([]explorer.CreatedResponse, len(ids))
	for i, id := range ids {
		out[i].ID = id
	}
	return a.print(out, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "ID")
		for _, id := range ids {
			fmt.Fprintln(w, id)
		}
	})
}

// watch polls the reservations until each has a result (or, for
// deletions, is deleted), showing a spinner on a terminal.
func (a *app) watch(ctx context.Context, ids []uint64, wait time.Duration, deletion bool) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	bar := progressbar.NewOptions(len(ids), progressbar.OptionSetWriter(a.errOut),
		progressbar.OptionSetDescription("waiting for the node"), progressbar.OptionShowCount(),
		progressbar.OptionSetVisibility(isTerminal(a.errOut)), progressbar.OptionClearOnFinish())
	done := map[uint64]*gridtypes.Reservation{}
	for len(done) < len(ids) {
		for _, id := range ids {
			if done[id] != nil {
				continue
			}
			rctx, rcancel := a.ctx(ctx)
			r, err := a.client().Reservation(rctx, id)
			rcancel()
			if err != nil && !explorer.IsUnavailable(err) {
				return err
			}
			if err == nil && finished(r, deletion) {
				done[id] = r
				_ = bar.Add(1)
			}
		}
		if len(done) == len(ids) {
			break
		}
		select {
		case <-ctx.Done():
			_ = bar.Finish()
			return fmt.Errorf("%d of %d reservations answered within %s: %w", len(done), len(ids), wait, errWaitTimeout)
		case <-time.After(500 * time.Millisecond):
		}
	}
	_ = bar.Finish()
	var rs []*gridtypes.Reservation
	failed := 0
	for _, id := range ids {
		rs = append(rs, done[id])
		if r := done[id].Result; r != nil && r.State == gridtypes.StateError {
			failed++
		}
	}
	if err := a.printReservations(rs); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d reservation(s) failed: %w", failed, errDeployFailed)
	}
	return nil
}

func finished(r *gridtypes.Reservation, deletion bool) bool {
	if deletion {
		return r.NextAction == gridtypes.ActionDeleted
	}
	return r.Result != nil || r.NextAction == gridtypes.ActionDeleted || r.NextAction == gridtypes.ActionInvalid
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func parseID(s string) (uint64, error) {
	id, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("reservation id %q: %w", s, errUsage)
	}
	return id, nil
}
