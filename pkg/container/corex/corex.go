// Package corex is the init of interactive containers (the original's
// coreX idea): run as PID 1, it reaps orphaned processes, optionally starts
// the container's entrypoint, and gives a shell on a fresh pseudo-terminal
// to every TCP connection on its listener. The listener lives in the
// container's network namespace, so only the container's private network
// reaches it; like the original there is no authentication.
//
// The protocol is a raw byte stream: what the client sends is typed into
// the terminal, what the terminal prints is sent back. Use for instance
// `socat -,raw,echo=0 tcp:<container ip>:7681`.
package corex

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"

	"github.com/creack/pty"
)

// Shell is the command started for each connection.
var Shell = []string{"/bin/sh", "-i"}

// Serve accepts connections on ln until ctx ends, giving each a shell
// (argv) on its own terminal. When a connection closes, the shell's process
// group gets SIGHUP. Serve returns nil when ctx ends.
func Serve(ctx context.Context, ln net.Listener, argv []string, env []string, log *slog.Logger) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		wg.Go(func() {
			defer conn.Close()
			if err := session(ctx, conn, argv, env); err != nil {
				log.Warn("shell session failed", "remote", conn.RemoteAddr().String(), "err", err)
			}
		})
	}
}

// session runs one shell on a new terminal bridged to conn.
func session(ctx context.Context, conn net.Conn, argv []string, env []string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = "/"
	tty, err := pty.StartWithAttrs(cmd, &pty.Winsize{Rows: 40, Cols: 120}, &syscall.SysProcAttr{Setsid: true, Setctty: true})
	if err != nil {
		_, _ = io.WriteString(conn, "corex: cannot start "+argv[0]+": "+err.Error()+"\r\n")
		return err
	}
	defer tty.Close()
	pid := cmd.Process.Pid
	hangup := func() { _ = syscall.Kill(-pid, syscall.SIGHUP) } // the shell leads its session and group
	stop := context.AfterFunc(ctx, func() { hangup(); conn.Close() })
	defer stop()
	go func() {
		_, _ = io.Copy(tty, conn) // client → terminal
		hangup()                  // the client left
	}()
	_, _ = io.Copy(conn, tty) // terminal → client; ends when the shell exits (EIO)
	hangup()
	conn.Close()
	if os.Getpid() != 1 {
		_ = cmd.Wait()
	} else {
		_ = cmd.Process.Release() // PID 1's reaper collects it
	}
	return nil
}

// Reap collects every child that exits until ctx ends, as PID 1 must; it
// calls exited (when not nil) with each pid and status. Processes started
// with os/exec must not be waited for by their starter meanwhile.
func Reap(ctx context.Context, exited func(pid int, status syscall.WaitStatus)) {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGCHLD)
	defer signal.Stop(sigs)
	for {
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if err != nil || pid <= 0 {
				break
			}
			if exited != nil {
				exited(pid, ws)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-sigs:
		}
	}
}
