package zinit_test

import (
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/zinit"
	"github.com/zos-go/zos/pkg/zinit/zinittest"
)

// BenchmarkRowStart100 measures how long zinit takes from the first of 100
// monitor requests until all 100 services are Running (issue target: at
// most 1 s). Baseline: starting the same 100 processes directly with
// os/exec, which is the floor any supervisor pays.
func BenchmarkRowStart100(b *testing.B) {
	testutil.RequireTools(b, "sleep")
	for b.Loop() {
		cl, d := zinittest.Start(b)
		var names []string
		for range 100 {
			n := testutil.Name(b, "bn")
			names = append(names, n)
			if err := cl.AddService(n, zinit.InitService{Exec: "sleep 1000"}); err != nil {
				b.Fatal(err)
			}
		}
		start := time.Now()
		for _, n := range names {
			if err := cl.Monitor(n); err != nil {
				b.Fatal(err)
			}
		}
		for {
			list, err := cl.List()
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for _, name := range names {
				if list[name].Is(zinit.ServiceStateRunning) {
					n++
				}
			}
			if n == len(names) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		ours := time.Since(start)

		start = time.Now()
		var cmds []*exec.Cmd
		for range 100 {
			c := exec.Command("sleep", "1000")
			if err := c.Start(); err != nil {
				b.Fatal(err)
			}
			cmds = append(cmds, c)
		}
		base := time.Since(start)
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}

		// Status round trips against a zinit managing 100 services.
		var lat []time.Duration
		for i := range 1000 {
			t0 := time.Now()
			if _, err := cl.Status(names[i%len(names)]); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		slices.Sort(lat)
		b.ReportMetric(float64(ours.Microseconds())/1000, "start100-ms")
		b.ReportMetric(float64(base.Microseconds())/1000, "baseline-start100-ms")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "status-p50-us")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "status-p99-us")
		_ = d
	}
}
