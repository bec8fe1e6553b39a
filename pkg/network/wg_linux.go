package network

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/zos-go/zos/internal/atomicfile"
	"github.com/zos-go/zos/internal/netns"
	"github.com/zos-go/zos/pkg"
)

// UAPIDir is where userspace WireGuard devices put their control sockets
// (where wgctrl and wg look for them).
const UAPIDir = "/var/run/wireguard"

// linkUp makes sure the WireGuard link of s carries exactly its address,
// routes the network range and is up, in the NR namespace.
func linkUp(s wgSpec) error {
	return netns.Do(s.nrNS, func() error {
		l, err := netlink.LinkByName(wgIface(string(s.netID)))
		if err != nil {
			return fmt.Errorf("wireguard link of %s: %w", s.netID, err)
		}
		if err := ensureAddrs(l, []netipPrefix{s.addr}, true); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return fmt.Errorf("wireguard link of %s up: %w", s.netID, err)
		}
		return replaceRoute(l, s.route, netipAddr{})
	})
}

// userspaceWG runs each device as a supervised wireguard-go process
// (cmd/zos-wg) that creates the TUN device in the NR namespace and its UDP
// socket in the socket namespace.
type userspaceWG struct {
	cfg   Config
	names names
	sup   Supervisor
}

func (u *userspaceWG) Name() string { return WGUserspace }

func (u *userspaceWG) confPath(id pkg.NetID) string {
	return filepath.Join(u.cfg.StateDir, "wg", string(id)+".conf")
}

// argv is the command of the device process. It holds no secret and no
// peer, so that peer updates never restart the process.
func (u *userspaceWG) argv(s wgSpec) []string {
	id := string(s.netID)
	return append(append([]string(nil), u.cfg.WGCommand...),
		"--name", wgIface(id),
		"--netns", netns.Path(s.nrNS),
		"--socket-netns", netns.Path(s.sockNS),
		"--uapi", u.names.wgUAPIName(id),
		"--config", u.confPath(s.netID),
		"--address", s.addr.String(),
		"--route", s.route.String(),
		"--mtu", strconv.Itoa(wgMTU),
	)
}

func (u *userspaceWG) Ensure(ctx context.Context, s wgSpec) error {
	id := s.netID
	if err := os.MkdirAll(filepath.Dir(u.confPath(id)), 0o700); err != nil {
		return fmt.Errorf("wireguard %s: %w", id, err)
	}
	if err := atomicfile.WriteFile(u.confPath(id), []byte(uapiConfig(s)), 0o600); err != nil {
		return fmt.Errorf("wireguard %s: %w", id, err)
	}
	if err := u.sup.Start(ctx, u.names.wgService(string(id)), u.argv(s)); err != nil {
		return fmt.Errorf("wireguard %s: %w", id, err)
	}
	name := u.names.wgUAPIName(string(id))
	if err := waitFor(ctx, 15*time.Second, func() error { _, err := deviceOf(name); return err }); err != nil {
		return fmt.Errorf("wireguard %s: device process did not come up: %w", id, err)
	}
	if err := configure(name, s); err != nil {
		return err
	}
	return linkUp(s)
}

func (u *userspaceWG) Device(ctx context.Context, s wgSpec) (*wgtypes.Device, error) {
	return deviceOf(u.names.wgUAPIName(string(s.netID)))
}

func (u *userspaceWG) Remove(ctx context.Context, id pkg.NetID) error {
	var errs []error
	if err := u.sup.Stop(ctx, u.names.wgService(string(id))); err != nil {
		errs = append(errs, err)
	}
	for _, f := range []string{u.confPath(id), filepath.Join(UAPIDir, u.names.wgUAPIName(string(id))+".sock")} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("wireguard %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// kernelWG uses the kernel's WireGuard: the link is created from the socket
// namespace (where its UDP socket stays) straight into the NR namespace.
type kernelWG struct{}

func (kernelWG) Name() string { return WGKernel }

func (kernelWG) Ensure(ctx context.Context, s wgSpec) error {
	name := wgIface(string(s.netID))
	exists, err := linkExistsIn(s.nrNS, name)
	if err != nil {
		return err
	}
	if !exists {
		err := netns.Do(s.sockNS, func() error {
			fd, err := unix.Open(netns.Path(s.nrNS), unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			return netlink.LinkAdd(&netlink.Wireguard{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: wgMTU, Namespace: netlink.NsFd(fd)}})
		})
		if err != nil {
			return fmt.Errorf("wireguard %s: create: %w", s.netID, err)
		}
	}
	if err := netns.Do(s.nrNS, func() error { return configure(name, s) }); err != nil {
		return err
	}
	return linkUp(s)
}

func (kernelWG) Device(ctx context.Context, s wgSpec) (*wgtypes.Device, error) {
	var d *wgtypes.Device
	err := netns.Do(s.nrNS, func() error {
		var err error
		d, err = deviceOf(wgIface(string(s.netID)))
		return err
	})
	return d, err
}

func (kernelWG) Remove(ctx context.Context, id pkg.NetID) error { return nil }

// kernelHasWireGuard probes, in a throwaway namespace, whether the kernel
// can create WireGuard links.
func kernelHasWireGuard(prefix string) bool {
	// A probe namespace of an agent killed mid-probe is removed here.
	stale, _ := netns.List(prefix + "wgprobe-")
	for _, name := range stale {
		pid, err := strconv.Atoi(strings.TrimPrefix(name, prefix+"wgprobe-"))
		if err == nil && pid != os.Getpid() && syscall.Kill(pid, 0) != nil {
			_ = netns.Delete(name)
		}
	}
	ns := prefix + "wgprobe-" + strconv.Itoa(os.Getpid())
	if _, err := netns.Create(ns); err != nil {
		return false
	}
	defer netns.Delete(ns)
	return netns.Do(ns, func() error {
		return netlink.LinkAdd(&netlink.Wireguard{LinkAttrs: netlink.LinkAttrs{Name: "wgprobe"}})
	}) == nil
}
