package wgdev

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os/signal"
	"syscall"
)

type prefixes []netip.Prefix

func (p *prefixes) String() string { return fmt.Sprint(*p) }
func (p *prefixes) Set(s string) error {
	v, err := netip.ParsePrefix(s)
	if err != nil {
		return err
	}
	*p = append(*p, v)
	return nil
}

// Main is the whole zos-wg program: it parses args (without the program
// name), enters the namespace and serves the device until SIGTERM or SIGINT.
// It returns the exit code. Tests run it from their own binary.
func Main(args []string, stderr io.Writer) int {
	var o Options
	var nsPath, sockNS string
	var addrs, routes prefixes
	fs := flag.NewFlagSet("zos-wg", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Name, "name", "", "TUN interface name")
	fs.StringVar(&nsPath, "netns", "", "file of the namespace of the interface")
	fs.StringVar(&sockNS, "socket-netns", "", "file of the namespace of the UDP socket (default: current)")
	fs.StringVar(&o.UAPIName, "uapi", "", "name of the UAPI socket (default: --name)")
	fs.StringVar(&o.ConfigFile, "config", "", "UAPI configuration applied at start")
	fs.Var(&addrs, "address", "address of the interface (repeatable)")
	fs.Var(&routes, "route", "route through the interface (repeatable)")
	fs.IntVar(&o.MTU, "mtu", 1420, "MTU")
	fs.BoolVar(&o.Verbose, "verbose", false, "log wireguard-go's debug messages (handshakes, timers)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	level := slog.LevelInfo
	if o.Verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if o.Name == "" || nsPath == "" {
		fmt.Fprintln(stderr, "zos-wg: --name and --netns are required")
		return 2
	}
	if o.UAPIName == "" {
		o.UAPIName = o.Name
	}
	sock, err := EnterNetNS(nsPath, sockNS)
	if err != nil {
		log.Error("enter netns", "err", err)
		return 1
	}
	o.SocketNetNS, o.Addresses, o.Routes = sock, addrs, routes
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := Run(ctx, o, log); err != nil {
		log.Error("wireguard device", "iface", o.Name, "err", err)
		return 1
	}
	return 0
}
