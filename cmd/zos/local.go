package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/zos-go/zos/internal/zosd"
)

// localCmd is `zos node local ...`: the node's own view, through zosd's
// root-only local API socket (run it on the node).
func localCmd(a *app) *cobra.Command {
	var socket string
	cmd := &cobra.Command{
		Use:   "local",
		Short: "ask the zosd of this machine (status, workloads, logs)",
	}
	cmd.PersistentFlags().StringVar(&socket, "socket", "/var/run/zosd.sock", "zosd local API socket")
	status := &cobra.Command{
		Use:   "status",
		Short: "node id, capabilities and capacity",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st zosd.Status
			if _, err := zosd.Get(cmd.Context(), socket, "/status", &st); err != nil {
				return err
			}
			return a.print(st, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "node\t%s\nfarm\t%d\nversion\t%s\nready\t%v\n", st.NodeID, st.FarmID, st.Version, st.Ready)
				for _, c := range st.Capabilities {
					state := "up"
					if !c.Up {
						state = "DOWN: " + c.Error
					}
					fmt.Fprintf(w, "%s\t%s\n", c.Name, state)
				}
				fmt.Fprintf(w, "total\t%v\nsystem\t%v\nused\t%v\n", st.Total, st.System, st.Used)
			})
		},
	}
	workloads := &cobra.Command{
		Use:   "workloads",
		Short: "the workloads on this node with their state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ws []zosd.Workload
			if _, err := zosd.Get(cmd.Context(), socket, "/workloads", &ws); err != nil {
				return err
			}
			return a.print(ws, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ID\tNAME\tTYPE\tUSER\tSTATE\tLAST ERROR")
				for _, w := range ws {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", w.ID, w.Name, w.Type, w.User, w.State, strings.ReplaceAll(w.LastError, "\n", " "))
				}
			})
		},
	}
	logs := &cobra.Command{
		Use:   "logs <reservation id>",
		Short: "a container's output or a VM's console",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := zosd.Get(cmd.Context(), socket, "/workloads/"+args[0]+"/logs", nil)
			if err != nil {
				return err
			}
			_, err = a.out.Write(b)
			return err
		},
	}
	cmd.AddCommand(status, workloads, logs)
	return cmd
}
