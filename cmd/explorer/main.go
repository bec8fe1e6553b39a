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

	"github.com/spf13/cobra"

	"github.com/zos-go/zos/internal/explorer"
	"github.com/zos-go/zos/pkg/flist/store"
	"github.com/zos-go/zos/pkg/hub"
)

func main() {
	if err := rootCmd().Execute(); err != nil {
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	cfg := explorer.DefaultConfig()
	var userSeedFile, issuerSeedFile, logLevel, hubDir, hubBlocks string
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
			x, err := explorer.New(cfg, log)
			if err != nil {
				return err
			}
			if err := mountHub(x, cfg, hubDir, hubBlocks, log); err != nil {
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
	f.BoolVar(&cfg.ConsumerStateOnDisk, "consumer-state-on-disk", false, "keep node consumer state in files (slower; survives a NATS restart without re-creation)")
	f.BoolVar(&cfg.ReconcileOnStart, "reconcile", cfg.ReconcileOnStart, "redeliver pending reservations and recompute capacity at start")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&hubDir, "hub-dir", "", "flist hub directory (default <data-dir>/hub; \"off\" disables the hub)")
	f.StringVar(&hubBlocks, "hub-blocks", "", "block store of the hub (default dir://<hub-dir>/blocks; zdb://host:port/ns...)")
	cmd.AddCommand(natsConfigCmd())
	return cmd
}

// mountHub serves the flist hub under /hub/ of the explorer, with the
// explorer's users as the hub's users.
func mountHub(x *explorer.Explorer, cfg explorer.Config, dir, blocks string, log *slog.Logger) error {
	if dir == "off" {
		return nil
	}
	if dir == "" {
		dir = filepath.Join(cfg.NATS.DataDir, "hub")
	}
	if blocks == "" {
		blocks = "dir://" + filepath.Join(dir, "blocks")
	}
	bs, err := store.Open(blocks, store.Options{})
	if err != nil {
		return fmt.Errorf("hub blocks: %w", err)
	}
	hc := hub.DefaultConfig()
	hc.Dir, hc.Blocks, hc.Keys = filepath.Join(dir, "flists"), bs, x.HubKeys()
	h, err := hub.New(hc, log.With("component", "hub"))
	if err != nil {
		return err
	}
	x.SetHub(h)
	return nil
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
