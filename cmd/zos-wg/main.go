// Command zos-wg serves one userspace WireGuard device of a zos network
// resource (see package wgdev). zosd starts it under its supervisor as
// wg@<netid> when the kernel has no WireGuard:
//
//	zos-wg --name w-<netid> --netns /run/netns/n-<netid> --socket-netns <path> \
//	       --uapi w-<netid> --config <file> --address 100.64.3.1/16 --route 10.3.0.0/16
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/zos-go/zos/pkg/network/wgdev"
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

func main() {
	var o wgdev.Options
	var nsPath, sockNS string
	var addrs, routes prefixes
	flag.StringVar(&o.Name, "name", "", "TUN interface name")
	flag.StringVar(&nsPath, "netns", "", "file of the namespace of the interface")
	flag.StringVar(&sockNS, "socket-netns", "", "file of the namespace of the UDP socket (default: current)")
	flag.StringVar(&o.UAPIName, "uapi", "", "name of the UAPI socket (default: --name)")
	flag.StringVar(&o.ConfigFile, "config", "", "UAPI configuration applied at start")
	flag.Var(&addrs, "address", "address of the interface (repeatable)")
	flag.Var(&routes, "route", "route through the interface (repeatable)")
	flag.IntVar(&o.MTU, "mtu", 1420, "MTU")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if o.Name == "" || nsPath == "" {
		fmt.Fprintln(os.Stderr, "zos-wg: --name and --netns are required")
		os.Exit(2)
	}
	if o.UAPIName == "" {
		o.UAPIName = o.Name
	}
	sock, err := wgdev.EnterNetNS(nsPath, sockNS)
	if err != nil {
		log.Error("enter netns", "err", err)
		os.Exit(1)
	}
	o.SocketNetNS, o.Addresses, o.Routes = sock, addrs, routes
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := wgdev.Run(ctx, o, log); err != nil {
		log.Error("wireguard device", "iface", o.Name, "err", err)
		os.Exit(1)
	}
}
