package flistfs

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// Main is the command line of cmd/flistfs, in the flag style of 0-fs's
// g8ufs:
//
//	flistfs [-ro | -backend DIR] -cache DIR -meta FLIST [-storage-url URL]
//	        [-pid FILE] [-log FILE] [-fetch-timeout D] [-debug] MOUNTPOINT
//
// It returns the process exit code.
func Main(args []string) int {
	cfg := DefaultConfig()
	fl := flag.NewFlagSet("flistfs", flag.ContinueOnError)
	ro := fl.Bool("ro", false, "read-only mount: no writable layer (default unless -backend)")
	fl.StringVar(&cfg.Backend, "backend", "", "writable layer directory (ro/, rw/, wd/ inside)")
	fl.StringVar(&cfg.Cache, "cache", "", "shared block cache directory")
	fl.StringVar(&cfg.Meta, "meta", "", "flist file: rfs .fl or 0-flist archive")
	fl.StringVar(&cfg.UnpackDir, "unpack", "", "where to unpack a 0-flist archive (default META.d)")
	fl.StringVar(&cfg.StorageURL, "storage-url", "", "block store when the flist names none")
	fl.StringVar(&cfg.PidFile, "pid", "", "pid file written once mounted")
	logFile := fl.String("log", "", "log file (appended; stderr always)")
	fl.DurationVar(&cfg.FetchTimeout, "fetch-timeout", cfg.FetchTimeout, "timeout of one block fetch")
	fl.DurationVar(&cfg.TTL, "ttl", cfg.TTL, "kernel cache time of entries and attributes")
	fl.BoolVar(&cfg.NoPassthrough, "no-passthrough", false, "serve every read through the server, even of fully cached files")
	fl.BoolVar(&cfg.Debug, "debug", false, "log every FUSE request")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if fl.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "flistfs: exactly one mount point expected")
		fl.Usage()
		return 2
	}
	cfg.Target = fl.Arg(0)
	if *ro && cfg.Backend != "" {
		fmt.Fprintln(os.Stderr, "flistfs: -ro and -backend exclude each other")
		return 2
	}
	var out io.Writer = os.Stderr
	if *logFile != "" {
		f, err := os.OpenFile(*logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "flistfs:", err)
			return 1
		}
		defer f.Close()
		out = io.MultiWriter(f, os.Stderr)
	}
	level := slog.LevelInfo
	if cfg.Debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := Run(ctx, cfg, log); err != nil {
		log.Error("flistfs failed", "target", cfg.Target, "err", err)
		return 1
	}
	return 0
}
