package gridtypes

import (
	"crypto/md5"
	"strconv"

	"github.com/mr-tron/base58"
)

// Network is a network resource: the part of a user's private network (a
// /16 shared by all its nodes) that lives on one node: a /24, a WireGuard
// interface and its peers. The original called it "network_resource".
type Network struct {
	// Name of the user network; containers and VMs join it by this name.
	Name string `json:"name"`
	// NetworkIPRange is the whole network, an IPv4 /16 ("10.1.0.0/16").
	NetworkIPRange string `json:"network_iprange"`
	// IPRange is this node's subnet, an IPv4 /24 inside NetworkIPRange.
	IPRange string `json:"iprange"`
	// WireguardPrivateKeyEncrypted is the WireGuard private key as hex
	// sealed box to the node (SecretSealed).
	WireguardPrivateKeyEncrypted string `json:"wireguard_private_key_encrypted"`
	// WireguardPublicKey is the base64 WireGuard public key.
	WireguardPublicKey string `json:"wireguard_public_key"`
	// WireguardListenPort is the UDP port of the interface.
	WireguardListenPort uint16            `json:"wireguard_listen_port"`
	Peers               []Peer            `json:"peers,omitzero"`
	StatsAggregator     []StatsAggregator `json:"stats_aggregator,omitzero"`
}

// Peer is another network resource (or a user's access point) of the same
// network.
type Peer struct {
	// PublicKey is the peer's base64 WireGuard public key.
	PublicKey string `json:"public_key"`
	// Endpoint is "ip:port" or "[ipv6]:port"; empty when the peer dials in.
	Endpoint string `json:"endpoint,omitempty"`
	// IPRange is the peer's /24.
	IPRange string `json:"iprange"`
	// AllowedIPRange lists the ranges routed to the peer.
	AllowedIPRange []string `json:"allowed_iprange,omitzero"`
}

// Type implements Workload.
func (*Network) WorkloadType() WorkloadType { return TypeNetwork }

// Validate implements Workload.
func (n *Network) Validate() error {
	if err := checkStr("name", n.Name, 64, true); err != nil {
		return err
	}
	whole, err := parsePrefix("network_iprange", n.NetworkIPRange, true)
	if err != nil {
		return err
	}
	if whole.Bits() != 16 {
		return fieldErr("network_iprange", "%q is not a /16", n.NetworkIPRange)
	}
	sub, err := parsePrefix("iprange", n.IPRange, true)
	if err != nil {
		return err
	}
	if sub.Bits() != 24 || !whole.Masked().Contains(sub.Addr()) {
		return fieldErr("iprange", "%q is not a /24 inside %s", n.IPRange, n.NetworkIPRange)
	}
	if err := checkStr("wireguard_private_key_encrypted", n.WireguardPrivateKeyEncrypted, MaxStringLen, true); err != nil {
		return err
	}
	if err := checkHex("wireguard_private_key_encrypted", n.WireguardPrivateKeyEncrypted); err != nil {
		return err
	}
	if err := checkWGKey("wireguard_public_key", n.WireguardPublicKey); err != nil {
		return err
	}
	if n.WireguardListenPort == 0 {
		return fieldErr("wireguard_listen_port", "is required")
	}
	if err := checkLen("peers", len(n.Peers)); err != nil {
		return err
	}
	for i, p := range n.Peers {
		f := "peers[" + strconv.Itoa(i) + "]"
		if err := checkWGKey(f+".public_key", p.PublicKey); err != nil {
			return err
		}
		if p.Endpoint != "" {
			if err := checkEndpoint(f+".endpoint", p.Endpoint); err != nil {
				return err
			}
		}
		if _, err := parsePrefix(f+".iprange", p.IPRange, false); err != nil {
			return err
		}
		if err := checkLen(f+".allowed_iprange", len(p.AllowedIPRange)); err != nil {
			return err
		}
		for j, r := range p.AllowedIPRange {
			if _, err := parsePrefix(f+".allowed_iprange["+strconv.Itoa(j)+"]", r, false); err != nil {
				return err
			}
		}
	}
	return checkStats("stats_aggregator", n.StatsAggregator)
}

// Capacity implements Workload: networks take no capacity.
func (*Network) Resources() Capacity { return Capacity{} }

func (n *Network) encode(e *encoder) {
	e.str(n.Name)
	e.str(n.NetworkIPRange)
	e.str(n.IPRange)
	e.str(n.WireguardPrivateKeyEncrypted)
	e.str(n.WireguardPublicKey)
	e.u64(uint64(n.WireguardListenPort))
	e.count(len(n.Peers))
	for _, p := range n.Peers {
		e.str(p.PublicKey)
		e.str(p.Endpoint)
		e.str(p.IPRange)
		e.strs(p.AllowedIPRange)
	}
	encodeStats(e, n.StatsAggregator)
}

func (n *Network) secrets(fn SecretFunc) error {
	return applySecret(fn, "wireguard_private_key_encrypted", SecretSealed, &n.WireguardPrivateKeyEncrypted)
}

// NetworkID is the node-local id of user userID's network name: the first
// 13 characters of base58(MD5(decimal userID ‖ name)), as the original
// (zos:pkg/provision/engine.go@v0.4.9). Its type converts to pkg.NetID.
func NetworkID(userID uint64, name string) string {
	sum := md5.Sum([]byte(strconv.FormatUint(userID, 10) + name))
	id := base58.Encode(sum[:])
	if len(id) > 13 {
		id = id[:13]
	}
	return id
}

// Kubernetes is a k3os virtual machine of a size from the size table.
type Kubernetes struct {
	// Size selects CPU, memory and disk (KubernetesSizeOf).
	Size uint8 `json:"size"`
	// ClusterSecret is hex ciphertext (SecretUser) of the k3s token.
	ClusterSecret string `json:"cluster_secret"`
	// NetworkID is the name of the user network the VM joins.
	NetworkID string `json:"network_id"`
	// IPAddress is the VM's IPv4 in this node's subnet of the network.
	IPAddress string `json:"ipaddress"`
	// MasterIPs are the masters to join; empty: this VM is a master.
	MasterIPs []string `json:"master_ips,omitzero"`
	// SSHKeys are authorized for the VM's user.
	SSHKeys         []string          `json:"ssh_keys,omitzero"`
	StatsAggregator []StatsAggregator `json:"stats_aggregator,omitzero"`
	// PublicIP is the reservation id of a public_ip workload (0: none).
	PublicIP uint64 `json:"public_ip,omitempty"`
	// DatastoreEndpoint is an external k3s datastore.
	DatastoreEndpoint string `json:"datastore_endpoint,omitempty"`
	// DisableDefaultIngress disables traefik.
	DisableDefaultIngress bool `json:"disable_default_ingress,omitempty"`
}

// Type implements Workload.
func (*Kubernetes) WorkloadType() WorkloadType { return TypeKubernetes }

// Validate implements Workload.
func (k *Kubernetes) Validate() error {
	if _, ok := KubernetesSizeOf(k.Size); !ok {
		return fieldErr("size", "%d is not between 1 and %d", k.Size, MaxKubernetesSize)
	}
	if err := checkStr("cluster_secret", k.ClusterSecret, MaxStringLen, true); err != nil {
		return err
	}
	if err := checkHex("cluster_secret", k.ClusterSecret); err != nil {
		return err
	}
	if err := checkStr("network_id", k.NetworkID, 64, true); err != nil {
		return err
	}
	if _, err := parseIPv4("ipaddress", k.IPAddress); err != nil {
		return err
	}
	if err := checkLen("master_ips", len(k.MasterIPs)); err != nil {
		return err
	}
	for i, ip := range k.MasterIPs {
		if err := checkIP("master_ips["+strconv.Itoa(i)+"]", ip); err != nil {
			return err
		}
	}
	if err := checkStrs("ssh_keys", k.SSHKeys, true); err != nil {
		return err
	}
	if err := checkStats("stats_aggregator", k.StatsAggregator); err != nil {
		return err
	}
	return checkStr("datastore_endpoint", k.DatastoreEndpoint, MaxStringLen, false)
}

// Capacity implements Workload: from the size table, disk on SSD.
func (k *Kubernetes) Resources() Capacity {
	s, _ := KubernetesSizeOf(k.Size)
	return Capacity{CRU: s.CPU, MRU: s.MemoryGiB * GiB, SRU: s.DiskGiB * GiB}
}

func (k *Kubernetes) encode(e *encoder) {
	e.u64(uint64(k.Size))
	e.str(k.ClusterSecret)
	e.str(k.NetworkID)
	e.str(k.IPAddress)
	e.strs(k.MasterIPs)
	e.strs(k.SSHKeys)
	encodeStats(e, k.StatsAggregator)
	e.u64(k.PublicIP)
	e.str(k.DatastoreEndpoint)
	e.boolean(k.DisableDefaultIngress)
}

func (k *Kubernetes) secrets(fn SecretFunc) error {
	return applySecret(fn, "cluster_secret", SecretUser, &k.ClusterSecret)
}

// VM is a generic virtual machine (the seed's pkg.VM fields as a user can
// give them): kernel, optional initrd and disks come from an flist.
type VM struct {
	// CPU is the number of vCPUs.
	CPU uint8 `json:"cpu"`
	// Memory in MiB.
	Memory uint64 `json:"memory"`
	// Flist is the image holding the kernel (and initrd).
	Flist  string `json:"flist"`
	HubURL string `json:"hub_url,omitempty"`
	// KernelImage is the kernel's path inside the flist (empty: "/kernel").
	KernelImage string `json:"kernel_image,omitempty"`
	// InitrdImage is the initrd's path inside the flist (empty: none).
	InitrdImage string `json:"initrd_image,omitempty"`
	// KernelArgs replace the default kernel command line.
	KernelArgs string `json:"kernel_args,omitempty"`
	// Disks are allocated on the node and attached in order.
	Disks []VMDisk `json:"disks,omitzero"`
	// Network is the private (and optional public) network of the VM.
	Network VMNetwork `json:"network"`
	// SSHKeys are handed to the VM through its boot configuration.
	SSHKeys []string `json:"ssh_keys,omitzero"`
	// NoKeepAlive: the node neither restarts the VM nor cleans up when it
	// exits.
	NoKeepAlive bool `json:"no_keep_alive,omitempty"`
}

// VMDisk is a disk allocated for a VM.
type VMDisk struct {
	// Size in MiB.
	Size     uint64   `json:"size"`
	Type     DiskType `json:"type,omitempty"`
	ReadOnly bool     `json:"readonly,omitempty"`
	Root     bool     `json:"root,omitempty"`
}

// VMNetwork connects a VM to a user network and optionally a public IP.
type VMNetwork struct {
	// NetworkID is the user network's name; empty: no private network.
	NetworkID string `json:"network_id,omitempty"`
	IPAddress string `json:"ipaddress,omitempty"`
	// PublicIP is the reservation id of a public_ip workload (0: none).
	PublicIP  uint64 `json:"public_ip,omitempty"`
	PublicIP6 bool   `json:"public_ip6,omitempty"`
}

// Type implements Workload.
func (*VM) WorkloadType() WorkloadType { return TypeVM }

// Validate implements Workload.
func (v *VM) Validate() error {
	if err := checkCompute("", uint64(v.CPU), v.Memory, ""); err != nil {
		return err
	}
	for _, s := range []struct{ f, v string }{{"flist", v.Flist}, {"hub_url", v.HubURL},
		{"kernel_image", v.KernelImage}, {"initrd_image", v.InitrdImage}, {"kernel_args", v.KernelArgs}} {
		if err := checkStr(s.f, s.v, MaxStringLen, s.f == "flist"); err != nil {
			return err
		}
	}
	if err := checkLen("disks", len(v.Disks)); err != nil {
		return err
	}
	roots := 0
	for i, d := range v.Disks {
		f := "disks[" + strconv.Itoa(i) + "]"
		if d.Size == 0 || d.Size > 1<<30 {
			return fieldErr(f+".size", "%d MiB is not a possible disk size", d.Size)
		}
		if !d.Type.valid(true) {
			return fieldErr(f+".type", "%q is not ssd or hdd", d.Type)
		}
		if d.Root {
			roots++
		}
	}
	if roots > 1 {
		return fieldErr("disks", "more than one root disk")
	}
	if v.Network.NetworkID != "" || v.Network.IPAddress != "" {
		if err := checkConnections("network", []NetworkConnection{{NetworkID: v.Network.NetworkID, IPAddress: v.Network.IPAddress}}); err != nil {
			return err
		}
	}
	return checkStrs("ssh_keys", v.SSHKeys, true)
}

// Capacity implements Workload: CRU = cpu, MRU = memory, disks on SRU or HRU.
func (v *VM) Resources() Capacity {
	c := Capacity{CRU: uint64(v.CPU), MRU: v.Memory * MiB}
	for _, d := range v.Disks {
		c = onDisk(c, d.Type, d.Size*MiB)
	}
	return c
}

func (v *VM) encode(e *encoder) {
	e.u64(uint64(v.CPU))
	e.u64(v.Memory)
	e.str(v.Flist)
	e.str(v.HubURL)
	e.str(v.KernelImage)
	e.str(v.InitrdImage)
	e.str(v.KernelArgs)
	e.count(len(v.Disks))
	for _, d := range v.Disks {
		e.u64(d.Size)
		e.str(string(d.Type))
		e.boolean(d.ReadOnly)
		e.boolean(d.Root)
	}
	e.str(v.Network.NetworkID)
	e.str(v.Network.IPAddress)
	e.u64(v.Network.PublicIP)
	e.boolean(v.Network.PublicIP6)
	e.strs(v.SSHKeys)
	e.boolean(v.NoKeepAlive)
}

func (*VM) secrets(SecretFunc) error { return nil }
