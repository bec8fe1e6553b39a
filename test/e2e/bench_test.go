//go:build e2e

package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/vm/vmtest"
)

// BenchmarkRowProvisionLatency measures, on a one-node development grid,
// the time from submitting a signed reservation to the explorer until the
// node's "ok" result is stored there, per workload type (p50 and p99 over
// several reservations deployed one after the other). It is what a user
// waits with `zos deploy --watch`.
func BenchmarkRowProvisionLatency(b *testing.B) {
	for b.Loop() {
		lat := measureLatency(b)
		for _, typ := range []gridtypes.WorkloadType{gridtypes.TypeNetwork, gridtypes.TypeVolume, gridtypes.TypeZDB, gridtypes.TypeContainer, gridtypes.TypeVM} {
			ls := lat[typ]
			if len(ls) == 0 {
				continue
			}
			slices.Sort(ls)
			ms := func(q float64) float64 {
				return float64(ls[int(q*float64(len(ls)-1))]) / float64(time.Millisecond)
			}
			b.ReportMetric(ms(0.5), string(typ)+"-p50-ms")
			b.ReportMetric(ms(0.99), string(typ)+"-p99-ms")
		}
	}
}

func measureLatency(t testing.TB) map[gridtypes.WorkloadType][]time.Duration {
	kernel := vmtest.Kernel(t)
	g := startGrid(t, 1)
	alice := g.newUser("alice")
	n1 := g.nodeID(0)
	fl := uploadBusybox(t, g, alice)
	guest := uploadVMImage(t, g, alice, kernel)
	lat := map[gridtypes.WorkloadType][]time.Duration{}
	timed := func(w gridtypes.Workload) uint64 {
		start := time.Now()
		id := alice.deploy(n1, w)
		alice.result(id, 3*time.Minute, gridtypes.StateOK)
		lat[w.WorkloadType()] = append(lat[w.WorkloadType()], time.Since(start))
		return id
	}
	for i := range 5 {
		k := wgKey(t)
		timed(&gridtypes.Network{
			Name: fmt.Sprintf("n%d", i), NetworkIPRange: "10.42.0.0/16", IPRange: fmt.Sprintf("10.42.%d.0/24", i+1),
			WireguardPrivateKeyEncrypted: k.String(), WireguardPublicKey: k.PublicKey().String(), WireguardListenPort: uint16(51820 + i),
		})
	}
	for range 10 {
		timed(&gridtypes.Volume{Size: 1, Type: gridtypes.DiskSSD})
		timed(&gridtypes.ZDB{Size: 1, Mode: gridtypes.ZDBModeUser, Password: "pw", DiskType: gridtypes.DiskHDD})
	}
	for i := range 10 {
		c := webContainer(fl, 10+i, 0)
		c.NetworkConnection[0].NetworkID = "n0"
		timed(c)
	}
	for i := range 3 {
		timed(&gridtypes.VM{CPU: 1, Memory: 512, Flist: guest, InitrdImage: "/initrd.gz",
			Network: gridtypes.VMNetwork{NetworkID: "n1", IPAddress: fmt.Sprintf("10.42.2.%d", 20+i)}})
	}
	return lat
}
