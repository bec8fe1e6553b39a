package primitives

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"

	"github.com/zos-go/zos/internal/revert"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/provision"
	"github.com/zos-go/zos/pkg/vm"
)

// Kubernetes provisions kubernetes workloads: a k3os VM of a size from the
// size table (gridtypes.KubernetesSizeOf), as the original.
//
// The k3os flist (VMConfig.K3OSFlist) is mounted read-only ("<name>-k3os");
// the vdisk "<name>-vda" of the size's disk is allocated; the VM joins the
// user network through its tap, and optionally a public IP (as VM). The
// first run is the installer: a NoKeepAlive VM with the vdisk and the k3os
// ISO, booted with the k3os install arguments (the cluster secret, already
// decrypted by the engine, as token; one server_url per master; the SSH
// keys; the datastore endpoint; traefik disabled on request). Once it has
// stopped by itself (within VMConfig.InstallTimeout) the state file records
// that k3os is installed, and the VM proper runs from the vdisk with
// keep-alive. Re-provisioning (agent restart, power cut) never installs
// again while the vdisk exists; a vdisk allocated anew is installed again.
//
// Differences from the original: the installer is a VM of its own name
// ("<name>-install"), so a crash during the install is recognised and the
// install redone; an installed disk is known from the state file, not from
// the disk's mere existence (the original skipped the install of a disk
// whose installer had been interrupted).
type Kubernetes struct{ b *vmBase }

var _ provision.Provisioner = (*Kubernetes)(nil)

func k8sMountName(name string) string { return name + "-k3os" }
func k8sDiskID(name string) string    { return name + "-vda" }
func k8sInstaller(name string) string { return name + "-install" }

// maxConsoleInError bounds the installer console quoted in an error.
const maxConsoleInError = 2048

// Provision implements provision.Provisioner.
func (p *Kubernetes) Provision(ctx context.Context, d *provision.Deployment) (any, error) {
	w, ok := d.Workload.(*gridtypes.Kubernetes)
	if !ok {
		return nil, fmt.Errorf("kubernetes %s: workload is a %T", d.Name, d.Workload)
	}
	if err := vm.ValidateName(k8sInstaller(d.Name)); err != nil {
		return nil, err
	}
	size, ok := gridtypes.KubernetesSizeOf(w.Size)
	if !ok {
		return nil, &gridtypes.FieldError{Field: "size", Reason: fmt.Sprintf("%d is not between 1 and %d", w.Size, gridtypes.MaxKubernetesSize)}
	}
	b := p.b
	kc := vm.K3OSConfig{Token: w.ClusterSecret, SSHKeys: w.SSHKeys,
		DatastoreEndpoint: w.DatastoreEndpoint, DisableDefaultIngress: w.DisableDefaultIngress}
	for i, s := range w.MasterIPs {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, &gridtypes.FieldError{Field: "master_ips[" + strconv.Itoa(i) + "]", Reason: fmt.Sprintf("%q is not an IP", s)}
		}
		kc.MasterIPs = append(kc.MasterIPs, ip)
	}
	if _, err := vm.K3OSInstallArgs(kc); err != nil {
		return nil, &gridtypes.FieldError{Field: "cluster_secret, ssh_keys or datastore_endpoint", Reason: err.Error(), Err: err}
	}
	priv, err := b.privateNetwork(d, "ipaddress", w.NetworkID, w.IPAddress)
	if err != nil {
		return nil, err
	}
	var pub *publicNIC
	if w.PublicIP != 0 {
		n, err := b.publicIP(ctx, d, w.PublicIP)
		if err != nil {
			return nil, err
		}
		pub = &n
	}

	want := vmState{Kind: gridtypes.TypeKubernetes, Mount: k8sMountName(d.Name), Disks: []string{k8sDiskID(d.Name)},
		NetID: priv.netID, VMTap: true}
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

	hub := b.cfg.K3OSHub
	if hub == "" {
		hub = b.cfg.DefaultHub
	}
	root, err := b.deps.Flister.NamedMount(want.Mount, b.cfg.K3OSFlist, hub, pkg.ReadOnlyMountOptions)
	if err != nil {
		return nil, fmt.Errorf("k3os flist %s: %w: %w", b.cfg.K3OSFlist, provision.ErrTemporary, err)
	}
	if old.Flist == "" {
		undo.Push(func() { _ = b.deps.Flister.NamedUmount(want.Mount) })
	}
	var img vm.FlistImage
	for _, f := range []struct {
		dst  *string
		file string
	}{{&img.Kernel, vm.K3OSKernelFile}, {&img.Initrd, vm.K3OSInitrdFile}, {&img.ISO, vm.K3OSISOFile}} {
		if *f.dst, err = imageFile(root, "k3os flist", f.file); err != nil {
			return nil, fmt.Errorf("k3os flist %s: %w", b.cfg.K3OSFlist, err)
		}
	}

	disk, newDisk, err := allocateDisk(b.deps.VDisks, &undo, "size", k8sDiskID(d.Name), size.DiskGiB*1024)
	if err != nil {
		return nil, err
	}
	if err := b.update(d.Name, func(s *vmState) {
		s.Flist = b.cfg.K3OSFlist
	}); err != nil {
		return nil, err
	}

	cpu, mem := uint8(size.CPU), int64(size.MemoryGiB*1024)
	netInfo := pkg.VMNetworkInfo{NewStyle: d.Reservation.Version >= 2, Nameservers: b.nameservers()}
	if err := b.attach(&undo, d.Name, &netInfo, &priv, pub); err != nil {
		return nil, err
	}
	run := vm.K3OSRunVM(d.Name, cpu, mem, img, disk, netInfo)
	spec := specHash(run, b.cfg.K3OSFlist)

	st, _, err := b.load(d.Name)
	if err != nil {
		return nil, err
	}
	if newDisk {
		st.Installed, st.Spec = false, ""
	}
	if !st.Installed {
		if err := b.install(ctx, &undo, d.Name, cpu, mem, img, disk, netInfo, kc); err != nil {
			return nil, err
		}
		st.Installed, st.Spec = true, ""
	} else if err := b.deps.VMs.Delete(k8sInstaller(d.Name)); err != nil {
		return nil, vmErr(k8sInstaller(d.Name), err) // left by a crash after the install
	}
	started, err := b.runVM(ctx, run, spec, st)
	if err != nil {
		return nil, err
	}
	if started {
		undo.Push(func() { _ = b.deps.VMs.Delete(d.Name) })
		b.log.InfoContext(ctx, "kubernetes vm started", "vm", d.Name, "size", w.Size)
	}
	if err := b.release(d.Name, want.Disks, func(s *vmState) {
		s.Spec, s.Installed = spec, true
		s.Started = s.Started || started
	}); err != nil {
		return nil, err
	}
	undo.Done()
	return gridtypes.KubernetesResult{ID: d.Name, IP: priv.ip.String()}, nil
}

// install runs the k3os installer onto the disk and waits until it stops,
// then records the install and deletes the installer VM.
func (b *vmBase) install(ctx context.Context, undo *revert.Stack, name string, cpu uint8, mem int64,
	img vm.FlistImage, disk string, n pkg.VMNetworkInfo, kc vm.K3OSConfig) error {
	inst := k8sInstaller(name)
	if err := b.deps.VMs.Delete(inst); err != nil { // an interrupted install
		return vmErr(inst, err)
	}
	iv, err := vm.K3OSInstallVM(inst, cpu, mem, img, disk, n, kc)
	if err != nil {
		return fmt.Errorf("kubernetes %s: %w", name, err)
	}
	if err := b.deps.VMs.Run(iv); err != nil {
		return vmErr(inst, err)
	}
	undo.Push(func() { _ = b.deps.VMs.Delete(inst) })
	b.log.InfoContext(ctx, "k3os install started", "vm", name)
	wctx, cancel := context.WithTimeout(ctx, b.cfg.InstallTimeout)
	defer cancel()
	if _, err := vm.WaitStopped(wctx, b.deps.VMs, inst, b.cfg.InstallPoll); err != nil {
		logs, _ := b.deps.VMs.Logs(inst)
		if len(logs) > maxConsoleInError {
			logs = logs[len(logs)-maxConsoleInError:]
		}
		if ctx.Err() != nil {
			return fmt.Errorf("k3os install of %s: %w: %w", name, provision.ErrTemporary, ctx.Err())
		}
		if errors.Is(err, vm.ErrWaitTimeout) {
			return fmt.Errorf("k3os install of %s did not finish in %v: %w; console: %s", name, b.cfg.InstallTimeout, err, logs)
		}
		return vmErr(inst, err)
	}
	if err := b.update(name, func(s *vmState) { s.Installed, s.Spec = true, "" }); err != nil {
		return err
	}
	if err := b.deps.VMs.Delete(inst); err != nil {
		return vmErr(inst, err)
	}
	b.log.InfoContext(ctx, "k3os installed", "vm", name)
	return nil
}

// Decommission implements provision.Provisioner: the VM and its installer,
// its taps, its vdisk, the k3os mount and its
// state go.
func (p *Kubernetes) Decommission(ctx context.Context, d *provision.Deployment) error {
	if vm.ValidateName(k8sInstaller(d.Name)) != nil {
		return nil // never provisioned
	}
	st, _, err := p.b.load(d.Name)
	if err != nil {
		return err
	}
	// What carries the workload's name is its own, state or not.
	st.Mount = k8sMountName(d.Name)
	if id := k8sDiskID(d.Name); !slices.Contains(st.Disks, id) {
		st.Disks = append(st.Disks, id)
	}
	if w, err := d.Reservation.Workload(); err == nil {
		if kw, ok := w.(*gridtypes.Kubernetes); ok && st.NetID == "" && kw.NetworkID != "" {
			st.NetID, st.VMTap = pkg.NetID(gridtypes.NetworkID(d.Reservation.UserID, kw.NetworkID)), true
		}
	}
	return p.b.teardown(ctx, d.Name, st, d.Name, k8sInstaller(d.Name))
}
