package container_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/container/containertest"
	"github.com/zos-go/zos/pkg/container/logger"
)

// firstLineEntry prints a line at once, then stays up.
const firstLineEntry = `/bin/sh -c 'echo first-line; exec sleep 3600'`

// waitFile polls path until it holds "first-line\n".
func waitFile(b *testing.B, path string) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if data, err := os.ReadFile(path); err == nil && bytes.Contains(data, []byte("first-line\n")) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("no first line in %s", path)
		}
		time.Sleep(time.Millisecond)
	}
}

func percentile(d []time.Duration, p float64) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p*float64(len(s)-1) + 0.5)
	return float64(s[i].Microseconds()) / 1000
}

// BenchmarkRowContainerFirstOutput measures the time from asking for a
// container to its first output line: ours is Module.Run until the line is
// in the container's log ring; the baseline is `ctr run -d --rootfs` of the
// same root filesystem, same network namespace, limits and cgroup parent,
// on the same containerd, until the line is in its log file. Rounds
// alternate between the two.
func BenchmarkRowContainerFirstOutput(b *testing.B) {
	testutil.RequireRoot(b, "containerd", "runc", "ctr", "busybox")
	ctd := containertest.StartContainerd(b)
	rootfs := filepath.Join(testutil.TempDir(b), "rootfs")
	containertest.BusyboxRootFS(b, rootfs)
	netns := testutil.NetNS(b)
	cfg := ctd.Config(b)
	cfg.StopGrace = 100 * time.Millisecond
	m, _ := containertest.NewModule(b, cfg)
	cl, err := containerd.New(cfg.Address)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	logs := testutil.TempDir(b)
	const rounds = 15
	var ours, base []time.Duration
	for b.Loop() {
		for i := range rounds {
			ns := testutil.Name(b, "bn")
			name := fmt.Sprintf("c%d", i)

			start := time.Now()
			if _, err := m.Run(ns, pkg.Container{Name: name, RootFS: rootfs, Network: pkg.NetworkInfo{Namespace: netns}, Entrypoint: firstLineEntry, Memory: 64 << 20, CPU: 1}); err != nil {
				b.Fatal(err)
			}
			waitFile(b, logger.RingPath(cfg.Root, ns, name))
			ours = append(ours, time.Since(start))
			if err := m.Delete(ns, pkg.ContainerID(name)); err != nil {
				b.Fatal(err)
			}

			bns := ns + "b"
			logPath := filepath.Join(logs, bns+".log")
			start = time.Now()
			out, err := exec.Command("ctr", "--address", cfg.Address, "--namespace", bns, "run", "-d", "--rootfs",
				"--runc-root", cfg.RuncRoot, "--cgroup", cfg.CgroupParent+"/"+bns+"/"+name,
				"--with-ns", "network:/run/netns/"+netns, "--memory-limit", fmt.Sprint(64<<20), "--cpus", "1",
				"--log-uri", "file://"+logPath, rootfs, name, "/bin/sh", "-c", "echo first-line; exec sleep 3600").CombinedOutput()
			if err != nil {
				b.Fatalf("ctr run: %v: %s", err, out)
			}
			waitFile(b, logPath)
			base = append(base, time.Since(start))
			ctx := namespaces.WithNamespace(context.Background(), bns)
			if c, err := cl.LoadContainer(ctx, name); err == nil {
				if task, err := c.Task(ctx, nil); err == nil {
					_, _ = task.Delete(ctx, containerd.WithProcessKill)
				}
				_ = c.Delete(ctx)
			}
			_ = cl.NamespaceService().Delete(ctx, bns)
		}
	}
	b.ReportMetric(percentile(ours, 0.5), "p50-ms")
	b.ReportMetric(percentile(ours, 0.99), "p99-ms")
	b.ReportMetric(percentile(base, 0.5), "baseline-p50-ms")
	b.ReportMetric(percentile(base, 0.99), "baseline-p99-ms")
}
