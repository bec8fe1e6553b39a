package pkg_test

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"

	"github.com/shirou/gopsutil/v4/disk"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/container/logger"
	"github.com/zos-go/zos/pkg/container/stats"
	"github.com/zos-go/zos/pkg/types"
)

// TestJSONKeys marshals every seed struct that has JSON tags and compares
// the object keys with the seed's tags.
func TestJSONKeys(t *testing.T) {
	tests := []struct {
		name string
		v    any
		keys []string
	}{
		{"Network", pkg.Network{}, []string{"name", "net_id", "ip_range", "net_resources"}},
		{"NetResource", pkg.NetResource{}, []string{
			"Name", "net_id", "ip_range", "node_id", "subnet", "wg_private_key", "wg_public_key", "wg_listen_port", "peers",
		}},
		{"Peer", pkg.Peer{}, []string{"subnet", "wg_public_key", "allowed_ips", "endpoint"}},
		// Volume keeps the seed's `jons:"volume"` typo: its key is "Volume"
		{"ProvisionCounters", pkg.ProvisionCounters{}, []string{"container", "Volume", "network", "zdb", "vm", "debug"}},
		{"PoolStats", pkg.PoolStats{}, []string{
			// disk.UsageStat, embedded, then the seed's own field
			"path", "fstype", "total", "free", "used", "usedPercent",
			"inodesTotal", "inodesUsed", "inodesFree", "inodesUsedPercent", "counters",
		}},
		{"logger.Logs", logger.Logs{}, []string{"type", "data"}},
		{"logger.LogsRedis", logger.LogsRedis{}, []string{"stdout", "stderr"}},
		{"stats.Stats", stats.Stats{}, []string{"type", "data"}},
		{"stats.Redis", stats.Redis{}, []string{"endpoint"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			got := slices.Sorted(maps.Keys(m))
			want := slices.Sorted(slices.Values(tt.keys))
			if !slices.Equal(got, want) {
				t.Errorf("keys of %s\n got %v\nwant %v", b, got, want)
			}
		})
	}
}

// TestProvisionCountersWire checks the wire form a reader of the counters
// stream sees, typo included, and that it decodes back.
func TestProvisionCountersWire(t *testing.T) {
	c := pkg.ProvisionCounters{Container: 1, Volume: 2, Network: 3, ZDB: 4, VM: 5, Debug: 6}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"container":1,"Volume":2,"network":3,"zdb":4,"vm":5,"debug":6}`
	if string(b) != want {
		t.Errorf("got %s\nwant %s", b, want)
	}
	var back pkg.ProvisionCounters
	if err := json.Unmarshal(b, &back); err != nil || back != c {
		t.Errorf("decoded %+v, %v", back, err)
	}
}

// TestContainerBackendsJSON decodes the backends in the form the compute spec
// gives for container workloads.
func TestContainerBackendsJSON(t *testing.T) {
	in := `{"Logs":[{"type":"redis","data":{"stdout":"redis://h/out","stderr":"redis://h/err"}}],` +
		`"Stats":[{"type":"redis","data":{"endpoint":"redis://h:6379/stats"}}]}`
	var c pkg.Container
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Logs) != 1 || c.Logs[0].Type != logger.RedisType || c.Logs[0].Data.Stderr != "redis://h/err" {
		t.Errorf("logs = %+v", c.Logs)
	}
	if len(c.Stats) != 1 || c.Stats[0].Type != stats.RedisType || c.Stats[0].Data.Endpoint != "redis://h:6379/stats" {
		t.Errorf("stats = %+v", c.Stats)
	}
}

func TestPoolStatsJSON(t *testing.T) {
	ps := pkg.PoolsStats{"pool1": {
		UsageStat: disk.UsageStat{Path: "/mnt/pool1", Total: 100, Used: 40},
		Counters:  map[string]disk.IOCountersStat{"sda": {ReadBytes: 7}},
	}}
	b, err := json.Marshal(ps)
	if err != nil {
		t.Fatal(err)
	}
	var back pkg.PoolsStats
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	p := back["pool1"]
	if p.Path != "/mnt/pool1" || p.Total != 100 || p.Used != 40 || p.Counters["sda"].ReadBytes != 7 {
		t.Errorf("round trip gave %+v", back)
	}
}

func TestNetworkJSONRoundTrip(t *testing.T) {
	n := pkg.Network{
		Name: "net", NetID: "ABCDEFGHJKLMN", IPRange: types.MustParseIPNet("10.1.0.0/16"),
		NetResources: []pkg.NetResource{validNR()},
	}
	b, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	var back pkg.Network
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	b2, err := json.Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(b2) {
		t.Errorf("round trip differs:\n%s\n%s", b, b2)
	}
	if back.IPRange.String() != "10.1.0.0/16" || back.NetResources[0].Valid() != nil {
		t.Errorf("decoded %+v", back)
	}
}
