package containertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/container"
	"github.com/zos-go/zos/pkg/container/logger"
	"github.com/zos-go/zos/pkg/container/stats"
)

// Target is one implementation under test with what it needs to run a
// container.
type Target struct {
	// Module is the implementation, fresh and empty for the subtest.
	Module container.Containers
	// RootFS is a root filesystem in which Entrypoint runs.
	RootFS string
	// NetNS is an existing network namespace; the Module must report any
	// other name as missing.
	NetNS string
	// Entrypoint runs until stopped (e.g. "sleep 3600").
	Entrypoint string
	// NS returns a fresh namespace name (unique on the machine).
	NS func() string
}

// Factory returns a Target for one subtest, cleaned up by t.Cleanup.
type Factory func(t *testing.T) Target

// Run runs the conformance suite against the implementations made by newT.
func Run(t *testing.T, newT Factory) {
	tests := []struct {
		name string
		fn   func(*testing.T, Target)
	}{
		{"Lifecycle", testLifecycle},
		{"BadInputCreatesNothing", testBadInput},
		{"DuplicateName", testDuplicate},
		{"SameNameOtherNamespace", testOtherNamespace},
		{"UnknownContainer", testUnknown},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newT(t)) })
	}
}

func (tg Target) request(name string) pkg.Container {
	return pkg.Container{
		Name:       name,
		RootFS:     tg.RootFS,
		Env:        []string{"ZOS_SUITE=1", "GREETING=hello world"},
		WorkingDir: "/tmp",
		Network:    pkg.NetworkInfo{Namespace: tg.NetNS},
		Entrypoint: tg.Entrypoint,
		Memory:     64 << 20,
		Logs:       []logger.Logs{{Type: logger.FileType}},
	}
}

func testLifecycle(t *testing.T, tg Target) {
	m, ns := tg.Module, tg.NS()
	req := tg.request("web")
	req.Stats = []stats.Stats{{Type: stats.RedisType, Data: stats.Redis{Endpoint: "redis://127.0.0.1:1/stats"}}}
	id, err := m.Run(ns, req)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() { _ = m.Delete(ns, id) })
	if id != "web" {
		t.Fatalf("Run returned id %q, want the name", id)
	}
	got, err := m.Inspect(ns, id)
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	want := req
	want.CPU = 1
	if got.Name != want.Name || got.RootFS != want.RootFS || got.WorkingDir != want.WorkingDir ||
		got.Entrypoint != want.Entrypoint || got.Network != want.Network || got.CPU != want.CPU ||
		got.Memory != want.Memory || !slices.Equal(got.Env, want.Env) || !slices.Equal(got.Logs, want.Logs) ||
		!slices.Equal(got.Stats, want.Stats) || got.Interactive {
		t.Fatalf("Inspect = %+v\nwant %+v", got, want)
	}
	st, err := m.Status(context.Background(), ns, id)
	if err != nil || st.State != container.StateRunning || st.Pid == 0 || st.ID != id {
		t.Fatalf("Status = %+v, %v; want running with a pid", st, err)
	}
	if ids, err := m.List(ns); err != nil || !slices.Equal(ids, []pkg.ContainerID{id}) {
		t.Fatalf("List(%s) = %v, %v", ns, ids, err)
	}
	if ids, err := m.List(""); err != nil || !slices.Contains(ids, id) {
		t.Fatalf("List(all) = %v, %v; want it to contain %s", ids, err, id)
	}
	if nss, err := m.ListNS(); err != nil || !slices.Contains(nss, ns) {
		t.Fatalf("ListNS = %v, %v; want it to contain %s", nss, err, ns)
	}
	if _, err := m.Logs(context.Background(), ns, id, 0); err != nil {
		t.Fatalf("Logs: %v", err)
	}
	if err := m.Delete(ns, id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	assertGone(t, m, ns, id)
	if nss, err := m.ListNS(); err != nil || slices.Contains(nss, ns) {
		t.Fatalf("ListNS after the last delete = %v, %v; want no %s", nss, err, ns)
	}
}

func assertGone(t *testing.T, m container.Containers, ns string, id pkg.ContainerID) {
	t.Helper()
	if _, err := m.Inspect(ns, id); !errors.Is(err, container.ErrNotFound) {
		t.Fatalf("Inspect(%s/%s) = %v, want ErrNotFound", ns, id, err)
	}
	if _, err := m.Status(context.Background(), ns, id); !errors.Is(err, container.ErrNotFound) {
		t.Fatalf("Status(%s/%s) = %v, want ErrNotFound", ns, id, err)
	}
	if ids, err := m.List(ns); err != nil || slices.Contains(ids, id) {
		t.Fatalf("List(%s) = %v, %v; want no %s", ns, ids, err, id)
	}
}

func testBadInput(t *testing.T, tg Target) {
	m, ns := tg.Module, tg.NS()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		ns     string
		edit   func(*pkg.Container)
		target error
	}{
		{"empty name", ns, func(c *pkg.Container) { c.Name = "" }, container.ErrInvalidName},
		{"name with slash", ns, func(c *pkg.Container) { c.Name = "a/b" }, container.ErrInvalidName},
		{"name dot dot", ns, func(c *pkg.Container) { c.Name = ".." }, container.ErrInvalidName},
		{"namespace with slash", ns + "/x", func(*pkg.Container) {}, container.ErrInvalidName},
		{"empty namespace", "", func(*pkg.Container) {}, container.ErrInvalidName},
		{"empty rootfs", ns, func(c *pkg.Container) { c.RootFS = "" }, container.ErrInvalidRootFS},
		{"missing rootfs", ns, func(c *pkg.Container) { c.RootFS = filepath.Join(tg.RootFS, "no", "such") }, container.ErrInvalidRootFS},
		{"rootfs is a file", ns, func(c *pkg.Container) { c.RootFS = file }, container.ErrInvalidRootFS},
		{"relative rootfs", ns, func(c *pkg.Container) { c.RootFS = "rootfs" }, container.ErrInvalidRootFS},
		{"no network", ns, func(c *pkg.Container) { c.Network.Namespace = "" }, container.ErrNoNetwork},
		{"missing network", ns, func(c *pkg.Container) { c.Network.Namespace = tg.NetNS + "-missing" }, container.ErrNoNetwork},
		{"network path", ns, func(c *pkg.Container) { c.Network.Namespace = "../" + tg.NetNS }, container.ErrNoNetwork},
		{"empty entrypoint", ns, func(c *pkg.Container) { c.Entrypoint = "  " }, container.ErrInvalidEntrypoint},
		{"unterminated quote", ns, func(c *pkg.Container) { c.Entrypoint = `sh -c "echo` }, container.ErrInvalidEntrypoint},
		{"missing program", ns, func(c *pkg.Container) { c.Entrypoint = "/no/such/program" }, container.ErrInvalidEntrypoint},
		{"relative workdir", ns, func(c *pkg.Container) { c.WorkingDir = "tmp" }, container.ErrInvalidEntrypoint},
		{"env without equal", ns, func(c *pkg.Container) { c.Env = []string{"NOEQUAL"} }, container.ErrInvalidEnv},
		{"too many cpus", ns, func(c *pkg.Container) { c.CPU = 100000 }, container.ErrInvalidLimit},
		{"mount source missing", ns, func(c *pkg.Container) {
			c.Mounts = []pkg.MountInfo{{Source: filepath.Join(tg.RootFS, "no", "such"), Target: "/data"}}
		}, container.ErrInvalidMount},
		{"mount target relative", ns, func(c *pkg.Container) { c.Mounts = []pkg.MountInfo{{Source: tg.RootFS, Target: "data"}} }, container.ErrInvalidMount},
		{"log backend type", ns, func(c *pkg.Container) { c.Logs = []logger.Logs{{Type: "syslog"}} }, container.ErrInvalidBackend},
		{"log backend url", ns, func(c *pkg.Container) {
			c.Logs = []logger.Logs{{Type: logger.RedisType, Data: logger.LogsRedis{Stdout: "redis://host"}}}
		}, container.ErrInvalidBackend},
		{"stats backend url", ns, func(c *pkg.Container) {
			c.Stats = []stats.Stats{{Type: stats.RedisType, Data: stats.Redis{Endpoint: "tcp://h/c"}}}
		}, container.ErrInvalidBackend},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tg.request("bad")
			tc.edit(&c)
			id, err := m.Run(tc.ns, c)
			if !errors.Is(err, tc.target) {
				if err == nil {
					_ = m.Delete(tc.ns, id)
				}
				t.Fatalf("Run = %q, %v; want %v", id, err, tc.target)
			}
			if ids, err := m.List(""); err != nil || len(ids) != 0 {
				t.Fatalf("List after a refused Run = %v, %v; want nothing", ids, err)
			}
			if nss, err := m.ListNS(); err != nil || slices.Contains(nss, tc.ns) {
				t.Fatalf("ListNS after a refused Run = %v, %v; want no %q", nss, err, tc.ns)
			}
		})
	}
}

func testDuplicate(t *testing.T, tg Target) {
	m, ns := tg.Module, tg.NS()
	id, err := m.Run(ns, tg.request("dup"))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() { _ = m.Delete(ns, id) })
	before, err := m.Status(context.Background(), ns, id)
	if err != nil {
		t.Fatal(err)
	}
	other := tg.request("dup")
	other.Env = []string{"OTHER=1"}
	if _, err := m.Run(ns, other); !errors.Is(err, container.ErrExists) {
		t.Fatalf("second Run of the same name = %v, want ErrExists", err)
	}
	got, err := m.Inspect(ns, id)
	if err != nil || !slices.Equal(got.Env, tg.request("dup").Env) {
		t.Fatalf("Inspect after the refused duplicate = %+v, %v; want the first request", got, err)
	}
	after, err := m.Status(context.Background(), ns, id)
	if err != nil || after.State != container.StateRunning || after.Pid != before.Pid {
		t.Fatalf("Status after the refused duplicate = %+v, %v; want the same running task (pid %d)", after, err, before.Pid)
	}
}

func testOtherNamespace(t *testing.T, tg Target) {
	m := tg.Module
	ns1, ns2 := tg.NS(), tg.NS()
	for _, ns := range []string{ns1, ns2} {
		if _, err := m.Run(ns, tg.request("same")); err != nil {
			t.Fatalf("Run in %s: %v", ns, err)
		}
		t.Cleanup(func() { _ = m.Delete(ns, "same") })
	}
	if err := m.Delete(ns1, "same"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if st, err := m.Status(context.Background(), ns2, "same"); err != nil || st.State != container.StateRunning {
		t.Fatalf("the other namespace's container after Delete: %+v, %v", st, err)
	}
}

func testUnknown(t *testing.T, tg Target) {
	m, ns := tg.Module, tg.NS()
	if err := m.Delete(ns, "nothere"); !errors.Is(err, container.ErrNotFound) {
		t.Fatalf("Delete of an unknown container = %v, want ErrNotFound", err)
	}
	assertGone(t, m, ns, "nothere")
	if _, err := m.Logs(context.Background(), ns, "nothere", 0); !errors.Is(err, container.ErrNotFound) {
		t.Fatalf("Logs of an unknown container = %v, want ErrNotFound", err)
	}
	if ids, err := m.List(ns); err != nil || len(ids) != 0 {
		t.Fatalf("List of an unknown namespace = %v, %v; want nothing", ids, err)
	}
}

func testConcurrent(t *testing.T, tg Target) {
	m, ns := tg.Module, tg.NS()
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = m.Run(ns, tg.request(fmt.Sprintf("c%d", i)))
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for i := range n {
			_ = m.Delete(ns, pkg.ContainerID(fmt.Sprintf("c%d", i)))
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Run c%d: %v", i, err)
		}
	}
	ids, err := m.List(ns)
	if err != nil || len(ids) != n {
		t.Fatalf("List = %v, %v; want %d containers", ids, err, n)
	}
	start := time.Now()
	for i := range n {
		wg.Go(func() { errs[i] = m.Delete(ns, pkg.ContainerID(fmt.Sprintf("c%d", i))) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Delete c%d: %v", i, err)
		}
	}
	if ids, err := m.List(ns); err != nil || len(ids) != 0 {
		t.Fatalf("List after deleting all = %v, %v (deletes took %s)", ids, err, time.Since(start))
	}
}
