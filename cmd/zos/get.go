package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/zos-go/zos/pkg/explorer"
	"github.com/zos-go/zos/pkg/gridtypes"
)

func getCmd(a *app) *cobra.Command {
	var watch, all bool
	var node, action string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "get [id]",
		Short: "show a reservation, or list yours",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				id, err := parseID(args[0])
				if err != nil {
					return err
				}
				if watch {
					return a.watch(cmd.Context(), []uint64{id}, wait, false)
				}
				ctx, cancel := a.ctx(cmd.Context())
				defer cancel()
				r, err := a.client().Reservation(ctx, id)
				if err != nil {
					return err
				}
				return a.printReservations([]*gridtypes.Reservation{r})
			}
			q := explorer.ReservationQuery{NodeID: node, NextAction: action}
			if !all {
				m, err := a.identity()
				if err != nil {
					return err
				}
				q.UserID = m.id
			}
			ctx, cancel := a.ctx(cmd.Context())
			defer cancel()
			rs, err := a.client().Reservations(ctx, q)
			if err != nil {
				return err
			}
			return a.printReservations(rs)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&watch, "watch", false, "wait until the node answers")
	f.DurationVar(&wait, "wait", 5*time.Minute, "how long --watch waits")
	f.BoolVar(&all, "all", false, "list every user's reservations")
	f.StringVar(&node, "node", "", "only this node's")
	f.StringVar(&action, "next-action", "", "only in this state (deploy, delete, deleted, sign...)")
	return cmd
}

func deleteCmd(a *app) *cobra.Command {
	var watch bool
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "delete <id>",
		Short: "sign the deletion of a reservation",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			r, err := a.sign(cmd, id, gridtypes.SignDelete)
			if err != nil {
				return err
			}
			if watch && r.NextAction != gridtypes.ActionDeleted {
				return a.watch(cmd.Context(), []uint64{id}, wait, r.NextAction == gridtypes.ActionDelete)
			}
			return a.printReservations([]*gridtypes.Reservation{r})
		},
	}
	cmd.Flags().BoolVar(&watch, "watch", false, "wait until the node removed it")
	cmd.Flags().DurationVar(&wait, "wait", 5*time.Minute, "how long --watch waits")
	return cmd
}

func signCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:       "sign <id> provision|delete",
		Short:     "add your signature to a multi-signature request",
		Args:      cobra.ExactArgs(2),
		ValidArgs: []string{"provision", "delete"},
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			action := gridtypes.SignAction(args[1])
			if action != gridtypes.SignProvision && action != gridtypes.SignDelete {
				return fmt.Errorf("action %q is not provision or delete: %w", args[1], errUsage)
			}
			r, err := a.sign(cmd, id, action)
			if err != nil {
				return err
			}
			return a.printReservations([]*gridtypes.Reservation{r})
		},
	}
}

// sign fetches reservation id, signs action with the identity and submits it.
func (a *app) sign(cmd *cobra.Command, id uint64, action gridtypes.SignAction) (*gridtypes.Reservation, error) {
	m, err := a.identity()
	if err != nil {
		return nil, err
	}
	ctx, cancel := a.ctx(cmd.Context())
	defer cancel()
	c := a.client()
	r, err := c.Reservation(ctx, id)
	if err != nil {
		return nil, err
	}
	s, err := r.SignAction(action, m.id, m.sk, time.Now())
	if err != nil {
		return nil, err
	}
	if action == gridtypes.SignDelete {
		return c.Delete(ctx, id, s)
	}
	return c.Sign(ctx, id, action, s)
}

func (a *app) printReservations(rs []*gridtypes.Reservation) error {
	if rs == nil {
		rs = []*gridtypes.Reservation{}
	}
	return a.print(rs, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "ID\tTYPE\tNODE\tNEXT ACTION\tRESULT\tMESSAGE")
		for _, r := range rs {
			state, msg := "-", ""
			if r.Result != nil {
				state, msg = r.Result.State.String(), r.Result.Message
				if msg == "" && len(r.Result.Data) > 0 && string(r.Result.Data) != "null" {
					msg = string(r.Result.Data)
				}
			}
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Type, r.NodeID, r.NextAction, state, msg)
		}
	})
}
