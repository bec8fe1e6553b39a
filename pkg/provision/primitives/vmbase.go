package primitives

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zos-go/zos/internal/atomicfile"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/network"
	"github.com/zos-go/zos/pkg/provision"
	"github.com/zos-go/zos/pkg/vm"
)

// Errors of the vm and kubernetes provisioners (bad input: the workload
// fails with a message naming the field).
var (
	// ErrPublicIPInUse: another live VM uses that public_ip workload.
	ErrPublicIPInUse = errors.New("public ip used by another vm")
	// ErrForeignPublicIP: the public_ip workload belongs to another user.
	ErrForeignPublicIP = errors.New("public ip belongs to another user")
	// ErrNoPublicGateway: the gateway of a public IP is unknown to the node
	// (neither the farm nor the node's public config gives one).
	ErrNoPublicGateway = errors.New("no gateway known for the public ip")
)

// PublicGateways finds the IPv4 gateway of one of the farm's public IPs.
// The farm's IP pool (address, gateway) lives on the explorer, not on the
// node: zosd implements it with the explorer client. It returns an error
// wrapping os.ErrNotExist when the farm does not list ip.
type PublicGateways interface {
	PublicGateway(ctx context.Context, ip netip.Prefix) (netip.Addr, error)
}

// VMConfig configures the vm and kubernetes provisioners.
type VMConfig struct {
	// StateDir keeps one small file per VM workload: what was made for it
	// (tap, public tap, disks, flist mount), the spec it runs with, and
	// whether k3os is installed on its disk. It must survive reboots (the
	// cache disk).
	StateDir string
	// DefaultHub is the flist storage of a VM whose workload names none.
	DefaultHub string
	// K3OSFlist is the k3os flist of kubernetes VMs (the files
	// k3os-vmlinux, k3os-initrd-amd64 and k3os-amd64.iso); K3OSHub its
	// storage (empty: DefaultHub).
	K3OSFlist string
	K3OSHub   string
	// InstallTimeout bounds the k3os installer run; InstallPoll is how
	// often its state is checked.
	InstallTimeout time.Duration
	InstallPoll    time.Duration
	// Nameservers are handed to every guest.
	Nameservers []netip.Addr
	// PublicGateway4 is the node's own public IPv4 gateway (gw4 of its
	// farmer-signed public config): the gateway of a public IP that
	// PublicGateways does not know. Invalid: none.
	PublicGateway4 netip.Addr
}

// DefaultVMConfig returns the configuration of a node, as the original:
// the k3os flist of the v0.4 hub, 5 minutes for the installer, Google's
// and Cloudflare's DNS.
func DefaultVMConfig() VMConfig {
	return VMConfig{
		StateDir:       "/var/cache/modules/provisiond/vms",
		K3OSFlist:      "https://hub.grid.tf/lee/k3os.flist",
		InstallTimeout: 5 * time.Minute,
		InstallPoll:    3 * time.Second,
		Nameservers: []netip.Addr{netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("1.1.1.1"),
			netip.MustParseAddr("2001:4860:4860::8888")},
	}
}

// Validate reports an unusable configuration.
func (c VMConfig) Validate() error {
	switch {
	case !filepath.IsAbs(c.StateDir):
		return fmt.Errorf("vm: state dir %q is not absolute", c.StateDir)
	case c.K3OSFlist == "":
		return errors.New("vm: k3os flist not set")
	case c.InstallTimeout <= 0 || c.InstallPoll <= 0:
		return errors.New("vm: install timeout and poll must be positive")
	case c.PublicGateway4.IsValid() && !c.PublicGateway4.Is4():
		return fmt.Errorf("vm: public gateway %s is not IPv4", c.PublicGateway4)
	}
	for _, ns := range c.Nameservers {
		if !ns.IsValid() {
			return errors.New("vm: invalid nameserver")
		}
	}
	return nil
}

// VMDeps are the modules the vm and kubernetes provisioners drive.
type VMDeps struct {
	Networker pkg.Networker
	Flister   pkg.Flister
	VDisks    pkg.VDiskModule
	// VMs is the VM module (vm.Module on a node, vmtest.Fake in tests).
	// Its Config.ImageDirs must hold the Flister's mountpoints, so the
	// k3os ISO can be attached read-only.
	VMs vm.Manager
	// VMTaps makes the tap of each VM on its user network; nil: the
	// Networker's, which must then implement network.VMTaps (the network
	// module and networktest.Fake do).
	VMTaps network.VMTaps
	// Gateways, optional, finds the gateway of a public IP.
	Gateways PublicGateways
}

// vmBase is what the vm and kubernetes provisioners share: the modules,
// the state files, and the lock that serialises claims on public taps.
type vmBase struct {
	cfg  VMConfig
	deps VMDeps
	taps network.VMTaps
	log  *slog.Logger
	// mu serialises every read-modify-write of the state files, so two
	// VMs never claim the same public tap.
	mu sync.Mutex
}

// NewVMProvisioners returns the provisioners of vm and kubernetes
// workloads. They share state (claims on taps), so a node builds them
// together. It starts nothing.
func NewVMProvisioners(cfg VMConfig, deps VMDeps, log *slog.Logger) (*VM, *Kubernetes, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	if deps.Networker == nil || deps.Flister == nil || deps.VDisks == nil || deps.VMs == nil || log == nil {
		return nil, nil, errors.New("vm: networker, flister, vdisks, vm module and logger are required")
	}
	taps := deps.VMTaps
	if taps == nil {
		var ok bool
		if taps, ok = deps.Networker.(network.VMTaps); !ok {
			return nil, nil, fmt.Errorf("vm: networker %T makes no per-vm taps (network.VMTaps)", deps.Networker)
		}
	}
	b := &vmBase{cfg: cfg, deps: deps, taps: taps, log: log}
	return &VM{b: b}, &Kubernetes{b: b}, nil
}

// vmState is the state file of one VM workload. It is written before
// anything it names is made (an intent), so Decommission removes exactly
// what this workload owns, and never the tap of another VM.
type vmState struct {
	// Kind is the workload type.
	Kind gridtypes.WorkloadType `json:"kind"`
	// NetID is the user network the VM is on.
	NetID pkg.NetID `json:"net_id,omitempty"`
	// VMTap records that the VM's tap on NetID is its own
	// (network.VMTapName of the network and the VM's name). Without it
	// (a state written before taps per VM) the VM runs on the network's
	// shared tap t-<netid>, which it owns and keeps while it exists.
	VMTap bool `json:"vm_tap,omitempty"`
	// PubTap is the working name of the public_ip workload whose tap
	// (p-<name>) this VM owns.
	PubTap string `json:"pub_tap,omitempty"`
	// OldNetID (with OldVMTap) and OldPubTap are the taps an update
	// moved away from, removed once the updated VM runs.
	OldNetID  pkg.NetID `json:"old_net_id,omitempty"`
	OldVMTap  bool      `json:"old_vm_tap,omitempty"`
	OldPubTap string    `json:"old_pub_tap,omitempty"`
	// Mount is the flist mount name; Flist the URL it holds.
	Mount string `json:"mount,omitempty"`
	Flist string `json:"flist,omitempty"`
	// Disks are the vdisk ids.
	Disks []string `json:"disks,omitzero"`
	// Spec fingerprints the machine that runs (empty: none started yet).
	Spec string `json:"spec,omitempty"`
	// Started is set once the VM ran: a NoKeepAlive VM is never started
	// twice.
	Started bool `json:"started,omitempty"`
	// Installed: k3os is installed on the kubernetes VM's disk.
	Installed bool `json:"installed,omitempty"`
}

func (b *vmBase) statePath(name string) string {
	return filepath.Join(b.cfg.StateDir, name+".json")
}

// decodeVMState parses a state file.
func decodeVMState(data []byte) (vmState, error) {
	var s vmState
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return vmState{}, fmt.Errorf("vm state: %w", err)
	}
	if dec.More() {
		return vmState{}, errors.New("vm state: trailing data")
	}
	return s, nil
}

// loadLocked returns the state of name; ok false when there is none.
func (b *vmBase) loadLocked(name string) (vmState, bool, error) {
	data, err := os.ReadFile(b.statePath(name))
	if errors.Is(err, os.ErrNotExist) {
		return vmState{}, false, nil
	}
	if err != nil {
		return vmState{}, false, fmt.Errorf("vm %s: state: %w: %w", name, provision.ErrTemporary, err)
	}
	s, err := decodeVMState(data)
	if err != nil {
		// A file we wrote atomically cannot be torn; treat garbage as
		// no state rather than block the workload for ever.
		b.log.Warn("vm state unreadable, ignored", "vm", name, "err", err)
		return vmState{}, false, nil
	}
	return s, true, nil
}

func (b *vmBase) saveLocked(name string, s vmState) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(b.cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("vm %s: state: %w: %w", name, provision.ErrTemporary, err)
	}
	if err := atomicfile.WriteFile(b.statePath(name), data, 0o600); err != nil {
		return fmt.Errorf("vm %s: state: %w: %w", name, provision.ErrTemporary, err)
	}
	return nil
}

func (b *vmBase) removeLocked(name string) error {
	if err := os.Remove(b.statePath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("vm %s: state: %w", name, err)
	}
	return atomicfile.SyncDir(b.cfg.StateDir)
}

func (b *vmBase) load(name string) (vmState, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.loadLocked(name)
}

func (b *vmBase) update(name string, fn func(*vmState)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, _, err := b.loadLocked(name)
	if err != nil {
		return err
	}
	fn(&s)
	return b.saveLocked(name, s)
}

// claim records, before anything is made, what the VM name is going to
// own: its kind, disks, flist mount, its tap on want.NetID and the public
// tap of want.PubTap (either may be empty). Any number of VMs share a
// network, each on its own tap. A public tap owned by another live VM
// workload is refused; a claim left by a workload that is no longer live
// (its decommission never ran) is taken over. A VM from before taps per
// VM that stays on its network keeps its shared tap (VMTap false: the
// tap's setup decides). It returns the previous state and whether there
// was one.
func (b *vmBase) claim(d *provision.Deployment, want vmState) (vmState, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	entries, err := os.ReadDir(b.cfg.StateDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return vmState{}, false, fmt.Errorf("vm %s: state: %w: %w", d.Name, provision.ErrTemporary, err)
	}
	var live func(string) bool
	for _, e := range entries {
		other, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || other == d.Name || e.IsDir() {
			continue
		}
		s, found, err := b.loadLocked(other)
		if err != nil || !found {
			continue
		}
		if want.PubTap == "" || s.PubTap != want.PubTap {
			continue
		}
		if live == nil {
			if live, err = liveVMs(d.Store); err != nil {
				return vmState{}, false, fmt.Errorf("vm %s: %w: %w", d.Name, provision.ErrTemporary, err)
			}
		}
		if live(other) {
			return vmState{}, false, &gridtypes.FieldError{Field: "public_ip",
				Reason: fmt.Sprintf("used by vm %s", other), Err: ErrPublicIPInUse}
		}
		b.log.Warn("stale vm claim taken over", "vm", d.Name, "from", other)
		s.PubTap = ""
		if err := b.saveLocked(other, s); err != nil {
			return vmState{}, false, err
		}
	}
	old, had, err := b.loadLocked(d.Name)
	if err != nil {
		return vmState{}, false, err
	}
	s := old
	s.Kind, s.NetID, s.VMTap, s.PubTap, s.Mount = want.Kind, want.NetID, want.VMTap, want.PubTap, want.Mount
	if old.NetID != "" && old.NetID == want.NetID && !old.VMTap {
		s.VMTap = false // a VM from before taps per VM: see ensureTap
	}
	s.Disks = append([]string(nil), old.Disks...)
	for _, id := range want.Disks {
		if !slices.Contains(s.Disks, id) {
			s.Disks = append(s.Disks, id)
		}
	}
	if old.NetID != "" && old.NetID != want.NetID || old.PubTap != "" && old.PubTap != want.PubTap {
		// An update moves the VM: the old taps stay claimed until
		// release drops them.
		s.OldNetID, s.OldVMTap, s.OldPubTap = old.NetID, old.VMTap, old.PubTap
	}
	return old, had, b.saveLocked(d.Name, s)
}

// restore puts back the state of name as it was before claim (on failure).
func (b *vmBase) restore(name string, old vmState, had bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if had {
		_ = b.saveLocked(name, old)
	} else {
		_ = b.removeLocked(name)
	}
}

// release, after a successful provision, records what the VM now runs
// with and removes what an update left behind: its tap on the network it
// left, the tap of the public IP it no longer uses (unless another VM
// claimed it since) and the disks it no longer has.
func (b *vmBase) release(name string, keepDisks []string, fn func(*vmState)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, _, err := b.loadLocked(name)
	if err != nil {
		return err
	}
	fn(&s)
	var errs []error
	if err := b.removeTapsLocked(name, s, false); err != nil {
		errs = append(errs, err)
	}
	if s.OldPubTap != "" && s.OldPubTap != s.PubTap && !b.claimedLocked(name, "", s.OldPubTap) {
		if err := b.deps.Networker.RemovePubTap(s.OldPubTap); err != nil && !notFound(err) {
			errs = append(errs, fmt.Errorf("public tap of %s: %w", s.OldPubTap, err))
		}
	}
	var kept []string
	for _, id := range s.Disks {
		if slices.Contains(keepDisks, id) {
			kept = append(kept, id)
		} else if err := b.deps.VDisks.Deallocate(id); err != nil && !notFound(err) {
			errs = append(errs, fmt.Errorf("disk %s: %w", id, err))
			kept = append(kept, id)
		}
	}
	if len(errs) == 0 {
		s.OldNetID, s.OldVMTap, s.OldPubTap = "", false, ""
	} else {
		// The VM runs; what is left stays in the state, for the next
		// provision or the decommission.
		b.log.Warn("vm update cleanup", "vm", name, "err", errors.Join(errs...))
	}
	s.Disks = kept
	return b.saveLocked(name, s)
}

// claimedLocked reports whether a VM other than name claims the shared tap
// t-<sharedNet> (a VM from before taps per VM) or the public tap pubTap.
func (b *vmBase) claimedLocked(name string, sharedNet pkg.NetID, pubTap string) bool {
	entries, _ := os.ReadDir(b.cfg.StateDir)
	for _, e := range entries {
		other, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || other == name {
			continue
		}
		s, found, err := b.loadLocked(other)
		if err != nil || !found {
			continue
		}
		if sharedNet != "" && s.NetID == sharedNet && !s.VMTap || pubTap != "" && s.PubTap == pubTap {
			return true
		}
	}
	return false
}

// liveVMs returns whether a working name is a vm or kubernetes workload
// that holds capacity on the node. Without a store every claim is live.
func liveVMs(st provision.Store) (func(name string) bool, error) {
	if st == nil {
		return func(string) bool { return true }, nil
	}
	recs, err := st.List()
	if err != nil {
		return nil, err
	}
	live := map[string]bool{}
	for _, r := range recs {
		t := r.Reservation.Type
		if (t == gridtypes.TypeVM || t == gridtypes.TypeKubernetes) && r.State.Live() && r.ReplacedBy == 0 {
			live[r.Name] = true
		}
	}
	return func(name string) bool { return live[name] }, nil
}

// privateNIC is the interface of a VM on its user network.
type privateNIC struct {
	netID pkg.NetID
	ip    net.IP
	iface pkg.VMIface // without Tap
}

// privateNetwork checks that the user network name is on this node and ip
// is a host address of its subnet here, and returns the interface.
func (b *vmBase) privateNetwork(d *provision.Deployment, field, name, ipText string) (privateNIC, error) {
	netID := pkg.NetID(gridtypes.NetworkID(d.Reservation.UserID, name))
	sub, err := b.deps.Networker.GetSubnet(netID)
	if err != nil {
		return privateNIC{}, fmt.Errorf("network %q is not on this node yet: %w: %w", name, provision.ErrDependency, err)
	}
	ip := net.ParseIP(ipText).To4()
	if ip == nil {
		return privateNIC{}, &gridtypes.FieldError{Field: field, Reason: fmt.Sprintf("%q is not an IPv4 address", ipText), Err: network.ErrInvalidAddress}
	}
	gw4, gw6, err := b.deps.Networker.GetDefaultGwIP(netID)
	if err != nil {
		return privateNIC{}, fmt.Errorf("network %q: %w: %w", name, provision.ErrDependency, err)
	}
	if !hostAddress(sub, ip) || ip.Equal(gw4) {
		return privateNIC{}, &gridtypes.FieldError{Field: field,
			Reason: fmt.Sprintf("%s is not a free host address of the network's subnet %s on this node", ip, sub.String()), Err: network.ErrInvalidAddress}
	}
	rng, err := b.deps.Networker.GetNet(netID)
	if err != nil {
		return privateNIC{}, fmt.Errorf("network %q: %w: %w", name, provision.ErrDependency, err)
	}
	v6, err := b.deps.Networker.GetIPv6From4(netID, ip)
	if err != nil {
		return privateNIC{}, fmt.Errorf("network %q: ipv6 of %s: %w", name, ip, err)
	}
	return privateNIC{netID: netID, ip: ip, iface: pkg.VMIface{
		IP4AddressCIDR: net.IPNet{IP: ip, Mask: sub.Mask},
		IP4GatewayIP:   gw4,
		IP4Net:         rng,
		IP6AddressCIDR: v6,
		IP6GatewayIP:   gw6,
	}}, nil
}

// hostAddress reports whether ip is in sub and is neither its network nor
// its broadcast address.
func hostAddress(sub net.IPNet, ip net.IP) bool {
	if !sub.Contains(ip) {
		return false
	}
	p, ok := netip.AddrFromSlice(ip.To4())
	ones, bits := sub.Mask.Size()
	if !ok || bits != 32 {
		return false
	}
	pfx := netip.PrefixFrom(p, ones).Masked()
	if p == pfx.Addr() {
		return false
	}
	if ones < 31 {
		b := pfx.Addr().As4()
		host := uint32(1)<<(32-ones) - 1
		v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
		if p == netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}) {
			return false
		}
	}
	return true
}

// publicNIC is the interface of a VM on a public IP.
type publicNIC struct {
	// name is the public_ip workload's working name (the tap is p-<name>).
	name  string
	ip    netip.Prefix
	iface pkg.VMIface // without Tap
}

// publicIP resolves the public_ip workload id the VM asks for: it must be
// deployed on this node by the same user (one still being deployed, or not
// arrived yet, is waited for). The interface gets the MAC the anti-spoofing
// filter allows, the IP with its prefix, the gateway of the farm (or the
// node's own public gateway), and IPv6 by SLAAC.
func (b *vmBase) publicIP(ctx context.Context, d *provision.Deployment, id uint64) (publicNIC, error) {
	if !b.deps.Networker.PublicIPv4Support() {
		return publicNIC{}, &gridtypes.FieldError{Field: "public_ip", Reason: "not supported by this node", Err: ErrNoPublicIPv4}
	}
	if d.Store == nil {
		return publicNIC{}, fmt.Errorf("public_ip %d: no store: %w", id, provision.ErrTemporary)
	}
	rec, err := d.Store.Get(id)
	for err == nil && rec.ReplacedBy != 0 {
		rec, err = d.Store.Get(rec.ReplacedBy)
	}
	if errors.Is(err, provision.ErrNotFound) {
		return publicNIC{}, fmt.Errorf("public_ip %d: not on this node yet: %w", id, provision.ErrDependency)
	}
	if err != nil {
		return publicNIC{}, fmt.Errorf("public_ip %d: %w: %w", id, provision.ErrTemporary, err)
	}
	switch {
	case rec.Reservation.Type != gridtypes.TypePublicIP:
		return publicNIC{}, &gridtypes.FieldError{Field: "public_ip", Reason: fmt.Sprintf("%d is a %s workload", id, rec.Reservation.Type)}
	case rec.Reservation.UserID != d.Reservation.UserID:
		return publicNIC{}, &gridtypes.FieldError{Field: "public_ip", Reason: strconv.FormatUint(id, 10), Err: ErrForeignPublicIP}
	case rec.State == provision.StateDeploying:
		return publicNIC{}, fmt.Errorf("public_ip %d: still being deployed: %w", id, provision.ErrDependency)
	case rec.State != provision.StateDeployed:
		return publicNIC{}, &gridtypes.FieldError{Field: "public_ip", Reason: fmt.Sprintf("%d is %s", id, rec.State)}
	}
	w, err := rec.Reservation.Workload()
	if err != nil {
		return publicNIC{}, fmt.Errorf("public_ip %d: %w", id, err)
	}
	pw, ok := w.(*gridtypes.PublicIP)
	if !ok {
		return publicNIC{}, fmt.Errorf("public_ip %d: workload is a %T", id, w)
	}
	pfx, err := netip.ParsePrefix(pw.IPAddress)
	if err != nil || !pfx.Addr().Is4() {
		return publicNIC{}, fmt.Errorf("public_ip %d: ipaddress %q is not an IPv4 prefix", id, pw.IPAddress)
	}
	if err := network.CheckPubTapID(rec.Name); err != nil {
		return publicNIC{}, fmt.Errorf("public_ip %d: %w", id, err)
	}
	gw, err := b.publicGateway(ctx, pfx)
	if err != nil {
		return publicNIC{}, fmt.Errorf("public_ip %d (%s): %w", id, pfx, err)
	}
	return publicNIC{name: rec.Name, ip: pfx, iface: pkg.VMIface{
		MAC:            PublicIPMAC(pfx.Addr()).String(),
		IP4AddressCIDR: net.IPNet{IP: pfx.Addr().AsSlice(), Mask: net.CIDRMask(pfx.Bits(), 32)},
		IP4GatewayIP:   gw.AsSlice(),
		Public:         true,
	}}, nil
}

// publicGateway is the gateway of a public IP: the farm's (Gateways), or
// the node's own public gateway.
func (b *vmBase) publicGateway(ctx context.Context, ip netip.Prefix) (netip.Addr, error) {
	if g := b.deps.Gateways; g != nil {
		gw, err := g.PublicGateway(ctx, ip)
		switch {
		case err == nil && gw.Is4():
			return gw, nil
		case err != nil && !errors.Is(err, os.ErrNotExist) && !b.cfg.PublicGateway4.IsValid():
			return netip.Addr{}, fmt.Errorf("farm gateway: %w: %w", provision.ErrTemporary, err)
		}
	}
	if b.cfg.PublicGateway4.IsValid() {
		return b.cfg.PublicGateway4, nil
	}
	return netip.Addr{}, ErrNoPublicGateway
}

// ensureTap makes the tap of VM name on network netID unless it exists.
// created tells whether this call made it. A VM from before taps per VM
// (its claimed state has no VMTap) keeps running on the network's shared
// tap while that exists; once it is gone (a reboot), the VM moves to a tap
// of its own, recorded in its state before it is made.
func (b *vmBase) ensureTap(netID pkg.NetID, name string) (tap string, created bool, err error) {
	st, _, err := b.load(name)
	if err != nil {
		return "", false, err
	}
	if st.NetID == netID && !st.VMTap {
		exists, err := b.deps.Networker.TapExists(netID)
		if err != nil {
			return "", false, fmt.Errorf("tap of %s: %w: %w", netID, provision.ErrTemporary, err)
		}
		if exists {
			return "t-" + string(netID), false, nil
		}
		if err := b.update(name, func(s *vmState) { s.VMTap = true }); err != nil {
			return "", false, err
		}
	}
	exists, err := b.taps.VMTapExists(netID, name)
	if err != nil {
		return "", false, tapErr(netID, err)
	}
	if exists {
		return network.VMTapName(netID, name), false, nil
	}
	if tap, err = b.taps.SetupVMTap(netID, name); err != nil {
		return "", false, tapErr(netID, err)
	}
	return tap, true, nil
}

// tapErr classifies an error of the VM tap methods: a name the network
// module refuses is permanent, the rest is retried.
func tapErr(netID pkg.NetID, err error) error {
	if errors.Is(err, network.ErrInvalidName) || errors.Is(err, network.ErrNameTooLong) {
		return fmt.Errorf("tap of %s: %w", netID, err)
	}
	return fmt.Errorf("tap of %s: %w: %w", netID, provision.ErrTemporary, err)
}

// removeTapsLocked removes the taps of VM name on user networks that s
// names: with current, its tap on s.NetID (and, for a VM from before taps
// per VM, the network's shared tap); then what an update moved it away
// from, unless it still runs there: its tap on the network it left, and
// the shared tap it had (unless another VM from before claims that one).
// Absent taps are fine.
func (b *vmBase) removeTapsLocked(name string, s vmState, current bool) error {
	var errs []error
	remove := func(id pkg.NetID, own, shared bool) {
		if own {
			if err := b.taps.RemoveVMTap(id, name); err != nil && !notFound(err) {
				errs = append(errs, fmt.Errorf("tap of %s: %w", id, err))
			}
		}
		if shared {
			if err := b.deps.Networker.RemoveTap(id); err != nil && !notFound(err) {
				errs = append(errs, fmt.Errorf("shared tap of %s: %w", id, err))
			}
		}
	}
	if current && s.NetID != "" {
		remove(s.NetID, true, !s.VMTap)
	}
	if id := s.OldNetID; id != "" {
		stillShared := id == s.NetID && !s.VMTap
		remove(id, id != s.NetID, !s.OldVMTap && !stillShared && !b.claimedLocked(name, id, ""))
	}
	return errors.Join(errs...)
}

// ensurePubTap makes the public tap of the public_ip workload name.
func (b *vmBase) ensurePubTap(name string) (tap string, created bool, err error) {
	exists, err := b.deps.Networker.PubTapExists(name)
	if err != nil {
		return "", false, fmt.Errorf("public tap of %s: %w: %w", name, provision.ErrTemporary, err)
	}
	if exists {
		return "p-" + name, false, nil
	}
	tap, err = b.deps.Networker.SetupPubTap(name)
	if errors.Is(err, network.ErrExists) {
		return "p-" + name, false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("public tap of %s: %w: %w", name, provision.ErrTemporary, err)
	}
	return tap, true, nil
}

// imageFile returns the absolute path of the file rel inside the flist
// mounted at root, refusing anything that leads out of the mount (".."
// or a symlink: QEMU would read a host file as kernel or initrd).
func imageFile(root, field, rel string) (string, error) {
	p := filepath.Join(root, filepath.Clean("/"+rel))
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", &gridtypes.FieldError{Field: field, Reason: fmt.Sprintf("%q is not in the flist", rel), Err: vm.ErrKernelNotFound}
	}
	rroot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", fmt.Errorf("flist mount %s: %w", root, err)
	}
	if r, err := filepath.Rel(rroot, real); err != nil || r == ".." || strings.HasPrefix(r, "../") {
		return "", &gridtypes.FieldError{Field: field, Reason: fmt.Sprintf("%q leads out of the flist", rel), Err: vm.ErrInvalidVM}
	}
	fi, err := os.Stat(real)
	if err != nil || !fi.Mode().IsRegular() {
		return "", &gridtypes.FieldError{Field: field, Reason: fmt.Sprintf("%q is not a file of the flist", rel), Err: vm.ErrKernelNotFound}
	}
	return real, nil
}

// runVM starts v unless a VM of that name runs with the same spec; a VM
// with another spec (an update) is replaced. It returns whether v was
// started.
func (b *vmBase) runVM(ctx context.Context, v pkg.VM, spec string, st vmState) (bool, error) {
	status, err := b.deps.VMs.Status(ctx, v.Name)
	switch {
	case err == nil && st.Spec == spec && (status.State != vm.StateStopped || v.NoKeepAlive):
		return false, nil // runs (or keep-alive restarts it); a NoKeepAlive one that ended stays so
	case err == nil:
		if err := b.deps.VMs.Delete(v.Name); err != nil {
			return false, vmErr(v.Name, err)
		}
	case !errors.Is(err, vm.ErrNotFound):
		return false, vmErr(v.Name, err)
	case v.NoKeepAlive && st.Started && st.Spec == spec:
		return false, nil // a one-shot VM that already ran is not run again
	}
	if err := b.deps.VMs.Run(v); err != nil && !errors.Is(err, vm.ErrExists) {
		return false, vmErr(v.Name, err)
	}
	return true, nil
}

// vmErr classifies an error of the VM module: bad input is permanent, a
// module not ready is temporary.
func vmErr(name string, err error) error {
	switch {
	case errors.Is(err, vm.ErrInvalidVM), errors.Is(err, vm.ErrStart):
		return fmt.Errorf("vm %s: %w", name, err)
	default:
		return fmt.Errorf("vm %s: %w: %w", name, provision.ErrTemporary, err)
	}
}

// teardown removes everything the state of name says it owns, and the
// VMs named in vms: VMs first, then taps, disks, the flist mount, and the
// state file last. Absent objects are fine.
func (b *vmBase) teardown(ctx context.Context, name string, s vmState, vms ...string) error {
	var errs []error
	for _, n := range vms {
		// Delete, not Status first: before the module has adopted its
		// VMs (agent restart) Status does not know a running one,
		// Delete fails with ErrNotReady and the engine retries.
		if err := b.deps.VMs.Delete(n); err != nil && !errors.Is(err, vm.ErrNotFound) {
			errs = append(errs, fmt.Errorf("vm %s: %w", n, err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...) // never pull a tap or disk from under a running VM
	}
	b.mu.Lock()
	if err := b.removeTapsLocked(name, s, true); err != nil {
		errs = append(errs, err)
	}
	for _, pub := range []string{s.PubTap, s.OldPubTap} {
		if pub == "" || pub == s.OldPubTap && b.claimedLocked(name, "", pub) {
			continue
		}
		if err := b.deps.Networker.RemovePubTap(pub); err != nil && !notFound(err) {
			errs = append(errs, fmt.Errorf("public tap of %s: %w", pub, err))
		}
	}
	b.mu.Unlock()
	for _, id := range s.Disks {
		if err := b.deps.VDisks.Deallocate(id); err != nil && !notFound(err) {
			errs = append(errs, fmt.Errorf("disk %s: %w", id, err))
		}
	}
	if s.Mount != "" {
		if err := b.deps.Flister.NamedUmount(s.Mount); err != nil && !notFound(err) {
			errs = append(errs, fmt.Errorf("flist mount %s: %w", s.Mount, err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.removeLocked(name)
}

// nameservers returns the configured DNS servers as net.IPs.
func (b *vmBase) nameservers() []net.IP {
	out := make([]net.IP, 0, len(b.cfg.Nameservers))
	for _, a := range b.cfg.Nameservers {
		out = append(out, a.AsSlice())
	}
	return out
}
