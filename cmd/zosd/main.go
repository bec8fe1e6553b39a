// Command zosd is the zos node agent. It runs under zinit, brings up the
// node's capabilities, takes reservations from the grid and keeps its
// workloads running. See internal/zosd.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/zos-go/zos/internal/zosd"
)

func main() {
	configPath := flag.String("config", "/etc/zos/zosd.toml", "configuration file (TOML)")
	debug := flag.Bool("debug", false, "log debug messages")
	version := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *version {
		fmt.Println(zosd.Version)
		return
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	cfg := zosd.DefaultConfig()
	if _, err := os.Stat(*configPath); err == nil {
		if cfg, err = zosd.LoadConfig(*configPath); err != nil {
			log.Error("configuration", "err", err)
			os.Exit(2)
		}
	} else if *configPath != "/etc/zos/zosd.toml" {
		log.Error("configuration", "err", err)
		os.Exit(2)
	}
	agent, err := zosd.New(cfg, log)
	if err != nil {
		log.Error("configuration", "err", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := agent.Run(ctx); err != nil {
		log.Error("zosd stopped", "err", err)
		os.Exit(1)
	}
}
