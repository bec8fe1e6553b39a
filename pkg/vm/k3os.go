package vm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zos-go/zos/pkg"
)

// Files of the k3os flist (spec §3).
const (
	K3OSKernelFile = "k3os-vmlinux"
	K3OSInitrdFile = "k3os-initrd-amd64"
	K3OSISOFile    = "k3os-amd64.iso"
)

// FlistImage is a VM boot image inside a mounted flist.
type FlistImage struct {
	// Kernel, Initrd and ISO are absolute paths below the mountpoint
	// (Initrd and ISO empty when the flist has none).
	Kernel, Initrd, ISO string
}

// K3OSImage finds the k3os files in the flist mounted at mountpoint. The
// mountpoint must be one of Config.ImageDirs (or below one) for the ISO to
// be attachable read-only.
func K3OSImage(mountpoint string) (FlistImage, error) {
	img := FlistImage{
		Kernel: filepath.Join(mountpoint, K3OSKernelFile),
		Initrd: filepath.Join(mountpoint, K3OSInitrdFile),
		ISO:    filepath.Join(mountpoint, K3OSISOFile),
	}
	for _, p := range []string{img.Kernel, img.Initrd, img.ISO} {
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			return FlistImage{}, fmt.Errorf("k3os flist %s: %s: %w", mountpoint, filepath.Base(p), ErrKernelNotFound)
		}
	}
	return img, nil
}

// K3OSConfig is what the kubernetes workload hands to its guest.
type K3OSConfig struct {
	// Token is the cluster secret (already decrypted).
	Token string
	// MasterIPs are the servers to join; empty makes this VM a master.
	MasterIPs []net.IP
	// SSHKeys are authorized keys (full keys or "github:<user>").
	SSHKeys []string
	// DatastoreEndpoint is an external datastore for the masters.
	DatastoreEndpoint string
	// DisableDefaultIngress turns traefik off.
	DisableDefaultIngress bool
}

// ErrBadK3OSArg: a value that would break the kernel command line (a
// double quote or a line break).
var ErrBadK3OSArg = fmt.Errorf("value not allowed on the kernel command line: %w", ErrInvalidVM)

func checkArg(what, v string) error {
	if strings.ContainsAny(v, "\"\n\r\x00") {
		return fmt.Errorf("k3os %s: %w", what, ErrBadK3OSArg)
	}
	return nil
}

// K3OSInstallArgs returns the kernel command line of the installer run
// (spec §3): install k3os onto /dev/vda with the cluster token, the master
// URLs and the SSH keys.
func K3OSInstallArgs(c K3OSConfig) (string, error) {
	if c.Token == "" {
		return "", fmt.Errorf("k3os token: %w", ErrInvalidVM)
	}
	if err := checkArg("token", c.Token); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(`console=ttyS0 reboot=k panic=1 k3os.mode=install k3os.install.silent k3os.debug k3os.install.device=/dev/vda`)
	b.WriteString(" k3os.token=" + c.Token)
	b.WriteString(` k3os.k3s_args="--flannel-iface=eth0"`)
	for _, ip := range c.MasterIPs {
		if ip == nil {
			continue
		}
		host := ip.String()
		if ip.To4() == nil {
			host = "[" + host + "]"
		}
		b.WriteString(" k3os.server_url=https://" + host + ":6443")
	}
	for _, k := range c.SSHKeys {
		if err := checkArg("ssh key", k); err != nil {
			return "", err
		}
		b.WriteString(` ssh_authorized_keys="` + k + `"`)
	}
	if c.DatastoreEndpoint != "" {
		if err := checkArg("datastore endpoint", c.DatastoreEndpoint); err != nil {
			return "", err
		}
		b.WriteString(` k3os.k3s_args="--datastore-endpoint=` + c.DatastoreEndpoint + `"`)
	}
	if c.DisableDefaultIngress {
		b.WriteString(` k3os.k3s_args="--disable=traefik"`)
	}
	return b.String(), nil
}

// K3OSRunArgs is the kernel command line of the installed VM's normal run.
const K3OSRunArgs = "console=ttyS0 reboot=k panic=1"

// K3OSInstallVM returns the installer VM: NoKeepAlive, the vdisk (rw) then
// the ISO (ro), the k3os kernel and initrd. The caller runs it, waits with
// WaitStopped, reads Logs on failure, and deletes it.
func K3OSInstallVM(name string, cpu uint8, memoryMiB int64, img FlistImage, vdisk string, net pkg.VMNetworkInfo, c K3OSConfig) (pkg.VM, error) {
	args, err := K3OSInstallArgs(c)
	if err != nil {
		return pkg.VM{}, err
	}
	return pkg.VM{Name: name, CPU: cpu, Memory: memoryMiB, Network: net,
		KernelImage: img.Kernel, InitrdImage: img.Initrd, KernelArgs: args,
		Disks:       []pkg.VMDisk{{Path: vdisk}, {Path: img.ISO, ReadOnly: true}},
		NoKeepAlive: true}, nil
}

// K3OSRunVM returns the VM that runs the installed k3os (keep-alive on).
func K3OSRunVM(name string, cpu uint8, memoryMiB int64, img FlistImage, vdisk string, net pkg.VMNetworkInfo) pkg.VM {
	return pkg.VM{Name: name, CPU: cpu, Memory: memoryMiB, Network: net,
		KernelImage: img.Kernel, InitrdImage: img.Initrd, KernelArgs: K3OSRunArgs,
		Disks: []pkg.VMDisk{{Path: vdisk}}}
}

// ErrWaitTimeout: the VM did not stop in time.
var ErrWaitTimeout = errors.New("vm did not stop in time")

// WaitStopped polls vms until the NoKeepAlive VM name has ended by itself
// (what the k3os installer does), every interval, until ctx ends
// (ErrWaitTimeout). It returns the final status.
func WaitStopped(ctx context.Context, vms Manager, name string, interval time.Duration) (Status, error) {
	for {
		st, err := vms.Status(ctx, name)
		if err != nil {
			return st, err
		}
		if st.State == StateStopped {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("vm %s is %s: %w", name, st.State, ErrWaitTimeout)
		case <-time.After(interval):
		}
	}
}
