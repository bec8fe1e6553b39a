package container_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/container"
	"github.com/zos-go/zos/pkg/container/containertest"
	"github.com/zos-go/zos/pkg/flist"
	"github.com/zos-go/zos/pkg/flist/build"
	"github.com/zos-go/zos/pkg/flist/store"
)

// flistRootFS packs a busybox tree (with a .startup.toml) into an flist
// with a directory block store and mounts it read-only with the flist
// module (one flistfs process); it returns the mountpoint, unmounted at
// the end of the test.
func flistRootFS(t *testing.T) string {
	t.Helper()
	testutil.RequireRoot(t, "busybox")
	src := filepath.Join(testutil.TempDir(t), "tree")
	containertest.BusyboxRootFS(t, src)
	startup := "[startup.entry]\nname = \"core.system\"\n[startup.entry.args]\nname = \"/bin/sh\"\n" +
		"args = [\"-c\", \"echo from-startup $FLAVOUR; exec sleep 3600\"]\ndir = \"/etc\"\n[startup.entry.args.env]\nFLAVOUR = \"flist\"\n"
	for p, b := range map[string]string{container.StartupFile: startup, "etc/resolv.conf": "", "etc/motd": "built into the flist\n"} {
		if err := os.WriteFile(filepath.Join(src, p), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(src, "data"), 0o755); err != nil { // mountpoint: the mount is read-only
		t.Fatal(err)
	}
	storeURL := "dir://" + testutil.TempDir(t)
	st, err := store.Open(storeURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fl := filepath.Join(testutil.TempDir(t), "busybox.flist")
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	if _, err := build.Build(context.Background(), src, fl, st, build.Config{StoreURL: storeURL}, log); err != nil {
		t.Fatal(err)
	}
	st.Close()

	runner := &flist.ProcessRunner{LogDir: testutil.TempDir(t), RestartDelay: 200 * time.Millisecond, StopTimeout: 5 * time.Second}
	t.Cleanup(func() {
		_ = runner.Close(context.Background())
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(runner.LogDir, "*"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", l, b)
			}
		}
	})
	cfg := flist.DefaultConfig(testutil.TempDir(t))
	cfg.Binary = flistfsBin
	cfg.ServicePrefix = testutil.Name(t, "fl") + "@"
	cfg.MountTimeout = 15 * time.Second
	m, err := flist.New(cfg, nil, runner, log)
	if err != nil {
		t.Fatal(err)
	}
	name := testutil.Name(t, "rf")
	path, err := m.NamedMount(name, fl, "", pkg.ReadOnlyMountOptions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.NamedUmount(name); err != nil {
			t.Errorf("umount flist: %v", err)
		}
	})
	return path
}

func TestFlistRootFS(t *testing.T) {
	testutil.CheckLeaks(t)
	e := setup(t)
	e.rootfs = flistRootFS(t) // cleaned up after the containers (registered later)
	m, _ := containertest.NewModule(t, e.cfg)
	vol := testutil.TempDir(t)

	// No entrypoint: the flist's .startup.toml gives it, its env and dir.
	c := e.container("fl", "")
	c.Mounts = []pkg.MountInfo{{Source: vol, Target: "/data"}}
	ns := run(t, m, c)
	waitLog(t, m, ns, "fl", "from-startup flist")
	got, err := m.Inspect(ns, "fl")
	if err != nil || got.WorkingDir != "/etc" || !strings.Contains(got.Entrypoint, "from-startup") || got.RootFS != e.rootfs {
		t.Fatalf("Inspect = %+v, %v", got, err)
	}

	// A second container on the same flist reads it and writes to its volume.
	c2 := e.container("fl2", `sh -c 'cat /etc/motd > /data/copy; echo written; exec sleep 3600'`)
	c2.Mounts = []pkg.MountInfo{{Source: vol, Target: "/data"}}
	ns2 := run(t, m, c2)
	waitLog(t, m, ns2, "fl2", "written")
	testutil.WaitFor(t, 10*time.Second, "file copied out of the flist", func() error {
		b, err := os.ReadFile(filepath.Join(vol, "copy"))
		if string(b) != "built into the flist\n" {
			return fmt.Errorf("%q, %v", b, err)
		}
		return nil
	})
	st := status(t, m, ns2, "fl2")
	if st.State != container.StateRunning {
		t.Fatalf("status %+v", st)
	}
	if st.Restarts != 0 {
		// flistfs sometimes answers the first exec of a file with EIO when
		// two readers race on its block list (reported to pkg/flist); the
		// module's restart covers it.
		b, _ := m.Logs(context.Background(), ns2, "fl2", 0)
		t.Logf("fl2 needed %d restarts: %+v, log %q", st.Restarts, st, b)
	}
}
