package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nkeys"
	"github.com/spf13/cobra"

	"github.com/zos-go/zos/internal/explorer"
)

// natsConfigCmd creates the explorer's NATS keys (when absent) and prints
// the server configuration an external cluster needs.
func natsConfigCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "nats-config",
		Short: "create the explorer's NATS keys and print the nats-server settings for an external cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			user, err := loadOrCreate(filepath.Join(dir, "explorer-user.nk"), nkeys.CreateUser)
			if err != nil {
				return err
			}
			issuer, err := loadOrCreate(filepath.Join(dir, "explorer-issuer.nk"), nkeys.CreateAccount)
			if err != nil {
				return err
			}
			up, _ := user.PublicKey()
			ip, _ := issuer.PublicKey()
			fmt.Fprint(cmd.OutOrStdout(), explorer.ServerConfig(up, ip))
			fmt.Fprintf(cmd.ErrOrStderr(), "run: explorer --nats nats://host:4222 --replicas 3 --nats-user-seed %s --nats-issuer-seed %s\n",
				filepath.Join(dir, "explorer-user.nk"), filepath.Join(dir, "explorer-issuer.nk"))
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", ".", "directory of the seed files")
	return cmd
}

func loadOrCreate(path string, create func() (nkeys.KeyPair, error)) (nkeys.KeyPair, error) {
	if b, err := os.ReadFile(path); err == nil {
		return nkeys.FromSeed([]byte(strings.TrimSpace(string(b))))
	}
	kp, err := create()
	if err != nil {
		return nil, err
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, append(seed, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("seed file: %w", err)
	}
	return kp, nil
}
