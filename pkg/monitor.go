package pkg

import (
	"context"
	"fmt"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/net"
	"github.com/vishvananda/netlink"

	"github.com/zos-go/zos/pkg/types"
)

// VirtualMemoryStat is the node's memory usage (gopsutil's
// mem.VirtualMemoryStat, same fields and JSON keys).
type VirtualMemoryStat mem.VirtualMemoryStat

// DiskIOCountersStat is the IO counters of one disk at Time.
type DiskIOCountersStat struct {
	disk.IOCountersStat
	Time time.Time
}

// String returns "Read: (<bytes> Bytes, <ops> Op), Write: (<bytes> Bytes,
// <ops> Op)".
func (s *DiskIOCountersStat) String() string {
	return fmt.Sprintf("Read: (%d Bytes, %d Op), Write: (%d Bytes, %d Op)",
		s.ReadBytes, s.ReadCount, s.WriteBytes, s.WriteCount)
}

// DisksIOCountersStat maps a disk name to its counters (a named map type, as
// zbus requires).
type DisksIOCountersStat map[string]DiskIOCountersStat

// TimesStat is the CPU time counters with the usage percentage at Time.
type TimesStat struct {
	cpu.TimesStat
	Percent float64
	Time    time.Time
}

// String returns "CPU: <cpu> Percent: <p> (U: <user>, S: <system>, I:
// <idle>)" with the numbers rounded to integers.
func (s *TimesStat) String() string {
	return fmt.Sprintf("CPU: %s Percent: %.0f (U: %.0f, S: %.0f, I: %.0f)",
		s.CPU, s.Percent, s.User, s.System, s.Idle)
}

// NicIOCounterStat is the counters of a network interface with its current
// rates in and out.
type NicIOCounterStat struct {
	net.IOCountersStat
	RateOut uint64
	RateIn  uint64
}

// NicsIOCounterStat is a list of NicIOCounterStat (a named type for zbus).
type NicsIOCounterStat []NicIOCounterStat

// NetlinkAddress is an interface address (netlink's Addr).
type NetlinkAddress netlink.Addr

// NetlinkAddresses is a list of NetlinkAddress (a named type for zbus).
type NetlinkAddresses []NetlinkAddress

// PoolStats is pool statistics reported by storaged.
type PoolStats struct {
	disk.UsageStat
	// Counters IO counter for each pool device
	Counters map[string]disk.IOCountersStat `json:"counters"`
}

// PoolsStats maps a pool label to its statistics (a named map type for zbus).
type PoolsStats map[string]PoolStats

// SystemMonitor streams system statistics (provided by monitord). Each
// stream is closed when ctx ends.
type SystemMonitor interface {
	Memory(ctx context.Context) <-chan VirtualMemoryStat
	CPU(ctx context.Context) <-chan TimesStat
	Disks(ctx context.Context) <-chan DisksIOCountersStat
	Nics(ctx context.Context) <-chan NicsIOCounterStat
}

// HostMonitor streams host information (provided by monitord).
type HostMonitor interface {
	// Uptime streams the host's uptime.
	Uptime(ctx context.Context) <-chan time.Duration
}

// VersionMonitor streams the node's software version (provided by
// identityd).
type VersionMonitor interface {
	Version(ctx context.Context) <-chan types.Version
}
