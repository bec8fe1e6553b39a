// Command zinit is the node's process supervisor (PID 1 on a node, a plain
// daemon in development) and its command line client.
//
//	zinit init [-c DIR] [-b LINES] [-d] ...     run the supervisor
//	zinit [-s SOCKET] list|status|start|stop|forget|monitor <svc>
//	zinit [-s SOCKET] kill <svc> <SIGNAL>
//	zinit [-s SOCKET] log [svc]
//	zinit [-s SOCKET] shutdown|reboot
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/internal/zinit"
)

func main() {
	global := flag.NewFlagSet("zinit", flag.ExitOnError)
	socket := global.String("s", "/var/run/zinit.sock", "control socket")
	_ = global.Parse(os.Args[1:])
	args := global.Args()
	if len(args) > 0 && args[0] == "init" {
		if err := runInit(*socket, args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "zinit:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(runClient(*socket, args))
}

func runInit(socket string, args []string) error {
	cfg := zinit.DefaultConfig()
	fs := flag.NewFlagSet("init", flag.ExitOnError)
	fs.StringVar(&cfg.ConfigDir, "c", cfg.ConfigDir, "service files directory")
	fs.IntVar(&cfg.LogLines, "b", cfg.LogLines, "log ring size in lines")
	debug := fs.Bool("d", false, "debug messages")
	fs.StringVar(&socket, "s", socket, "control socket")
	logSocket := fs.String("log-socket", "", "log socket (default log.sock beside the control socket)")
	jsonSocket := fs.String("json-socket", "", "serve the JSON protocol (zinit v0.2) on this socket too")
	fs.StringVar(&cfg.StateDir, "state", cfg.StateDir, "runtime state directory")
	fs.DurationVar(&cfg.StopTimeout, "stop-timeout", cfg.StopTimeout, "stop signal to SIGKILL delay")
	fs.DurationVar(&cfg.RestartDelay, "restart-delay", cfg.RestartDelay, "first restart delay")
	fs.DurationVar(&cfg.MaxRestartDelay, "max-restart-delay", cfg.MaxRestartDelay, "restart delay cap")
	fs.DurationVar(&cfg.StableAfter, "stable-after", cfg.StableAfter, "a run this long resets the restart delay")
	_ = fs.Parse(args)
	if *logSocket == "" {
		*logSocket = filepath.Join(filepath.Dir(socket), "log.sock")
	}
	pid1 := os.Getpid() == 1
	if !pid1 {
		// Orphans of services are reparented to us and reaped.
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("child subreaper: %w", err)
		}
	}
	cfg.ReapOrphans = true
	cfg.Env = append(os.Environ(), readEnvironment("/etc/environment")...)
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	ring := zinit.NewRing(cfg.LogLines)
	log := slog.New(zinit.NewLogHandler(ring, os.Stdout, level))
	m, err := zinit.New(cfg, ring, log, os.Stdout)
	if err != nil {
		return err
	}
	srv := zinit.NewServer(m, log)
	srv.AllowReboot = pid1
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if pid1 {
		stop() // PID 1 ends only by shutdown or reboot
		ctx = context.Background()
	}
	g, gctx := errgroup.WithContext(ctx)
	serve := func(path string, f func(context.Context, net.Listener) error) error {
		l, err := zinit.Listen(path)
		if err != nil {
			return err
		}
		g.Go(func() error { return f(gctx, l) })
		return nil
	}
	for path, f := range map[string]func(context.Context, net.Listener) error{
		socket: srv.ServeLine, *logSocket: srv.ServeLog, *jsonSocket: srv.ServeJSON,
	} {
		if path == "" {
			continue
		}
		if err := serve(path, f); err != nil {
			return err
		}
	}
	g.Go(func() error { return m.Run(gctx) }) // ErrShutdown/ErrReboot end the servers too
	err = g.Wait()
	log.Info("zinit exiting", "reason", fmt.Sprint(err))
	switch {
	case pid1 && errors.Is(err, zinit.ErrReboot):
		unix.Sync()
		return unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	case pid1 && errors.Is(err, zinit.ErrShutdown):
		unix.Sync()
		return unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	case errors.Is(err, zinit.ErrShutdown), err == nil:
		return nil
	}
	return err
}

// readEnvironment reads KEY=VALUE lines (quotes stripped, # comments).
func readEnvironment(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var env []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") || k == "" {
			continue
		}
		env = append(env, k+"="+strings.Trim(v, `"'`))
	}
	return env
}
