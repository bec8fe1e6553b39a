package pkg

import "net"

// VMIface is a network interface of a VM.
type VMIface struct {
	// Tap device name
	Tap string
	// MAC address of the device
	MAC string
	// IP4AddressCIDR is the IPv4 address with its prefix length
	IP4AddressCIDR net.IPNet
	// IP4GatewayIP is the IPv4 gateway
	IP4GatewayIP net.IP
	// IP4Net is the whole subnet of the IPv4 resource, so that routes to
	// non-local subnets (network resources on other nodes) can be set up.
	// Not needed for public interfaces.
	IP4Net net.IPNet
	// IP6AddressCIDR is the IPv6 address with its prefix length
	IP6AddressCIDR net.IPNet
	// IP6GatewayIP is the IPv6 gateway
	IP6GatewayIP net.IP
	// Public marks an interface on the public network (else private)
	Public bool
}

// VMNetworkInfo is the network configuration of a VM.
type VMNetworkInfo struct {
	// Ifaces are the interfaces of the vm
	Ifaces []VMIface
	// Nameservers dns servers
	Nameservers []net.IP
	// NewStyle selects the boot-script configuration (several interfaces)
	// over the old static "IP" kernel parameter.
	NewStyle bool
}

// VMDisk is a disk attached to a VM.
type VMDisk struct {
	// Path of the disk image
	Path string
	// ReadOnly attaches the disk read-only
	ReadOnly bool
	// Root marks the root disk
	Root bool
}

// VM is the configuration of a virtual machine.
type VM struct {
	// Name is the virtual machine name, or ID
	Name string
	// CPU is number of cores assigned to the VM
	CPU uint8
	// Memory size in MiB
	Memory int64
	// Network is network info
	Network VMNetworkInfo
	// KernelImage path to uncompressed linux kernel ELF
	KernelImage string
	// InitrdImage (optional) path to initrd disk
	InitrdImage string
	// KernelArgs override the default kernel arguments ("ro console=ttyS0
	// noapic reboot=k panic=1 pci=off nomodules").
	KernelArgs string
	// Disks attached to the VM
	Disks []VMDisk
	// NoKeepAlive: the VM module does not restart this machine nor clean
	// up after it exits; the caller checks its state and calls Delete.
	NoKeepAlive bool
}

// VMInfo is returned by VMModule.Inspect.
type VMInfo struct {
	// HtEnabled tells whether hyperthreading is enabled
	HtEnabled bool
	// Memory size of VM
	Memory int64
	// CPU is the number of vCPUs (either 1 or an even number)
	CPU int64
}

// VMModule defines the virtual machine module interface.
type VMModule interface {
	Run(vm VM) error
	Inspect(name string) (VMInfo, error)
	Delete(name string) error
	Exists(name string) bool
	Logs(name string) (string, error)
}
