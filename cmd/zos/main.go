// Command zos is the user's command line for the grid: create an identity,
// farms, find nodes, deploy signed reservations (secrets sealed to the node
// before they leave the machine), follow them until the node answers, and
// delete them.
//
// Exit codes: 0 success, 1 other error, 2 bad usage, 3 not found,
// 4 refused input (invalid, unsigned, bad signature, expired), 5 conflict or
// not enough capacity, 6 explorer unavailable, 7 the node reported an
// error, 8 timed out waiting for a result.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/zos-go/zos/pkg/explorer"
	"github.com/zos-go/zos/pkg/flist/flistcli"
	"github.com/zos-go/zos/pkg/gridtypes"
)

// Exit codes.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitNotFound    = 3
	exitRefused     = 4
	exitConflict    = 5
	exitUnavailable = 6
	exitDeployError = 7
	exitTimeout     = 8
)

var (
	errDeployFailed = errors.New("the node reported an error")
	errWaitTimeout  = errors.New("timed out waiting for the node")
	errUsage        = errors.New("usage")
)

func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errUsage):
		return exitUsage
	case errors.Is(err, errDeployFailed):
		return exitDeployError
	case errors.Is(err, errWaitTimeout):
		return exitTimeout
	case errors.Is(err, explorer.ErrNotFound):
		return exitNotFound
	case errors.Is(err, explorer.ErrConflict), errors.Is(err, explorer.ErrInsufficientCapacity):
		return exitConflict
	case errors.Is(err, explorer.ErrUnavailable):
		return exitUnavailable
	case errors.Is(err, gridtypes.ErrInvalid), errors.Is(err, gridtypes.ErrUnsigned), errors.Is(err, gridtypes.ErrBadSignature),
		errors.Is(err, gridtypes.ErrExpired), errors.Is(err, gridtypes.ErrNotYetValid), errors.Is(err, explorer.ErrForbidden):
		return exitRefused
	}
	return exitError
}

func main() {
	cmd := newRoot(&app{})
	err := cmd.Execute()
	if err != nil {
		fmt.Fprintln(os.Stderr, "zos:", err)
	}
	os.Exit(exitCode(err))
}

func defaultIdentity() string {
	if p := os.Getenv("ZOS_IDENTITY"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		dir = "."
	}
	return filepath.Join(dir, "zos", "identity.seed")
}

func defaultExplorer() string {
	if u := os.Getenv("ZOS_EXPLORER"); u != "" {
		return u
	}
	return "http://127.0.0.1:8080"
}

func newRoot(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:           "zos",
		Short:         "deploy and manage workloads on a zos grid",
		SilenceUsage:  true,
		SilenceErrors: true,
		Long: `zos talks to a grid explorer. Reservations are signed with your identity;
their secrets are encrypted to the target node before they are sent.

Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 refused input,
5 conflict or insufficient capacity, 6 explorer unavailable,
7 node reported an error, 8 timed out waiting for a result.`,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			a.out, a.errOut = cmd.OutOrStdout(), cmd.ErrOrStderr()
			switch a.output {
			case "table", "json", "yaml":
				return nil
			}
			return fmt.Errorf("output %q is not table, json or yaml: %w", a.output, errUsage)
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return fmt.Errorf("%w: %w", err, errUsage) })
	pf := root.PersistentFlags()
	pf.StringVar(&a.explorerURL, "explorer", defaultExplorer(), "explorer URL (env ZOS_EXPLORER)")
	pf.StringVar(&a.identityPath, "identity", defaultIdentity(), "identity file (env ZOS_IDENTITY)")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table, json or yaml")
	pf.DurationVar(&a.timeout, "timeout", 30*time.Second, "timeout of each explorer request")
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	root.AddCommand(identityCmd(a), farmCmd(a), nodeCmd(a), deployCmd(a), getCmd(a), deleteCmd(a), signCmd(a), flistcli.NewCommand())
	return root
}
