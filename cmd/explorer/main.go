// Command explorer runs the grid registry: the HTTP+JSON API for users and
// dashboards and the NATS API nodes use, with every record in NATS
// JetStream. By default it embeds a NATS server (one machine); --nats
// points it at an external cluster instead. `explorer nats-config` prints
// the settings such a cluster needs.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/nats-io/nkeys"
	"github.com/spf13/cobra"

	"github.com/zos-go/zos/internal/explorer"
)

func main() {
	if err := rootCmd().Execute(); err != nil {
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	cfg := explorer.DefaultConfig()
	var userSeedFile, issuerSeedFile, logLevel string
	cmd := &cobra.Command{
		Use:           "explorer",
		Short:         "zos grid registry (explorer) on NATS JetStream",
		SilenceUsage:  true,
		SilenceErrors: false,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("log level %q: %w", logLevel, err)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
			var err error
			if cfg.NATS.UserSeed, err = readSeed(userSeedFile); err != nil {
				return err
			}
			if cfg.NATS.IssuerSeed, err = readSeed(issuerSeedFile); err != nil {
				return err
			}
			// TODO(hub): mount pkg/hub's handler here once it exists.
			x, err := explorer.New(cfg, nil, log)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return x.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "HTTP API address")
	f.StringVar(&cfg.NATS.DataDir, "data-dir", cfg.NATS.DataDir, "JetStream directory of the embedded NATS server")
	f.StringVar(&cfg.NATS.Listen, "nats-listen", cfg.NATS.Listen, "client address of the embedded NATS server (nodes connect here)")
	f.StringSliceVar(&cfg.NATS.URLs, "nats", nil, "URLs of an external NATS cluster (no embedded server)")
	f.StringVar(&userSeedFile, "nats-user-seed", "", "file with the explorer's NATS nkey user seed (external cluster)")
	f.StringVar(&issuerSeedFile, "nats-issuer-seed", "", "file with the auth callout issuer account seed (external cluster)")
	f.IntVar(&cfg.NATS.Replicas, "replicas", cfg.NATS.Replicas, "JetStream replicas of every stream and bucket (3 on a cluster)")
	f.BoolVar(&cfg.NATS.SyncAlways, "sync-always", false, "fsync every JetStream write (embedded server)")
	f.DurationVar(&cfg.AckWait, "ack-wait", cfg.AckWait, "time a node has to acknowledge a delivery")
	f.IntVar(&cfg.MaxAckPending, "max-ack-pending", cfg.MaxAckPending, "unacknowledged deliveries per node (1: strictly ordered)")
	f.BoolVar(&cfg.ReconcileOnStart, "reconcile", cfg.ReconcileOnStart, "redeliver pending reservations and recompute capacity at start")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.AddCommand(natsConfigCmd())
	return cmd
}

func readSeed(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("seed: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

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
