package primitives

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/zos-go/zos/internal/revert"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/provision"
	"github.com/zos-go/zos/pkg/vm"
)

// VM provisions generic virtual machines (gridtypes.VM) on the VM module.
//
// The image flist is mounted read-only ("<name>-img"); the kernel is its
// KernelImage (default /kernel) and the optional initrd its InitrdImage,
// both confined to the flist (no "..", no symlink out of it). Each disk is
// a vdisk "<name>-<index>" of its size in MiB, allocated empty: neither
// partitioned nor formatted, that is the guest's business. The root disk,
// if any, is attached first (/dev/vda) and the kernel gets "root=/dev/vda"
// (the VM module's rule), so an installer in the initrd can put a system on
// it and later boots use it; zos never writes into a disk. vdisks live on
// SSD pools only, so a disk of type hdd is refused rather than placed on
// an SSD the node would count as HDD.
//
// Networking: the user network (network_id, ipaddress inside this node's
// subnet of it) through a tap of the VM's own on the network's bridge
// (network.VMTapName of the network and the working name), with its
// gateway, the IPv6 derived from the IPv4, and the whole network range as
// route; and,
// with public_ip, the public_ip workload's address on the tap p-<its working
// name>, with the MAC the anti-spoofing filter allows (PublicIPMAC), the
// farm's gateway (PublicGateways, else the node's own public gateway) and
// IPv6 by SLAAC (public_ip6 needs a public_ip). The guest receives it all in
// the new-style kernel arguments (net_eth<i>=…, net_dns=…), and its SSH keys
// as ssh_authorized_keys="<key>" arguments, as k3os reads them.
//
// Any number of VMs share a network on a node, each on its own tap (the
// original, with one tap t-<netid> per network, ran one VM per network).
// A VM deployed before taps per VM keeps running on the network's shared
// tap t-<netid>, removed when it is decommissioned; after a reboot it
// moves to a tap of its own. A public IP serves one VM (ErrPublicIPInUse).
//
// Idempotent: a VM that runs with the same spec is left alone; an update
// that changes the spec replaces the VM (disks keep their data; a disk
// cannot change size). A NoKeepAlive VM runs once: the node does not start
// it again when it has ended, nor after a restart.
type VM struct{ b *vmBase }

var _ provision.Provisioner = (*VM)(nil)

func vmMountName(name string) string     { return name + "-img" }
func vmDiskID(name string, i int) string { return name + "-" + strconv.Itoa(i) }

// checkKernelArg refuses a value that would break the kernel command line.
func checkKernelArg(field, v string) error {
	if strings.ContainsAny(v, "\"\n\r\x00") {
		return &gridtypes.FieldError{Field: field, Reason: "holds a double quote or a line break", Err: vm.ErrBadK3OSArg}
	}
	return nil
}

// checkVM checks what the node needs beyond the schema.
func checkVM(w *gridtypes.VM) error {
	if w.Memory < vm.MinMemoryMiB {
		return &gridtypes.FieldError{Field: "memory", Reason: fmt.Sprintf("%d MiB, a VM needs at least %d MiB", w.Memory, vm.MinMemoryMiB)}
	}
	if w.CPU < 1 || w.CPU > vm.MaxCPU {
		return &gridtypes.FieldError{Field: "cpu", Reason: fmt.Sprintf("%d not in 1..%d", w.CPU, vm.MaxCPU)}
	}
	for i, d := range w.Disks {
		if d.Type == gridtypes.DiskHDD {
			return &gridtypes.FieldError{Field: "disks[" + strconv.Itoa(i) + "].type", Reason: "vm disks are on SSD only"}
		}
	}
	if w.Network.PublicIP6 && w.Network.PublicIP == 0 {
		return &gridtypes.FieldError{Field: "network.public_ip6", Reason: "a public IPv6 comes with a public_ip"}
	}
	if (w.Network.NetworkID == "") != (w.Network.IPAddress == "") {
		return &gridtypes.FieldError{Field: "network", Reason: "network_id and ipaddress go together"}
	}
	if err := checkKernelArg("kernel_args", w.KernelArgs); err != nil {
		return err
	}
	for i, k := range w.SSHKeys {
		if err := checkKernelArg("ssh_keys["+strconv.Itoa(i)+"]", k); err != nil {
			return err
		}
	}
	return nil
}

// specHash fingerprints what runs: the machine and the flist it came from.
func specHash(v pkg.VM, flist string) string {
	b, _ := json.Marshal(struct {
		VM    pkg.VM
		Flist string
	}{v, flist})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// Provision implements provision.Provisioner.
func (p *VM) Provision(ctx context.Context, d *provision.Deployment) (any, error) {
	w, ok := d.Workload.(*gridtypes.VM)
	if !ok {
		return nil, fmt.Errorf("vm %s: workload is a %T", d.Name, d.Workload)
	}
	if err := vm.ValidateName(d.Name); err != nil {
		return nil, err
	}
	if err := checkVM(w); err != nil {
		return nil, err
	}
	b := p.b
	var priv *privateNIC
	if w.Network.NetworkID != "" {
		n, err := b.privateNetwork(d, "network.ipaddress", w.Network.NetworkID, w.Network.IPAddress)
		if err != nil {
			return nil, err
		}
		priv = &n
	}
	var pub *publicNIC
	if w.Network.PublicIP != 0 {
		n, err := b.publicIP(ctx, d, w.Network.PublicIP)
		if err != nil {
			return nil, err
		}
		pub = &n
	}

	want := vmState{Kind: gridtypes.TypeVM, Mount: vmMountName(d.Name)}
	for i := range w.Disks {
		want.Disks = append(want.Disks, vmDiskID(d.Name, i))
	}
	if priv != nil {
		want.NetID, want.VMTap = priv.netID, true
	}
	if pub != nil {
		want.PubTap = pub.name
	}
	old, had, err := b.claim(d, want)
	if err != nil {
		return nil, err
	}
	var undo revert.Stack
	defer undo.Unwind()
	undo.Push(func() { b.restore(d.Name, old, had) })

	hub := w.HubURL
	if hub == "" {
		hub = b.cfg.DefaultHub
	}
	if old.Flist != "" && old.Flist != w.Flist {
		// An update to another image: the VM goes first, then the
		// mount (NamedMount keeps whatever a name holds).
		if err := b.deps.VMs.Delete(d.Name); err != nil {
			return nil, vmErr(d.Name, err)
		}
		if err := b.deps.Flister.NamedUmount(want.Mount); err != nil && !notFound(err) {
			return nil, fmt.Errorf("vm %s: flist: %w: %w", d.Name, provision.ErrTemporary, err)
		}
	}
	root, err := b.deps.Flister.NamedMount(want.Mount, w.Flist, hub, pkg.ReadOnlyMountOptions)
	if err != nil {
		return nil, fmt.Errorf("flist %s: %w", w.Flist, err)
	}
	if old.Flist != w.Flist {
		undo.Push(func() { _ = b.deps.Flister.NamedUmount(want.Mount) })
	}
	if err := b.update(d.Name, func(s *vmState) { s.Flist = w.Flist }); err != nil {
		return nil, err
	}
	kernelPath := w.KernelImage
	if kernelPath == "" {
		kernelPath = "/kernel"
	}
	kernel, err := imageFile(root, "kernel_image", kernelPath)
	if err != nil {
		return nil, err
	}
	var initrd string
	if w.InitrdImage != "" {
		if initrd, err = imageFile(root, "initrd_image", w.InitrdImage); err != nil {
			return nil, err
		}
	}

	var disks []pkg.VMDisk
	for i, disk := range w.Disks {
		id := vmDiskID(d.Name, i)
		path, _, err := allocateDisk(b.deps.VDisks, &undo, "disks["+strconv.Itoa(i)+"]", id, disk.Size)
		if err != nil {
			return nil, err
		}
		disks = append(disks, pkg.VMDisk{Path: path, ReadOnly: disk.ReadOnly, Root: disk.Root})
	}

	v := pkg.VM{Name: d.Name, CPU: w.CPU, Memory: int64(w.Memory), KernelImage: kernel, InitrdImage: initrd,
		KernelArgs: w.KernelArgs, Disks: disks, NoKeepAlive: w.NoKeepAlive,
		Network: pkg.VMNetworkInfo{NewStyle: true, Nameservers: b.nameservers()}}
	if len(w.SSHKeys) > 0 {
		if v.KernelArgs == "" {
			v.KernelArgs = vm.DefaultKernelArgs
		}
		for _, k := range w.SSHKeys {
			v.KernelArgs += ` ssh_authorized_keys="` + k + `"`
		}
	}
	if err := b.attach(&undo, d.Name, &v.Network, priv, pub); err != nil {
		return nil, err
	}

	spec := specHash(v, w.Flist)
	st, _, err := b.load(d.Name)
	if err != nil {
		return nil, err
	}
	started, err := b.runVM(ctx, v, spec, st)
	if err != nil {
		return nil, err
	}
	if started {
		undo.Push(func() { _ = b.deps.VMs.Delete(d.Name) })
		b.log.InfoContext(ctx, "vm started", "vm", d.Name, "cpu", w.CPU, "memory_mib", w.Memory)
	}
	if err := b.release(d.Name, want.Disks, func(s *vmState) {
		s.Spec = spec
		s.Started = s.Started || started
	}); err != nil {
		return nil, err
	}
	undo.Done()

	res := gridtypes.VMResult{ID: d.Name}
	if priv != nil {
		res.IP = priv.ip.String()
		res.IPv6 = priv.iface.IP6AddressCIDR.IP.String()
	}
	if pub != nil {
		res.PublicIP = pub.ip.Addr().String()
	}
	return res, nil
}

// allocateDisk allocates the vdisk id of sizeMiB, or finds it (a disk
// cannot change size); created tells which, and a new disk is deallocated
// by undo.
func allocateDisk(disks pkg.VDiskModule, undo *revert.Stack, field, id string, sizeMiB uint64) (path string, created bool, err error) {
	path, err = disks.Allocate(id, int64(sizeMiB))
	switch {
	case errors.Is(err, os.ErrExist):
		info, ierr := disks.Inspect(id)
		if ierr != nil {
			return "", false, fmt.Errorf("%s: disk %s: %w: %w", field, id, provision.ErrTemporary, ierr)
		}
		if uint64(info.Size) != sizeMiB*gridtypes.MiB {
			return "", false, &gridtypes.FieldError{Field: field + ".size",
				Reason: fmt.Sprintf("the disk exists with %d MiB and cannot change size", info.Size/int64(gridtypes.MiB))}
		}
		return info.Path, false, nil
	case err != nil:
		return "", false, fmt.Errorf("%s: disk %s: %w", field, id, err)
	}
	undo.Push(func() { _ = disks.Deallocate(id) })
	return path, true, nil
}

// attach makes the taps of VM name's private and public interfaces and
// adds the interfaces to n, private first (eth0).
func (b *vmBase) attach(undo *revert.Stack, name string, n *pkg.VMNetworkInfo, priv *privateNIC, pub *publicNIC) error {
	if priv != nil {
		tap, created, err := b.ensureTap(priv.netID, name)
		if err != nil {
			return err
		}
		if created {
			undo.Push(func() { _ = b.taps.RemoveVMTap(priv.netID, name) })
		}
		nic := priv.iface
		nic.Tap = tap
		n.Ifaces = append(n.Ifaces, nic)
	}
	if pub != nil {
		tap, created, err := b.ensurePubTap(pub.name)
		if err != nil {
			return err
		}
		if created {
			undo.Push(func() { _ = b.deps.Networker.RemovePubTap(pub.name) })
		}
		nic := pub.iface
		nic.Tap = tap
		n.Ifaces = append(n.Ifaces, nic)
	}
	return nil
}

// Decommission implements provision.Provisioner: the VM, its taps (only
// those it claimed), its disks, its flist mount and its state go.
func (p *VM) Decommission(ctx context.Context, d *provision.Deployment) error {
	if vm.ValidateName(d.Name) != nil {
		return nil // never provisioned
	}
	st, _, err := p.b.load(d.Name)
	if err != nil {
		return err
	}
	// What carries the workload's name is its own, state or not: its
	// flist mount, its disks, its tap on its network.
	st.Mount = vmMountName(d.Name)
	if w, err := d.Reservation.Workload(); err == nil {
		if vw, ok := w.(*gridtypes.VM); ok {
			if st.NetID == "" && vw.Network.NetworkID != "" {
				st.NetID, st.VMTap = pkg.NetID(gridtypes.NetworkID(d.Reservation.UserID, vw.Network.NetworkID)), true
			}
			for i := range vw.Disks {
				if id := vmDiskID(d.Name, i); !slices.Contains(st.Disks, id) {
					st.Disks = append(st.Disks, id)
				}
			}
		}
	}
	return p.b.teardown(ctx, d.Name, st, d.Name)
}
