package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/zos-go/zos/pkg/zinit"
)

// runClient runs one client subcommand and returns the exit code. Bodies are
// printed as zinit sent them.
func runClient(socket string, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: zinit [-s SOCKET] init|list|status|start|stop|forget|monitor|kill|log|shutdown|reboot [args]")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	cl, err := zinit.New(socket, zinit.WithTimeout(10*time.Minute))
	if err != nil {
		fmt.Fprintln(os.Stderr, "zinit:", err)
		return 1
	}
	defer cl.Close()
	if args[0] == "log" {
		filter := ""
		if len(args) > 1 {
			filter = args[1]
		}
		err = cl.Logs(ctx, filter, func(l zinit.LogLine) error {
			_, err := fmt.Println(l.Raw)
			return err
		})
	} else {
		var lines []string
		lines, err = cl.Do(ctx, args[0], args[1:]...)
		for _, l := range lines {
			fmt.Println(l)
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "zinit:", err)
		return 1
	}
	return 0
}
