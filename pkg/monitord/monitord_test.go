package monitord

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/net"

	"github.com/zos-go/zos/pkg/types"
)

// fakeSource returns scripted samples; a nil entry is a read error.
type fakeSource struct {
	mu     sync.Mutex
	cpus   []*cpu.TimesStat
	nics   [][]net.IOCountersStat
	listed int
}

func (f *fakeSource) Memory(context.Context) (*mem.VirtualMemoryStat, error) {
	return &mem.VirtualMemoryStat{Total: 8 << 30, Available: 6 << 30, Used: 2 << 30, UsedPercent: 25}, nil
}

func (f *fakeSource) CPU(context.Context) (cpu.TimesStat, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.cpus) == 0 {
		return cpu.TimesStat{}, errors.New("no more samples")
	}
	c := f.cpus[0]
	f.cpus = f.cpus[1:]
	if c == nil {
		return cpu.TimesStat{}, errors.New("read error")
	}
	return *c, nil
}

func (f *fakeSource) Disks(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listed++
	return []string{"vda"}, nil
}

func (f *fakeSource) DiskCounters(_ context.Context, names []string) (map[string]disk.IOCountersStat, error) {
	out := map[string]disk.IOCountersStat{}
	for _, n := range names {
		out[n] = disk.IOCountersStat{Name: n, ReadBytes: 4096}
	}
	return out, nil
}

func (f *fakeSource) NicCounters(context.Context) ([]net.IOCountersStat, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.nics[0]
	if len(f.nics) > 1 {
		f.nics = f.nics[1:]
	}
	return n, nil
}

func (f *fakeSource) Uptime(context.Context) (time.Duration, error) { return 90 * time.Second, nil }

func newSystem(t *testing.T, src Source) *System {
	t.Helper()
	s, err := New(DefaultConfig(), src)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCPUPercentSincePreviousSampleAndSkipsErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{cpus: []*cpu.TimesStat{
			{CPU: "cpu-total", User: 10, Idle: 90},
			nil,                                     // read error: the tick is skipped
			{CPU: "cpu-total", User: 40, Idle: 100}, // +30 busy, +10 idle → 75 %
		}}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		start := time.Now()
		ch := newSystem(t, src).CPU(ctx)
		first := <-ch
		if first.Percent != 10 {
			t.Errorf("first percent %v, want 10 (since boot)", first.Percent)
		}
		second := <-ch
		if second.Percent != 75 {
			t.Errorf("second percent %v, want 75", second.Percent)
		}
		if got := second.Time.Sub(start); got != 6*time.Second {
			t.Errorf("second sample after %v, want 6s (one tick skipped)", got)
		}
		cancel()
		if _, open := <-ch; open {
			t.Error("stream not closed after cancel")
		}
	})
}

func TestNicRatesOverWholeSeconds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{nics: [][]net.IOCountersStat{
			{{Name: "eth0", BytesSent: 1000, BytesRecv: 5000}},
			{{Name: "eth0", BytesSent: 3000, BytesRecv: 9000}, {Name: "wg0", BytesSent: 7}},
		}}
		ch := newSystem(t, src).Nics(t.Context())
		first := <-ch
		if first[0].RateOut != 0 || first[0].RateIn != 0 {
			t.Errorf("first sample rates %d/%d, want 0", first[0].RateOut, first[0].RateIn)
		}
		second := <-ch
		if second[0].RateOut != 1000 || second[0].RateIn != 2000 {
			t.Errorf("eth0 rates out %d in %d, want 1000 and 2000 bytes/s", second[0].RateOut, second[0].RateIn)
		}
		if second[1].Name != "wg0" || second[1].RateOut != 0 {
			t.Errorf("new interface %+v: want rate 0 on first sight", second[1])
		}
	})
}

func TestDisksListedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{}
		ch := newSystem(t, src).Disks(t.Context())
		for range 3 {
			d := <-ch
			if d["vda"].ReadBytes != 4096 || d["vda"].Time.IsZero() {
				t.Fatalf("disk sample %+v", d)
			}
		}
		if src.listed != 1 {
			t.Fatalf("devices listed %d times, want once per stream", src.listed)
		}
	})
}

func TestMemoryAndUptime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSystem(t, &fakeSource{})
		if m := <-s.Memory(t.Context()); m.Total != 8<<30 || m.UsedPercent != 25 {
			t.Errorf("memory %+v", m)
		}
		if u := <-s.Uptime(t.Context()); u != 90*time.Second {
			t.Errorf("uptime %v", u)
		}
	})
}

func TestVersionSetPushesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v1, v2 := types.MustParseVersion("1.0.0"), types.MustParseVersion("1.1.0")
		m, err := NewVersion(DefaultConfig(), v1)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		ch := m.Version(t.Context())
		if got := <-ch; got.Compare(v1) != 0 || time.Since(start) != 2*time.Second {
			t.Fatalf("first version %v after %v", got, time.Since(start))
		}
		synctest.Wait()
		m.Set(v2)
		if got := <-ch; got.Compare(v2) != 0 || time.Since(start) != 2*time.Second {
			t.Fatalf("pushed version %v after %v, want 1.1.0 at once", got, time.Since(start))
		}
	})
}

func TestConfigValidate(t *testing.T) {
	if _, err := New(Config{}, &fakeSource{}); err == nil {
		t.Error("zero interval accepted")
	}
	if _, err := New(DefaultConfig(), nil); err == nil {
		t.Error("nil source accepted")
	}
}

func TestHostReadsThisMachine(t *testing.T) {
	var h Host
	ctx := t.Context()
	m, err := h.Memory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	meminfo, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	var totalKiB uint64
	for _, line := range strings.Split(string(meminfo), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			totalKiB, _ = strconv.ParseUint(f[1], 10, 64)
		}
	}
	if m.Total != totalKiB*1024 {
		t.Errorf("memory total %d, /proc/meminfo says %d", m.Total, totalKiB*1024)
	}
	up, err := h.Uptime(ctx)
	if err != nil || up <= 0 {
		t.Errorf("uptime %v %v", up, err)
	}
	c, err := h.CPU(ctx)
	if err != nil || c.User+c.Idle <= 0 {
		t.Errorf("cpu %+v %v", c, err)
	}
	nics, err := h.NicCounters(ctx)
	found := false
	for _, n := range nics {
		found = found || n.Name == "lo"
	}
	if err != nil || !found {
		t.Errorf("nics %v %v: lo missing", nics, err)
	}
}

func TestParseUptime(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"350735.47 234388.90\n": 350735470 * time.Millisecond,
		"0.00 0.00":             0,
	} {
		got, err := ParseUptime([]byte(in))
		if err != nil || got != want {
			t.Errorf("ParseUptime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "abc", "-1 2", "NaN", "Inf", "1e300"} {
		if _, err := ParseUptime([]byte(bad)); err == nil {
			t.Errorf("ParseUptime(%q) accepted", bad)
		}
	}
}

func FuzzParseUptime(f *testing.F) {
	f.Add([]byte("12.5 3.0\n"))
	f.Add([]byte("NaN"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseUptime(b)
		if err == nil && d < 0 {
			t.Fatalf("negative uptime %v from %q", d, b)
		}
	})
}
