package monitord

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/net"
)

// Host reads the running kernel's counters (through gopsutil) and uptime.
type Host struct {
	// UptimePath is the uptime file; empty means /proc/uptime.
	UptimePath string
}

var _ Source = Host{}

// Memory implements Source.
func (Host) Memory(ctx context.Context) (*mem.VirtualMemoryStat, error) {
	return mem.VirtualMemoryWithContext(ctx)
}

// CPU implements Source.
func (Host) CPU(ctx context.Context) (cpu.TimesStat, error) {
	ts, err := cpu.TimesWithContext(ctx, false)
	if err != nil {
		return cpu.TimesStat{}, err
	}
	if len(ts) == 0 {
		return cpu.TimesStat{}, errors.New("cpu times: none reported")
	}
	return ts[0], nil
}

// Disks implements Source: the block devices of mounted partitions, as the
// original took them.
func (Host) Disks(ctx context.Context) ([]string, error) {
	parts, err := disk.PartitionsWithContext(ctx, false)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var names []string
	for _, p := range parts {
		name := strings.TrimPrefix(p.Device, "/dev/")
		if !strings.HasPrefix(p.Device, "/dev/") || seen[name] {
			continue
		}
		seen[name] = true
		names = append(names, name)
	}
	return names, nil
}

// DiskCounters implements Source.
func (Host) DiskCounters(ctx context.Context, names []string) (map[string]disk.IOCountersStat, error) {
	if len(names) == 0 {
		return map[string]disk.IOCountersStat{}, nil
	}
	return disk.IOCountersWithContext(ctx, names...)
}

// NicCounters implements Source.
func (Host) NicCounters(ctx context.Context) ([]net.IOCountersStat, error) {
	return net.IOCountersWithContext(ctx, true)
}

// Uptime implements Source.
func (h Host) Uptime(context.Context) (time.Duration, error) {
	path := h.UptimePath
	if path == "" {
		path = "/proc/uptime"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return ParseUptime(b)
}

// ParseUptime decodes the first field of /proc/uptime (seconds with a
// fraction) as a duration.
func ParseUptime(b []byte) (time.Duration, error) {
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 0, errors.New("uptime: empty")
	}
	secs, err := strconv.ParseFloat(fields[0], 64)
	if err != nil || !(secs >= 0 && secs <= float64(1<<62)/float64(time.Second)) { // also refuses NaN
		return 0, fmt.Errorf("uptime %q: not a duration in seconds", fields[0])
	}
	return time.Duration(secs * float64(time.Second)), nil
}
