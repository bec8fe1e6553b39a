package pkg_test

// This file proves, at compile time, that every symbol of the seed API
// (specs/seed-api.md) exists with the seed's types: method expressions pin
// each method's name and signature, generic helpers pin underlying types,
// struct literals pin every field name and type. TestSeedMethodCounts adds
// that no interface has methods the seed does not list.

import (
	"context"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/mem"
	gnet "github.com/shirou/gopsutil/v4/net"
	"github.com/vishvananda/netlink"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/container/logger"
	"github.com/zos-go/zos/pkg/container/stats"
	"github.com/zos-go/zos/pkg/types"
)

// underlying-type pins: these only compile when T's underlying type is the
// one named.
func isString[T ~string](T) {}
func isUint64[T ~uint64](T) {}
func sameType[T any](T, T)  {}
func valueOf[T any](v T) T  { return v }

// typed zero values; assigning them to a field proves the field's type.
var (
	str     string
	strs    []string
	u       uint
	u8      uint8
	u16     uint16
	u64     uint64
	i       int
	i64     int64
	b       bool
	e       error
	ip      net.IP
	ips     []net.IP
	ipnet   net.IPNet
	tipnet  types.IPNet
	tipnets []types.IPNet
	tm      time.Time
	f64     float64
)

// Constants.
var (
	_ = [...]string{pkg.ZDBModeUser, pkg.ZDBModeSeq} // untyped string constants
	_ = [...]pkg.DeviceType{pkg.SSDDevice, pkg.HDDDevice}
	_ = [...]pkg.RaidProfile{pkg.Single, pkg.Raid0, pkg.Raid1, pkg.Raid10}
)

// Variables.
var (
	_ *pkg.MountOptions  = &pkg.DefaultMountOptions
	_ *pkg.MountOptions  = &pkg.ReadOnlyMountOptions
	_ *types.Version     = &pkg.NetworkSchemaV1
	_ *types.Version     = &pkg.NetworkSchemaV2
	_ *types.Version     = &pkg.NetworkSchemaLatestVersion
	_ *pkg.StoragePolicy = &pkg.DefaultPolicy
	_ *pkg.StoragePolicy = &pkg.NullPolicy
)

// Named non-struct types and their underlying types.
func init() {
	isString(pkg.ContainerID(""))
	isString(pkg.DeviceType(""))
	isString(pkg.NetID(""))
	isString(pkg.RaidProfile(""))
	isString(pkg.StrIdentifier(""))
	isString(pkg.ZDBMode(""))
	isUint64(pkg.FarmID(0))
	var _ map[string]pkg.DiskIOCountersStat = pkg.DisksIOCountersStat(nil)
	var _ []pkg.NicIOCounterStat = pkg.NicsIOCounterStat(nil)
	var _ []pkg.NetlinkAddress = pkg.NetlinkAddresses(nil)
	var _ map[string]pkg.PoolStats = pkg.PoolsStats(nil)
	// conversions compile only between identical underlying structs
	_ = netlink.Addr(pkg.NetlinkAddress{})
	_ = pkg.NetlinkAddress(netlink.Addr{})
	_ = mem.VirtualMemoryStat(pkg.VirtualMemoryStat{})
	_ = pkg.VirtualMemoryStat(mem.VirtualMemoryStat{})
}

// Struct types, every field named with its type.
var (
	_ = pkg.Allocation{VolumeID: str, VolumePath: str}
	_ = pkg.BrokenDevice{Path: str, Err: e}
	_ = pkg.BrokenPool{Label: str, Err: e}
	_ = pkg.Container{
		Name: str, RootFS: str, Env: strs, WorkingDir: str, Network: pkg.NetworkInfo{Namespace: str},
		Mounts: []pkg.MountInfo{{Source: str, Target: str}}, Entrypoint: str, Interactive: b,
		CPU: u, Memory: u64, Logs: []logger.Logs{{Type: str, Data: logger.LogsRedis{Stdout: str, Stderr: str}}},
		Stats: []stats.Stats{{Type: str, Data: stats.Redis{Endpoint: str}}},
	}
	_ = pkg.ContainerNetworkConfig{IPs: strs, PublicIP6: b, YggdrasilIP: b}
	_ = pkg.DiskIOCountersStat{IOCountersStat: disk.IOCountersStat{}, Time: tm}
	_ = pkg.ErrInvalidDeviceType{DeviceType: pkg.DeviceType(str)}
	_ = pkg.ErrNotEnoughSpace{DeviceType: pkg.DeviceType(str)}
	_ = pkg.Filesystem{ID: i, Path: str, Usage: pkg.Usage{Size: u64, Used: u64}, Name: str, FsType: str, DiskType: pkg.DeviceType(str)}
	_ = pkg.Member{Namespace: str, IPv6: ip, IPv4: ip, YggdrasilIP: ip}
	_ = pkg.MountInfo{Source: str, Target: str}
	_ = pkg.MountOptions{ReadOnly: b, Limit: u64, Type: pkg.DeviceType(str)}
	_ = pkg.NetResource{
		Name: str, NetID: pkg.NetID(str), NetworkIPRange: tipnet, NodeID: str, Subnet: tipnet,
		WGPrivateKey: str, WGPublicKey: str, WGListenPort: u16, Peers: []pkg.Peer{},
	}
	_ = pkg.Network{Name: str, NetID: pkg.NetID(str), IPRange: tipnet, NetResources: []pkg.NetResource{}}
	_ = pkg.NetworkInfo{Namespace: str}
	_ = pkg.NicIOCounterStat{IOCountersStat: gnet.IOCountersStat{}, RateOut: u64, RateIn: u64}
	_ = pkg.Peer{Subnet: tipnet, WGPublicKey: str, AllowedIPs: tipnets, Endpoint: str}
	_ = pkg.PoolStats{UsageStat: disk.UsageStat{}, Counters: map[string]disk.IOCountersStat{}}
	_ = pkg.ProvisionCounters{Container: i64, Volume: i64, Network: i64, ZDB: i64, VM: i64, Debug: i64}
	_ = pkg.StoragePolicy{Raid: pkg.RaidProfile(str), Disks: u8, MaxPools: u8}
	_ = pkg.TimesStat{TimesStat: cpu.TimesStat{}, Percent: f64, Time: tm}
	_ = pkg.Usage{Size: u64, Used: u64}
	_ = pkg.VDisk{Path: str, Size: i64}
	_ = pkg.VM{
		Name: str, CPU: u8, Memory: i64, Network: pkg.VMNetworkInfo{}, KernelImage: str, InitrdImage: str,
		KernelArgs: str, Disks: []pkg.VMDisk{}, NoKeepAlive: b,
	}
	_ = pkg.VMDisk{Path: str, ReadOnly: b, Root: b}
	_ = pkg.VMIface{
		Tap: str, MAC: str, IP4AddressCIDR: ipnet, IP4GatewayIP: ip, IP4Net: ipnet,
		IP6AddressCIDR: ipnet, IP6GatewayIP: ip, Public: b,
	}
	_ = pkg.VMInfo{HtEnabled: b, Memory: i64, CPU: i64}
	_ = pkg.VMNetworkInfo{Ifaces: []pkg.VMIface{}, Nameservers: ips, NewStyle: b}
	_ = pkg.ZDBNamespace{ID: str, DiskType: pkg.DeviceType(str), Size: u64, Mode: pkg.ZDBMode(str), Password: str, Port: i}
)

// Methods on concrete types.
var (
	_ func(pkg.RaidProfile) error           = pkg.RaidProfile.Validate
	_ func(*pkg.NetResource) error          = (*pkg.NetResource).Valid
	_ func(pkg.ErrNotEnoughSpace) string    = pkg.ErrNotEnoughSpace.Error
	_ func(pkg.ErrInvalidDeviceType) string = pkg.ErrInvalidDeviceType.Error
	_ func(pkg.StrIdentifier) string        = pkg.StrIdentifier.Identity
	_ func(*pkg.DiskIOCountersStat) string  = (*pkg.DiskIOCountersStat).String
	_ error                                 = pkg.ErrNotEnoughSpace{}
	_ error                                 = pkg.ErrInvalidDeviceType{}
	_ pkg.Identifier                        = pkg.StrIdentifier("")
)

// Interface methods, by method expression.
var (
	_ func(pkg.ContainerModule, string, pkg.Container) (pkg.ContainerID, error) = pkg.ContainerModule.Run
	_ func(pkg.ContainerModule) ([]string, error)                               = pkg.ContainerModule.ListNS
	_ func(pkg.ContainerModule, string) ([]pkg.ContainerID, error)              = pkg.ContainerModule.List
	_ func(pkg.ContainerModule, string, pkg.ContainerID) (pkg.Container, error) = pkg.ContainerModule.Inspect
	_ func(pkg.ContainerModule, string, pkg.ContainerID) error                  = pkg.ContainerModule.Delete

	_ func(pkg.Flister, string, string, pkg.MountOptions) (string, error)         = pkg.Flister.Mount
	_ func(pkg.Flister, string, string, string, pkg.MountOptions) (string, error) = pkg.Flister.NamedMount
	_ func(pkg.Flister, string) error                                             = pkg.Flister.Umount
	_ func(pkg.Flister, string) error                                             = pkg.Flister.NamedUmount
	_ func(pkg.Flister, string) (string, error)                                   = pkg.Flister.HashFromRootPath
	_ func(pkg.Flister, string) (string, error)                                   = pkg.Flister.FlistHash

	_ func(pkg.HostMonitor, context.Context) <-chan time.Duration = pkg.HostMonitor.Uptime

	_ func(pkg.Identifier) string = pkg.Identifier.Identity

	_ func(pkg.IdentityManager) pkg.StrIdentifier               = pkg.IdentityManager.NodeID
	_ func(pkg.IdentityManager) (pkg.FarmID, error)             = pkg.IdentityManager.FarmID
	_ func(pkg.IdentityManager, []byte) ([]byte, error)         = pkg.IdentityManager.Sign
	_ func(pkg.IdentityManager, []byte, []byte) error           = pkg.IdentityManager.Verify
	_ func(pkg.IdentityManager, []byte) ([]byte, error)         = pkg.IdentityManager.Encrypt
	_ func(pkg.IdentityManager, []byte) ([]byte, error)         = pkg.IdentityManager.Decrypt
	_ func(pkg.IdentityManager, []byte, []byte) ([]byte, error) = pkg.IdentityManager.EncryptECDH
	_ func(pkg.IdentityManager, []byte, []byte) ([]byte, error) = pkg.IdentityManager.DecryptECDH
	_ func(pkg.IdentityManager) []byte                          = pkg.IdentityManager.PrivateKey

	_ func(pkg.Networker) error                                                              = pkg.Networker.Ready
	_ func(pkg.Networker, pkg.NetResource) (string, error)                                   = pkg.Networker.CreateNR
	_ func(pkg.Networker, pkg.NetResource) error                                             = pkg.Networker.DeleteNR
	_ func(pkg.Networker, pkg.NetID, string, pkg.ContainerNetworkConfig) (pkg.Member, error) = pkg.Networker.Join
	_ func(pkg.Networker, pkg.NetID, string) error                                           = pkg.Networker.Leave
	_ func(pkg.Networker, net.HardwareAddr) (string, error)                                  = pkg.Networker.ZDBPrepare
	_ func(pkg.Networker, string) error                                                      = pkg.Networker.ZDBDestroy
	_ func(pkg.Networker, pkg.NetID) (string, error)                                         = pkg.Networker.SetupTap
	_ func(pkg.Networker, pkg.NetID) (bool, error)                                           = pkg.Networker.TapExists
	_ func(pkg.Networker, pkg.NetID) error                                                   = pkg.Networker.RemoveTap
	_ func(pkg.Networker) bool                                                               = pkg.Networker.PublicIPv4Support
	_ func(pkg.Networker, string) (string, error)                                            = pkg.Networker.SetupPubTap
	_ func(pkg.Networker, string) (bool, error)                                              = pkg.Networker.PubTapExists
	_ func(pkg.Networker, string) error                                                      = pkg.Networker.RemovePubTap
	_ func(pkg.Networker, string) error                                                      = pkg.Networker.DisconnectPubTap
	_ func(pkg.Networker, pkg.NetID) (net.IPNet, error)                                      = pkg.Networker.GetSubnet
	_ func(pkg.Networker, pkg.NetID) (net.IPNet, error)                                      = pkg.Networker.GetNet
	_ func(pkg.Networker) (net.IPNet, error)                                                 = pkg.Networker.GetPublicIPv6Subnet
	_ func(pkg.Networker, pkg.NetID) (net.IP, net.IP, error)                                 = pkg.Networker.GetDefaultGwIP
	_ func(pkg.Networker, pkg.NetID, net.IP) (net.IPNet, error)                              = pkg.Networker.GetIPv6From4
	_ func(pkg.Networker, string, string) ([]net.IP, error)                                  = pkg.Networker.Addrs
	_ func(pkg.Networker, context.Context) <-chan pkg.NetlinkAddresses                       = pkg.Networker.ZOSAddresses
	_ func(pkg.Networker, context.Context) <-chan pkg.NetlinkAddresses                       = pkg.Networker.DMZAddresses
	_ func(pkg.Networker, context.Context) <-chan pkg.NetlinkAddresses                       = pkg.Networker.YggAddresses
	_ func(pkg.Networker, context.Context) <-chan pkg.NetlinkAddresses                       = pkg.Networker.PublicAddresses

	_ func(pkg.Provision, context.Context) <-chan pkg.ProvisionCounters = pkg.Provision.Counters
	_ func(pkg.Provision, string, string) error                         = pkg.Provision.DecommissionCached

	_ func(pkg.StorageModule, string, uint64, pkg.DeviceType) (pkg.Filesystem, error)              = pkg.StorageModule.CreateFilesystem
	_ func(pkg.StorageModule, string) error                                                        = pkg.StorageModule.ReleaseFilesystem
	_ func(pkg.StorageModule) ([]pkg.Filesystem, error)                                            = pkg.StorageModule.ListFilesystems
	_ func(pkg.StorageModule, string) (pkg.Filesystem, error)                                      = pkg.StorageModule.Path
	_ func(pkg.StorageModule) (pkg.Filesystem, error)                                              = pkg.StorageModule.GetCacheFS
	_ func(pkg.StorageModule, string, pkg.DeviceType, uint64, pkg.ZDBMode) (pkg.Allocation, error) = pkg.StorageModule.Allocate
	_ func(pkg.StorageModule, string) (pkg.Allocation, error)                                      = pkg.StorageModule.Find
	_ func(pkg.StorageModule, pkg.DeviceType) (uint64, error)                                      = pkg.StorageModule.Total
	_ func(pkg.StorageModule) []pkg.BrokenPool                                                     = pkg.StorageModule.BrokenPools
	_ func(pkg.StorageModule) []pkg.BrokenDevice                                                   = pkg.StorageModule.BrokenDevices
	_ func(pkg.StorageModule, context.Context) <-chan pkg.PoolsStats                               = pkg.StorageModule.Monitor

	_ func(pkg.SystemMonitor, context.Context) <-chan pkg.VirtualMemoryStat   = pkg.SystemMonitor.Memory
	_ func(pkg.SystemMonitor, context.Context) <-chan pkg.TimesStat           = pkg.SystemMonitor.CPU
	_ func(pkg.SystemMonitor, context.Context) <-chan pkg.DisksIOCountersStat = pkg.SystemMonitor.Disks
	_ func(pkg.SystemMonitor, context.Context) <-chan pkg.NicsIOCounterStat   = pkg.SystemMonitor.Nics

	_ func(pkg.VDiskModule, string, int64) (string, error) = pkg.VDiskModule.Allocate
	_ func(pkg.VDiskModule, string) error                  = pkg.VDiskModule.Deallocate
	_ func(pkg.VDiskModule, string) bool                   = pkg.VDiskModule.Exists
	_ func(pkg.VDiskModule, string) (pkg.VDisk, error)     = pkg.VDiskModule.Inspect
	_ func(pkg.VDiskModule) ([]pkg.VDisk, error)           = pkg.VDiskModule.List

	_ func(pkg.VMModule, pkg.VM) error               = pkg.VMModule.Run
	_ func(pkg.VMModule, string) (pkg.VMInfo, error) = pkg.VMModule.Inspect
	_ func(pkg.VMModule, string) error               = pkg.VMModule.Delete
	_ func(pkg.VMModule, string) bool                = pkg.VMModule.Exists
	_ func(pkg.VMModule, string) (string, error)     = pkg.VMModule.Logs

	_ func(pkg.VersionMonitor, context.Context) <-chan types.Version = pkg.VersionMonitor.Version

	_ func(pkg.VolumeAllocater, string, uint64, pkg.DeviceType) (pkg.Filesystem, error) = pkg.VolumeAllocater.CreateFilesystem
	_ func(pkg.VolumeAllocater, string) error                                           = pkg.VolumeAllocater.ReleaseFilesystem
	_ func(pkg.VolumeAllocater) ([]pkg.Filesystem, error)                               = pkg.VolumeAllocater.ListFilesystems
	_ func(pkg.VolumeAllocater, string) (pkg.Filesystem, error)                         = pkg.VolumeAllocater.Path
	_ func(pkg.VolumeAllocater) (pkg.Filesystem, error)                                 = pkg.VolumeAllocater.GetCacheFS

	_ func(pkg.ZDBAllocater, string, pkg.DeviceType, uint64, pkg.ZDBMode) (pkg.Allocation, error) = pkg.ZDBAllocater.Allocate
	_ func(pkg.ZDBAllocater, string) (pkg.Allocation, error)                                      = pkg.ZDBAllocater.Find

	// StorageModule embeds both allocaters.
	_ pkg.VolumeAllocater = pkg.StorageModule(nil)
	_ pkg.ZDBAllocater    = pkg.StorageModule(nil)
)

// TestSeedMethodCounts checks that the interfaces have exactly the methods
// the seed lists (the method expressions above prove they have at least
// those), and that the concrete types carry no method beyond the seed's
// plus the String of TimesStat and the promoted ones of embedded types.
func TestSeedMethodCounts(t *testing.T) {
	ifaces := []struct {
		typ  reflect.Type
		want int
	}{
		{reflect.TypeFor[pkg.ContainerModule](), 5},
		{reflect.TypeFor[pkg.Flister](), 6},
		{reflect.TypeFor[pkg.HostMonitor](), 1},
		{reflect.TypeFor[pkg.Identifier](), 1},
		{reflect.TypeFor[pkg.IdentityManager](), 9},
		{reflect.TypeFor[pkg.Networker](), 25},
		{reflect.TypeFor[pkg.Provision](), 2},
		{reflect.TypeFor[pkg.StorageModule](), 11},
		{reflect.TypeFor[pkg.SystemMonitor](), 4},
		{reflect.TypeFor[pkg.VDiskModule](), 5},
		{reflect.TypeFor[pkg.VMModule](), 5},
		{reflect.TypeFor[pkg.VersionMonitor](), 1},
		{reflect.TypeFor[pkg.VolumeAllocater](), 5},
		{reflect.TypeFor[pkg.ZDBAllocater](), 2},
	}
	for _, tt := range ifaces {
		if got := tt.typ.NumMethod(); got != tt.want {
			t.Errorf("%s has %d methods, the seed lists %d", tt.typ, got, tt.want)
		}
	}
	methods := []struct {
		typ  reflect.Type
		want []string
	}{
		{reflect.TypeFor[pkg.RaidProfile](), []string{"Validate"}},
		{reflect.TypeFor[*pkg.NetResource](), []string{"Valid"}},
		{reflect.TypeFor[pkg.ErrNotEnoughSpace](), []string{"Error"}},
		{reflect.TypeFor[pkg.ErrInvalidDeviceType](), []string{"Error"}},
		{reflect.TypeFor[pkg.StrIdentifier](), []string{"Identity"}},
		{reflect.TypeFor[*pkg.DiskIOCountersStat](), []string{"String"}},
		{reflect.TypeFor[*pkg.TimesStat](), []string{"String", "Total"}}, // Total from cpu.TimesStat
		{reflect.TypeFor[*pkg.Container](), nil},
		{reflect.TypeFor[*pkg.VM](), nil},
		{reflect.TypeFor[*pkg.VDisk](), nil},
		{reflect.TypeFor[*pkg.Peer](), nil},
		{reflect.TypeFor[*pkg.Network](), nil},
		{reflect.TypeFor[pkg.NetID](), nil},
		{reflect.TypeFor[pkg.DeviceType](), nil},
		{reflect.TypeFor[pkg.ZDBMode](), nil},
	}
	for _, tt := range methods {
		var got []string
		for m := range tt.typ.Methods() {
			got = append(got, m.Name)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s methods = %v, want %v", tt.typ, got, tt.want)
		}
	}
	sameType(valueOf(pkg.NetworkSchemaV1), types.Version{})
}
