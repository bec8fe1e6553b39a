// Package wgdev serves one userspace WireGuard device (wireguard-go) for a
// network resource whose kernel has no WireGuard: the TUN device lives in the
// network resource's namespace, the UDP socket in another one (the node's
// host or public namespace), and the device is controlled through its UAPI
// socket under /var/run/wireguard, as wgctrl and wg expect. The process is
// meant to run under a supervisor (wg@<netid>), so traffic keeps flowing while
// the agent restarts. cmd/zos-wg is its main.
package wgdev

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ipc"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/zos-go/zos/internal/netns"
)

// Environment variables that carry state across EnterNetNS's re-exec.
const (
	envInNS   = "ZOS_WG_IN_NETNS"
	envSockFD = "ZOS_WG_SOCKET_NETNS_FD"
)

// Options describe the device.
type Options struct {
	// Name of the TUN interface (w-<netid>).
	Name string
	// SocketNetNS is the file of the namespace for the UDP socket.
	SocketNetNS string
	// UAPIName is the control socket's name (<UAPIName>.sock).
	UAPIName string
	// ConfigFile holds the device configuration in UAPI "set" format; it
	// is applied at start when it exists.
	ConfigFile string
	// Addresses and Routes are put on the interface; MTU is its MTU.
	Addresses []netip.Prefix
	Routes    []netip.Prefix
	MTU       int
	// Verbose logs wireguard-go's debug messages (handshakes, keepalives,
	// timers) at debug level.
	Verbose bool
}

// EnterNetNS makes the whole process run in the namespace at path: it opens
// the socket namespace (socketNS, "" for the current one) as an inherited
// descriptor, switches the thread and re-executes the program, so every
// thread of the new image starts in the namespace. After the re-exec it
// returns the path of the socket namespace descriptor. Call it first in main.
func EnterNetNS(path, socketNS string) (string, error) {
	if os.Getenv(envInNS) == "1" {
		fd := os.Getenv(envSockFD)
		if _, err := strconv.Atoi(fd); err != nil {
			return "", fmt.Errorf("bad %s %q", envSockFD, fd)
		}
		return "/proc/self/fd/" + fd, nil
	}
	if socketNS == "" {
		socketNS = "/proc/self/ns/net"
	}
	sfd, err := unix.Open(socketNS, unix.O_RDONLY, 0) // inherited by the re-exec
	if err != nil {
		return "", fmt.Errorf("socket netns %s: %w", socketNS, err)
	}
	target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("netns %s: %w", path, err)
	}
	runtime.LockOSThread()
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		return "", fmt.Errorf("enter netns %s: %w", path, err)
	}
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	env := append(os.Environ(), envInNS+"=1", envSockFD+"="+strconv.Itoa(sfd))
	return "", syscall.Exec(exe, os.Args, env)
}

// nsBind opens the device's UDP sockets in another namespace.
type nsBind struct {
	conn.Bind
	ns string
}

func (b *nsBind) Open(port uint16) (fns []conn.ReceiveFunc, actual uint16, err error) {
	err = netns.Do(b.ns, func() error {
		var e error
		fns, actual, e = b.Bind.Open(port)
		return e
	})
	return fns, actual, err
}

// Run serves the device until ctx ends or the device fails. The process must
// already run in the device's namespace (EnterNetNS).
func Run(ctx context.Context, o Options, log *slog.Logger) error {
	if o.MTU == 0 {
		o.MTU = device.DefaultMTU
	}
	tdev, err := tun.CreateTUN(o.Name, o.MTU)
	if err != nil {
		return fmt.Errorf("tun %s: %w", o.Name, err)
	}
	wlog := &device.Logger{
		Verbosef: func(string, ...any) {},
		Errorf:   func(f string, a ...any) { log.Error("wireguard", "msg", fmt.Sprintf(f, a...)) },
	}
	if o.Verbose {
		wlog.Verbosef = func(f string, a ...any) { log.Debug("wireguard", "msg", fmt.Sprintf(f, a...)) }
	}
	dev := device.NewDevice(tdev, &nsBind{Bind: conn.NewDefaultBind(), ns: o.SocketNetNS}, wlog)
	defer dev.Close()
	if b, err := os.ReadFile(o.ConfigFile); err == nil {
		if err := dev.IpcSet(string(b)); err != nil {
			return fmt.Errorf("config %s: %w", o.ConfigFile, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("config: %w", err)
	}
	if err := setupLink(o); err != nil {
		return err
	}
	if err := dev.Up(); err != nil {
		return fmt.Errorf("device up: %w", err)
	}
	uapiFile, err := ipc.UAPIOpen(o.UAPIName)
	if err != nil {
		return fmt.Errorf("uapi %s: %w", o.UAPIName, err)
	}
	uapi, err := ipc.UAPIListen(o.UAPIName, uapiFile)
	if err != nil {
		return fmt.Errorf("uapi %s: %w", o.UAPIName, err)
	}
	sock := filepath.Join("/var/run/wireguard", o.UAPIName+".sock")
	defer os.Remove(sock)
	defer uapi.Close()
	errc := make(chan error, 1)
	go func() {
		for {
			c, err := uapi.Accept()
			if err != nil {
				errc <- err
				return
			}
			go dev.IpcHandle(c)
		}
	}()
	log.Info("wireguard device up", "iface", o.Name, "uapi", sock)
	select {
	case <-ctx.Done():
		return nil
	case <-dev.Wait():
		return errors.New("device closed")
	case err := <-errc:
		return fmt.Errorf("uapi: %w", err)
	}
}

// setupLink puts addresses and routes on the TUN interface and brings it up.
func setupLink(o Options) error {
	l, err := netlink.LinkByName(o.Name)
	if err != nil {
		return fmt.Errorf("link %s: %w", o.Name, err)
	}
	for _, a := range o.Addresses {
		ad := &netlink.Addr{IPNet: &net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())}}
		if err := netlink.AddrReplace(l, ad); err != nil {
			return fmt.Errorf("address %s: %w", a, err)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("link %s up: %w", o.Name, err)
	}
	for _, r := range o.Routes {
		rt := &netlink.Route{LinkIndex: l.Attrs().Index, Scope: netlink.SCOPE_LINK,
			Dst: &net.IPNet{IP: r.Addr().AsSlice(), Mask: net.CIDRMask(r.Bits(), r.Addr().BitLen())}}
		if err := netlink.RouteReplace(rt); err != nil {
			return fmt.Errorf("route %s: %w", r, err)
		}
	}
	return nil
}
