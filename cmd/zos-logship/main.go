// Command zos-logship ships the node's logs (zinit's log stream) to a redis
// channel: every line is PUBLISHed as it comes. Debug workloads run it as a
// zinit service (the original ran zlf):
//
//	zos-logship --host 10.1.0.2 --port 6379 --channel <node id>-logs
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/zos-go/zos/pkg/provision/primitives/logship"
	"github.com/zos-go/zos/pkg/zinit"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "zos-logship:", err)
		os.Exit(1)
	}
}

// list is a flag that may be repeated and takes comma separated values.
type list []string

func (l *list) String() string { return strings.Join(*l, ",") }

func (l *list) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func run() error {
	cfg := logship.DefaultConfig()
	fs := flag.NewFlagSet("zos-logship", flag.ContinueOnError)
	host := fs.String("host", "", "redis host")
	port := fs.Uint("port", 6379, "redis port")
	password := fs.String("password", "", "redis password (AUTH)")
	fs.StringVar(&cfg.Channel, "channel", "", "redis channel")
	var exclude list
	fs.Var(&exclude, "exclude", "services whose lines are not shipped (repeat or comma separate)")
	socket := fs.String("zinit-socket", zinit.DefaultSocket, "zinit control socket")
	logSocket := fs.String("zinit-log-socket", "", "zinit log socket (default: log.sock beside the control socket)")
	fs.IntVar(&cfg.Buffer, "buffer", cfg.Buffer, "lines kept while redis is slow or down")
	verbose := fs.Bool("verbose", false, "debug logging")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *host == "" || *port == 0 || *port > 65535 {
		return errors.New("--host and --port are required")
	}
	cfg.Exclude = exclude

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	opts := []zinit.Option{}
	if *logSocket != "" {
		opts = append(opts, zinit.WithLogSocket(*logSocket))
	}
	zcl, err := zinit.New(*socket, opts...)
	if err != nil {
		return err
	}
	defer zcl.Close()
	rdb := redis.NewClient(&redis.Options{
		Addr:            net.JoinHostPort(*host, strconv.FormatUint(uint64(*port), 10)),
		Password:        *password,
		Protocol:        2,
		DisableIdentity: true,
	})
	defer rdb.Close()

	sh, err := logship.New(cfg, zcl, logship.RedisPublisher{Client: rdb}, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log.Info("shipping logs", "redis", rdb.Options().Addr, "channel", cfg.Channel)
	err = sh.Run(ctx)
	shipped, dropped := sh.Stats()
	log.Info("stopped", "shipped", shipped, "dropped", dropped)
	return err
}
