// Package vm implements the node's VM module (pkg.VMModule) on QEMU: one
// QEMU process per VM, run as a supervised service (zinit on a node) so it
// outlives the agent, driven over QMP.
//
// # Machines
//
// A VM with a kernel boots it directly on QEMU's microvm machine (virtio-mmio
// devices, no firmware); a VM without a kernel but with a root disk boots
// that disk through SeaBIOS on q35 (virtio-pci). Disks are virtio-blk in
// guest order (the root disk first, as Firecracker did: /dev/vda), network
// interfaces virtio-net on the taps the network module made. The serial
// console is appended to a file that the module rotates (Logs returns its
// tail). KVM is used when a tiny probe VM really runs under it, and faster
// than under emulation; otherwise TCG (nested hosts often expose a /dev/kvm
// that cannot run a guest).
//
// # Keep-alive, without loss
//
// A VM whose QEMU ends is started again after 10 s, then 20 s, 40 s… up to
// 5 min; the delay resets after 10 healthy minutes. Unlike the original, the
// module never deletes a VM by itself: its state (running, backoff, stopped)
// and the reason of the last exit stay visible through Status and through
// the *StateError that Inspect returns. A NoKeepAlive VM that ends is left
// stopped until the caller deletes it.
//
// # Lifetime
//
// Each VM has a record (vm.json) written before its QEMU starts. When the
// agent restarts, Run(ctx) rebuilds its view from the records and the
// supervised processes: running QEMUs are adopted (re-attached over QMP),
// dead ones are restarted, half-deleted ones are finished, and services
// without a record are stopped.
package vm
