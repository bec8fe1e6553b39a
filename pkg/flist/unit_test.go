package flist

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg"
)

// fakeRunner records services; Start "runs" nothing.
type fakeRunner struct {
	mu       sync.Mutex
	services map[string][]string
}

func (f *fakeRunner) Start(_ context.Context, name string, argv []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.services == nil {
		f.services = map[string][]string{}
	}
	f.services[name] = argv
	return nil
}

func (f *fakeRunner) Stop(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.services, name)
	return nil
}

func (f *fakeRunner) Status(_ context.Context, name string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.services[name]; !ok {
		return 0, ErrUnknownService
	}
	return 0, nil
}

func (f *fakeRunner) List(_ context.Context, prefix string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for n := range f.services {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out, nil
}

func unitModule(t *testing.T, vols Volumes) (*Module, *fakeRunner) {
	t.Helper()
	cfg := DefaultConfig(t.TempDir())
	cfg.Binary = "/bin/false"
	cfg.MountTimeout = 300 * time.Millisecond
	r := &fakeRunner{}
	m, err := New(cfg, vols, r, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	return m, r
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig("relative").Validate(); err == nil {
		t.Error("relative root accepted")
	}
	cfg := DefaultConfig("/x")
	cfg.MountTimeout = 0
	if err := cfg.Validate(); err == nil {
		t.Error("zero timeout accepted")
	}
	if err := DefaultConfig("/x").Validate(); err != nil {
		t.Error(err)
	}
}

func TestNamesAndPaths(t *testing.T) {
	m, r := unitModule(t, nil)
	for _, name := range []string{"", ".", "..", "a/b", "../x", strings.Repeat("x", 300)} {
		if _, err := m.NamedMount(name, "/nothing", "", pkg.ReadOnlyMountOptions); !errors.Is(err, ErrInvalidName) {
			t.Errorf("name %q: %v", name, err)
		}
	}
	for _, p := range []string{"/etc", filepath.Join(m.cfg.Root, "mountpoint"), filepath.Join(m.cfg.Root, "mountpoint", "a", "b"), filepath.Join(m.cfg.Root, "other", "x")} {
		if err := m.Umount(p); !errors.Is(err, ErrNotMountpoint) {
			t.Errorf("umount %q: %v", p, err)
		}
	}
	if len(r.services) != 0 {
		t.Errorf("refused requests started services: %v", r.services)
	}
}

func TestWritableMountNeedsOptions(t *testing.T) {
	flist := filepath.Join(t.TempDir(), "x.fl")
	os.WriteFile(flist, []byte("whatever"), 0o644)
	m, r := unitModule(t, nil)
	if _, err := m.NamedMount("rw", flist, "", pkg.DefaultMountOptions); !errors.Is(err, ErrNoVolumes) {
		t.Errorf("no volumes: %v", err)
	}
	m2, _ := unitModule(t, &recordingVolumes{})
	if _, err := m2.NamedMount("rw", flist, "", pkg.MountOptions{Limit: 10}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("no type: %v", err)
	}
	if len(r.services) != 0 {
		t.Error("service started")
	}
}

// recordingVolumes is a Volumes over plain directories.
type recordingVolumes struct {
	mu       sync.Mutex
	dir      string
	vols     map[string]pkg.Filesystem
	released []string
	failRel  error // ReleaseFilesystem fails with it when set
}

func (v *recordingVolumes) CreateFilesystem(name string, size uint64, t pkg.DeviceType) (pkg.Filesystem, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.vols == nil {
		v.vols = map[string]pkg.Filesystem{}
	}
	fs := pkg.Filesystem{Name: name, Path: filepath.Join(v.dir, name), DiskType: t, Usage: pkg.Usage{Size: size}}
	if err := os.MkdirAll(fs.Path, 0o755); err != nil {
		return pkg.Filesystem{}, err
	}
	v.vols[name] = fs
	return fs, nil
}

func (v *recordingVolumes) ReleaseFilesystem(name string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.failRel != nil {
		return v.failRel
	}
	delete(v.vols, name)
	v.released = append(v.released, name)
	return os.RemoveAll(filepath.Join(v.dir, name))
}

func (v *recordingVolumes) Path(name string) (pkg.Filesystem, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	fs, ok := v.vols[name]
	if !ok {
		return pkg.Filesystem{}, os.ErrNotExist
	}
	return fs, nil
}

func TestFailedMountUndoes(t *testing.T) {
	flist := filepath.Join(t.TempDir(), "x.fl")
	os.WriteFile(flist, []byte("whatever"), 0o644)
	vols := &recordingVolumes{dir: t.TempDir()}
	m, r := unitModule(t, vols)
	_, err := m.NamedMount("rw", flist, "", pkg.MountOptions{Limit: 10, Type: pkg.SSDDevice})
	if !errors.Is(err, ErrMount) {
		t.Fatalf("mount that never comes up: %v", err)
	}
	if len(r.services) != 0 || len(vols.vols) != 0 || len(vols.released) != 1 {
		t.Errorf("left services %v volumes %v released %v", r.services, vols.vols, vols.released)
	}
	if _, err := os.Stat(m.mountpoint("rw")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("mount dir left: %v", err)
	}
}

// TestUmountReturnsUnreleasedLayer: a writable layer that cannot be
// released (still busy, say) fails the unmount so the caller retries; the
// retry releases it.
func TestUmountReturnsUnreleasedLayer(t *testing.T) {
	vols := &recordingVolumes{dir: t.TempDir()}
	m, _ := unitModule(t, vols)
	// A layer left by a crash between creating it and starting flistfs.
	if _, err := vols.CreateFilesystem("rw", 10<<20, pkg.SSDDevice); err != nil {
		t.Fatal(err)
	}
	busy := errors.New("device or resource busy")
	vols.failRel = busy
	if err := m.NamedUmount("rw"); !errors.Is(err, busy) {
		t.Fatalf("umount with a busy layer: %v, want the release error", err)
	}
	if _, err := vols.Path("rw"); err != nil {
		t.Fatal("layer gone although its release failed")
	}
	vols.failRel = nil
	if err := m.NamedUmount("rw"); err != nil {
		t.Fatalf("retried umount: %v", err)
	}
	if _, err := vols.Path("rw"); err == nil {
		t.Error("layer still there after a successful umount")
	}
}

func TestFlistHashAndDownload(t *testing.T) {
	content := []byte("an flist archive")
	sum := md5.Sum(content)
	hash := hex.EncodeToString(sum[:])
	var gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/u/x.flist":
			gets.Add(1)
			w.Write(content)
		case "/u/x.flist.md5":
			fmt.Fprintf(w, "  %s\n", hash)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	m, _ := unitModule(t, nil)
	if got, err := m.FlistHash(srv.URL + "/u/x.flist"); err != nil || got != hash {
		t.Fatalf("hash: %q %v", got, err)
	}
	if _, err := m.FlistHash(srv.URL + "/u/missing.flist"); err == nil || err.Error() != "fail to fetch hash, response: 404" {
		t.Fatalf("missing hash: %v", err)
	}
	m.ensureDirs()
	for range 2 {
		got, err := m.download(context.Background(), srv.URL+"/u/x.flist")
		if err != nil || got != hash {
			t.Fatalf("download: %q %v", got, err)
		}
	}
	if n := gets.Load(); n != 1 {
		t.Errorf("%d downloads of a cached flist, want 1", n)
	}
	if b, _ := os.ReadFile(filepath.Join(m.cfg.Root, "flist", hash)); string(b) != string(content) {
		t.Errorf("stored flist %q", b)
	}
	// a damaged local copy is downloaded again
	os.WriteFile(filepath.Join(m.cfg.Root, "flist", hash), []byte("damaged"), 0o644)
	if _, err := m.download(context.Background(), srv.URL+"/u/x.flist"); err != nil || gets.Load() != 2 {
		t.Errorf("damaged copy: %v, %d downloads", err, gets.Load())
	}
	if _, err := m.download(context.Background(), srv.URL+"/u/missing.flist"); !errors.Is(err, ErrDownload) {
		t.Errorf("missing flist: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(m.cfg.Root, "flist"))
	if len(entries) != 1 {
		t.Errorf("flist dir holds %v", entries)
	}
}

func TestHashFromRootPath(t *testing.T) {
	m, _ := unitModule(t, nil)
	m.ensureDirs()
	meta := filepath.Join(m.cfg.Root, "flist", "0123456789abcdef0123456789abcdef")
	// a process whose command line holds "-meta <root>/flist/<md5>", as flistfs
	cmd := exec.Command("sh", "-c", "sleep 30", "-meta", meta)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	os.WriteFile(m.pidFile("c1"), []byte(fmt.Sprintln(cmd.Process.Pid)), 0o644)
	got, err := m.HashFromRootPath("/some/where/c1")
	if err != nil || got != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("hash: %q %v", got, err)
	}
	if _, err := m.HashFromRootPath("nothing"); !errors.Is(err, ErrHashNotFound) {
		t.Errorf("unknown mount: %v", err)
	}
}

func TestReconcileRecords(t *testing.T) {
	m, r := unitModule(t, nil)
	m.ensureDirs()
	// a record without a service: cleaned
	os.WriteFile(m.pidFile("gone"), []byte("999999\n"), 0o644)
	os.WriteFile(m.logFile("gone"), []byte("log\n"), 0o644)
	os.Symlink(m.pidFile("gone"), m.runLink("gone"))
	// a record with a service: kept
	r.Start(context.Background(), m.service("alive"), []string{"x"})
	os.Symlink(m.pidFile("alive"), m.runLink("alive"))
	// a service without record nor mount: stopped
	r.Start(context.Background(), m.service("orphan"), []string{"x"})
	m.Reconcile(context.Background())
	for _, p := range []string{m.pidFile("gone"), m.logFile("gone"), m.runLink("gone")} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s not cleaned", p)
		}
	}
	if _, err := os.Lstat(m.runLink("alive")); err != nil {
		t.Errorf("live record removed: %v", err)
	}
	names, _ := r.List(context.Background(), "")
	if len(names) != 1 || names[0] != m.service("alive") {
		t.Errorf("services after reconcile: %v", names)
	}
}

func TestProcessRunner(t *testing.T) {
	testutil.CheckLeaks(t)
	r := &ProcessRunner{RestartDelay: 50 * time.Millisecond, StopTimeout: time.Second}
	ctx := context.Background()
	name := testutil.Name(t, "svc")
	if err := r.Start(ctx, name, []string{"sleep", "60"}); err != nil {
		t.Fatal(err)
	}
	pid, err := r.Status(ctx, name)
	if err != nil || pid == 0 {
		t.Fatalf("status: %d %v", pid, err)
	}
	if err := r.Start(ctx, name, []string{"sleep", "60"}); err != nil {
		t.Fatal(err)
	}
	if again, _ := r.Status(ctx, name); again != pid {
		t.Errorf("same argv restarted the service: %d -> %d", pid, again)
	}
	exec.Command("kill", "-9", fmt.Sprint(pid)).Run()
	testutil.WaitFor(t, 5*time.Second, "restart", func() error {
		if p, _ := r.Status(ctx, name); p == 0 || p == pid {
			return errors.New("not restarted")
		}
		return nil
	})
	if err := r.Stop(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Status(ctx, name); !errors.Is(err, ErrUnknownService) {
		t.Errorf("after stop: %v", err)
	}
	if err := r.Stop(ctx, name); err != nil {
		t.Errorf("stop of unknown: %v", err)
	}
}

func TestShellJoin(t *testing.T) {
	got := shellJoin([]string{"/bin/flistfs", "-meta", "/a b/it's", "", "k8s:abc"})
	want := `/bin/flistfs -meta '/a b/it'\''s' '' k8s:abc`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
