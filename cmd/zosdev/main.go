// Command zosdev runs the development grid of make run: an explorer and N
// zos nodes on this machine, each node in its own network namespace. See
// internal/devgrid.
//
//	zosdev up [--nodes N]   start the grid and keep it running until Ctrl-C
//	zosdev down             stop a grid left running (after a crash) and clean up
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/zos-go/zos/internal/devgrid"
)

func main() {
	cfg := devgrid.DefaultConfig()
	fs := flag.NewFlagSet("zosdev", flag.ExitOnError)
	fs.StringVar(&cfg.Root, "root", cfg.Root, "state directory of the grid")
	fs.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "number of nodes")
	fs.StringVar(&cfg.APIAddr, "api", cfg.APIAddr, "where the explorer API is served on this machine")
	exe, _ := os.Executable()
	fs.StringVar(&cfg.Bin, "bin", filepath.Dir(exe), "directory of the zos binaries")
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: zosdev up|down [flags]")
		os.Exit(2)
	}
	cmd := os.Args[1]
	_ = fs.Parse(os.Args[2:])
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	switch cmd {
	case "up":
		g, err := devgrid.Up(ctx, cfg, log)
		if err != nil {
			log.Error("grid did not start", "err", err)
			os.Exit(1)
		}
		printNext(ctx, g)
		<-ctx.Done()
		fmt.Println("stopping the grid (workloads, nodes, explorer); state stays in", cfg.Root)
		if err := g.Down(context.Background()); err != nil {
			log.Error("stop", "err", err)
			os.Exit(1)
		}
	case "down":
		if err := devgrid.Cleanup(context.Background(), cfg); err != nil {
			log.Error("cleanup", "err", err)
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: zosdev up|down [flags]")
		os.Exit(2)
	}
}

func printNext(ctx context.Context, g *devgrid.Grid) {
	fmt.Printf("\nzos development grid is up: explorer %s (NATS %s as seen by nodes)\n", g.ExplorerURL(), g.NATSURL())
	for _, n := range g.Nodes() {
		id, _ := n.NodeID(ctx)
		fmt.Printf("  node %d  %s  namespace %s  address %s\n", n.Index, id, n.NS, n.Address)
	}
	fmt.Printf(`
Next, in another terminal (the README walks through each step):
  export ZOS_EXPLORER=%s PATH=%s:$PATH
  zos identity new --name alice
  zos node list
  zos deploy -f examples/network.yaml --watch

Ctrl-C stops the grid; its state stays under %s for the next make run.
`, g.ExplorerURL(), filepath.Dir(os.Args[0]), g.Root())
}
