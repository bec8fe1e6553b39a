package pkg_test

import (
	"testing"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"

	"github.com/zos-go/zos/pkg"
)

func TestDiskIOCountersStatString(t *testing.T) {
	tests := []struct {
		in   disk.IOCountersStat
		want string
	}{
		{disk.IOCountersStat{}, "Read: (0 Bytes, 0 Op), Write: (0 Bytes, 0 Op)"},
		{
			disk.IOCountersStat{Name: "sda", ReadBytes: 4096, ReadCount: 1, WriteBytes: 1 << 40, WriteCount: 7, IoTime: 99},
			"Read: (4096 Bytes, 1 Op), Write: (1099511627776 Bytes, 7 Op)",
		},
		{
			disk.IOCountersStat{ReadBytes: 1<<64 - 1, ReadCount: 1<<64 - 1},
			"Read: (18446744073709551615 Bytes, 18446744073709551615 Op), Write: (0 Bytes, 0 Op)",
		},
	}
	for _, tt := range tests {
		s := &pkg.DiskIOCountersStat{IOCountersStat: tt.in, Time: time.Unix(1, 0)}
		if got := s.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestTimesStatString(t *testing.T) {
	s := &pkg.TimesStat{
		TimesStat: cpu.TimesStat{CPU: "cpu0", User: 12.4, System: 3.6, Idle: 1000.5},
		Percent:   37.5,
	}
	// rounding: %.0f rounds half to even
	want := "CPU: cpu0 Percent: 38 (U: 12, S: 4, I: 1000)"
	if got := s.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
