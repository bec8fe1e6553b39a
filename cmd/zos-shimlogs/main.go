// Command zos-shimlogs is the log driver of zos containers: containerd's
// runc shim starts it for each task (log URI binary:///…/zos-shimlogs?root=…)
// with the task's stdout on fd 3, stderr on fd 4 and a ready pipe on fd 5,
// and the container in CONTAINER_NAMESPACE and CONTAINER_ID. It copies the
// output to the container's log ring and redis channels (logger.RunShim)
// until the task's streams end. Its own messages go to
// <root>/logs/<ns>/<id>-sys.log.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/zos-go/zos/pkg/container/logger"
)

func main() {
	os.Exit(run())
}

func run() int {
	cfg, err := logger.ParseShimArgs(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "zos-shimlogs:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	sysPath := logger.SysLogPath(cfg.Root, cfg.Namespace, cfg.ID)
	if err := os.MkdirAll(filepath.Dir(sysPath), 0o755); err == nil {
		if f, err := os.OpenFile(sysPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
			defer f.Close()
			log = slog.New(slog.NewTextHandler(f, nil))
		}
	}
	log = log.With("namespace", cfg.Namespace, "container", cfg.ID)

	// The shim sends SIGTERM when the task is deleted: the streams are
	// closed by then, so finish copying what is buffered, but never hang.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		time.Sleep(8 * time.Second)
		log.Warn("streams still open after SIGTERM, exiting")
		os.Exit(1)
	}()

	stdout := os.NewFile(3, "stdout")
	stderr := os.NewFile(4, "stderr")
	ready := os.NewFile(5, "ready")
	if err := logger.RunShim(context.Background(), cfg, stdout, stderr, ready, log); err != nil {
		log.Error("shim logger failed", "err", err)
		return 1
	}
	return 0
}
