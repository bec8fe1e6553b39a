// Command zos-corex is the init of interactive zos containers: the
// container module binds it at /corex and runs
// `/corex --listen :7681 [-- entrypoint...]` as PID 1. It reaps orphans,
// starts the entrypoint (if any) with the container's output, and serves a
// shell on a pseudo-terminal to each TCP connection (package corex).
// SIGTERM ends every process of the container and corex.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/zos-go/zos/pkg/container/corex"
)

func main() {
	listen := flag.String("listen", ":7681", "TCP address of the shell server")
	shell := flag.String("shell", "/bin/sh", "shell started for each connection (with -i)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*listen, *shell, flag.Args(), log); err != nil {
		log.Error("corex failed", "err", err)
		os.Exit(1)
	}
}

func run(listen, shell string, entry []string, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	pid1 := os.Getpid() == 1
	env := append(os.Environ(), "TERM=xterm")
	entryPid := 0
	if pid1 {
		go corex.Reap(context.Background(), func(pid int, ws syscall.WaitStatus) {
			if pid == entryPid {
				log.Info("entrypoint exited", "pid", pid, "status", ws.ExitStatus())
			}
		})
	}
	if len(entry) > 0 {
		cmd := exec.Command(entry[0], entry[1:]...)
		cmd.Stdout, cmd.Stderr, cmd.Env = os.Stdout, os.Stderr, env
		if err := cmd.Start(); err != nil {
			log.Warn("entrypoint not started", "argv", entry, "err", err)
		} else {
			entryPid = cmd.Process.Pid
			if !pid1 {
				go func() { _ = cmd.Wait() }()
			}
		}
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", listen, err)
	}
	log.Info("corex serving shells", "listen", ln.Addr().String(), "shell", shell)
	err = corex.Serve(ctx, ln, []string{shell, "-i"}, env, log)
	if pid1 {
		// As init, take the container's other processes down with us.
		_ = syscall.Kill(-1, syscall.SIGTERM)
		time.Sleep(500 * time.Millisecond)
		_ = syscall.Kill(-1, syscall.SIGKILL)
	}
	return err
}
