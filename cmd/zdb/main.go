// Command zdb is our 0-db server: a key-value store speaking the redis
// protocol, with the original 0-db's flags, commands and on-disk layout (v2).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/zos-go/zos/internal/zdb/engine"
	"github.com/zos-go/zos/internal/zdb/server"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "zdb:", err)
		os.Exit(1)
	}
}

func run() error {
	ecfg, scfg := engine.DefaultConfig(), server.DefaultConfig()
	fs := flag.NewFlagSet("zdb", flag.ContinueOnError)
	fs.StringVar(&ecfg.DataDir, "data", ecfg.DataDir, "data files directory")
	fs.StringVar(&ecfg.IndexDir, "index", ecfg.IndexDir, "index files directory")
	mode := fs.String("mode", "", "index mode: user, seq (direct = seq); empty: each namespace picks (mixed)")
	fs.StringVar(&scfg.Listen, "listen", scfg.Listen, "listen address")
	fs.IntVar(&scfg.Port, "port", scfg.Port, "listen port")
	fs.StringVar(&scfg.Socket, "socket", "", "unix socket path (TCP off unless --dualnet)")
	fs.BoolVar(&scfg.DualNet, "dualnet", false, "serve TCP and the unix socket")
	fs.IntVar(&scfg.EventLoops, "eventloops", 0, "event loops serving the clients (0: one per 4 CPUs, -1: a goroutine per client)")
	fs.StringVar(&scfg.AdminPassword, "admin", "", "admin password (none: every client is admin)")
	fs.BoolVar(&scfg.Protect, "protect", false, "default namespace read-only without the admin password")
	fs.Int64Var(&ecfg.DataSize, "datasize", ecfg.DataSize, "data file size before rotation (bytes)")
	fs.Uint64Var(&ecfg.MaxSize, "maxsize", 0, "default namespace size limit (bytes, 0: none)")
	fs.BoolVar(&ecfg.Sync, "sync", false, "acknowledge writes only once on disk")
	synctime := fs.Int("synctime", int(ecfg.SyncTime/time.Second), "fsync period in seconds without --sync (0: never)")
	fs.StringVar(&scfg.Hook, "hook", "", "hook executable")
	fs.Bool("background", false, "accepted for compatibility; run under a supervisor instead")
	logfile := fs.String("logfile", "", "log to this file")
	dump := fs.Bool("dump", false, "load the data, print the namespaces and exit")
	verbose := fs.Bool("verbose", false, "debug logging")
	rotate := fs.Int("rotate", 0, "start the next index/data files of every namespace holding data this often (seconds, 0: only at --datasize)")
	fs.Bool("secure", false, "accepted for compatibility")
	version := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *version {
		fmt.Println("0-db (zos zdb) v2 layout")
		return nil
	}
	ecfg.SyncTime = time.Duration(*synctime) * time.Second
	ecfg.RotateTime = time.Duration(*rotate) * time.Second
	switch *mode {
	case "":
		ecfg.Mixed = true
	case "user":
		ecfg.Mode = engine.ModeUser
	case "seq", "direct":
		ecfg.Mode = engine.ModeSeq
	default:
		return fmt.Errorf("unknown mode %q", *mode)
	}
	if scfg.Protect {
		ecfg.ProtectPassword = scfg.AdminPassword
	}

	out := os.Stderr
	if *logfile != "" {
		f, err := os.OpenFile(*logfile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}))
	if err := scfg.Validate(); err != nil {
		return err
	}

	eng := engine.New(ecfg, log)
	srv := server.New(scfg, eng, log)
	eng.OnEvent = srv.Event
	if err := eng.Open(); err != nil {
		return err
	}
	defer eng.Close()
	if *dump {
		for _, name := range eng.List() {
			ns, _ := eng.Namespace(name)
			in := ns.Info()
			fmt.Printf("%s: mode %s, %d entries, %d bytes\n", name, in.Mode, in.Entries, in.DataSizeBytes)
		}
		return nil
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return eng.Run(ctx) })
	g.Go(func() error {
		defer stop() // STOP ends the engine loop too
		return srv.Run(ctx)
	})
	g.Go(func() error {
		select {
		case <-srv.Ready():
			if err := srv.Hook(ctx, "ready"); err != nil {
				stop()
				return err
			}
		case <-ctx.Done():
		}
		return nil
	})
	err := g.Wait()
	srv.Hook(context.Background(), "close") //nolint:errcheck // best effort at exit
	return err
}
