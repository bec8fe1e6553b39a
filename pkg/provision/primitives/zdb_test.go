package primitives

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/network/networktest"
	"github.com/zos-go/zos/pkg/provision"
	"github.com/zos-go/zos/pkg/storage"
	"github.com/zos-go/zos/pkg/storage/storagetest"
	"github.com/zos-go/zos/pkg/zdb"
	"github.com/zos-go/zos/pkg/zinit"
)

// fakeZDBWorld plays 0-db servers: a server runs while zinit runs its
// service; its namespaces live "on disk" (per volume directory), so they
// survive restarts as they would.
type fakeZDBWorld struct {
	mu      sync.Mutex
	servers map[string]*fakeZDBServer          // guarded by mu: by socket path
	disk    map[string]map[string]*fakeNSProps // guarded by mu: volume dir → namespaces
	nsnew   int                                // guarded by mu
}

type fakeZDBServer struct {
	admin string
	dir   string
	mode  string
}

type fakeNSProps struct {
	password string
	public   bool
	maxsize  uint64
}

func newFakeZDBWorld() *fakeZDBWorld {
	return &fakeZDBWorld{servers: map[string]*fakeZDBServer{}, disk: map[string]map[string]*fakeNSProps{}}
}

func flagValue(words []string, flag string) string {
	for i, w := range words {
		if w == flag && i+1 < len(words) {
			return words[i+1]
		}
	}
	return ""
}

// spawn starts a server from its service file; like 0-db it loads every
// namespace directory of its index dir.
func (w *fakeZDBWorld) spawn(t *testing.T, s zinit.InitService) error {
	words := execWords(t, s)
	if i := slices.Index(words, "--"); i >= 0 {
		words = words[i+1:]
	}
	if words[0] != "zdb-test" {
		return fmt.Errorf("no such program %s", words[0])
	}
	dir := flagValue(words, "--index")
	if dir != flagValue(words, "--data") || !slices.Contains(words, "--protect") {
		t.Errorf("server flags %q", words)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	ns := w.disk[dir]
	if ns == nil {
		ns = map[string]*fakeNSProps{}
		w.disk[dir] = ns
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() && ns[e.Name()] == nil {
			ns[e.Name()] = &fakeNSProps{public: true}
		}
	}
	ns["default"] = &fakeNSProps{public: true}
	w.servers[flagValue(words, "--socket")] = &fakeZDBServer{admin: flagValue(words, "--admin"), dir: dir, mode: flagValue(words, "--mode")}
	return nil
}

func (w *fakeZDBWorld) stop(t *testing.T, s zinit.InitService) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.servers, flagValue(execWords(t, s), "--socket"))
}

func (w *fakeZDBWorld) props(dir, ns string) (fakeNSProps, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p, ok := w.disk[dir][ns]
	if !ok {
		return fakeNSProps{}, false
	}
	return *p, true
}

// fakeZDBClient is a zdb.Client of a fakeZDBWorld server.
type fakeZDBClient struct {
	w     *fakeZDBWorld
	sock  string
	admin string
}

func (c *fakeZDBClient) server() (*fakeZDBServer, error) {
	srv := c.w.servers[c.sock]
	if srv == nil {
		return nil, &net.OpError{Op: "dial", Net: "unix", Err: os.ErrNotExist}
	}
	if srv.admin != c.admin {
		return nil, zdb.ErrPermissionDenied
	}
	return srv, nil
}

func (c *fakeZDBClient) do(fn func(srv *fakeZDBServer, ns map[string]*fakeNSProps) error) error {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	srv, err := c.server()
	if err != nil {
		return err
	}
	return fn(srv, c.w.disk[srv.dir])
}

func (c *fakeZDBClient) Connect() error {
	return c.do(func(*fakeZDBServer, map[string]*fakeNSProps) error { return nil })
}
func (c *fakeZDBClient) Close() error { return nil }
func (c *fakeZDBClient) CreateNamespace(name string) error {
	return c.do(func(srv *fakeZDBServer, ns map[string]*fakeNSProps) error {
		if ns[name] != nil {
			return zdb.ErrNamespaceExists
		}
		c.w.nsnew++
		ns[name] = &fakeNSProps{public: true}
		return os.MkdirAll(filepath.Join(srv.dir, name), 0o755)
	})
}
func (c *fakeZDBClient) Exist(name string) (bool, error) {
	var ok bool
	err := c.do(func(_ *fakeZDBServer, ns map[string]*fakeNSProps) error { ok = ns[name] != nil; return nil })
	return ok, err
}
func (c *fakeZDBClient) DeleteNamespace(name string) error {
	return c.do(func(srv *fakeZDBServer, ns map[string]*fakeNSProps) error {
		if ns[name] == nil {
			return zdb.ErrNamespaceNotFound
		}
		delete(ns, name)
		return os.RemoveAll(filepath.Join(srv.dir, name))
	})
}
func (c *fakeZDBClient) Namespaces() ([]string, error) {
	var out []string
	err := c.do(func(_ *fakeZDBServer, ns map[string]*fakeNSProps) error {
		for n := range ns {
			out = append(out, n)
		}
		slices.Sort(out)
		return nil
	})
	return out, err
}
func (c *fakeZDBClient) set(name string, fn func(p *fakeNSProps)) error {
	return c.do(func(_ *fakeZDBServer, ns map[string]*fakeNSProps) error {
		if ns[name] == nil {
			return zdb.ErrNamespaceNotFound
		}
		fn(ns[name])
		return nil
	})
}
func (c *fakeZDBClient) NamespaceSetSize(name string, size uint64) error {
	return c.set(name, func(p *fakeNSProps) { p.maxsize = size })
}
func (c *fakeZDBClient) NamespaceSetPassword(name, pw string) error {
	return c.set(name, func(p *fakeNSProps) { p.password = pw })
}
func (c *fakeZDBClient) NamespaceSetPublic(name string, public bool) error {
	return c.set(name, func(p *fakeNSProps) { p.public = public })
}
func (c *fakeZDBClient) DBSize() (uint64, error) { return 0, nil }

type zdbEnv struct {
	taken sync.Map // ports something else listens on
	p     *ZDB
	zi    *fakeZinit
	world *fakeZDBWorld
	st    *storagetest.Fake
	net   *recNet
	cfg   ZDBConfig
}

// recNet records ZDBDestroy calls of a networktest.Fake.
type recNet struct {
	*networktest.Fake
	mu        sync.Mutex
	destroyed []string
}

func (n *recNet) ZDBDestroy(ns string) error {
	n.mu.Lock()
	n.destroyed = append(n.destroyed, ns)
	n.mu.Unlock()
	return n.Fake.ZDBDestroy(ns)
}

func newZDBEnv(t *testing.T, mod func(*ZDBConfig)) *zdbEnv {
	t.Helper()
	e := &zdbEnv{zi: newFakeZinit(), world: newFakeZDBWorld(), net: &recNet{Fake: networktest.NewFake()}}
	e.st = storagetest.NewFake(t.TempDir(), 100*gridtypes.GiB)
	e.zi.spawn = func(_ string, s zinit.InitService) error { return e.world.spawn(t, s) }
	e.zi.kill = func(_ string, s zinit.InitService) { e.world.stop(t, s) }
	e.cfg = DefaultZDBConfig()
	e.cfg.Command = []string{"zdb-test"}
	e.cfg.ServicePrefix = "n1-"
	e.cfg.RunDir = t.TempDir()
	e.cfg.NetNS = false
	e.cfg.Listen = "127.0.0.1"
	e.cfg.Port = 19900
	e.cfg.Ports = 10
	e.cfg.ReadyTimeout = 200 * time.Millisecond
	e.cfg.AddrTimeout = 200 * time.Millisecond
	if mod != nil {
		mod(&e.cfg)
	}
	var err error
	e.p, err = NewZDB(e.cfg, e.st, e.zi, e.net, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	e.p.portFree = func(port uint16) bool { _, taken := e.taken.Load(port); return !taken }
	e.p.dial = func(addr string) zdb.Client {
		u, err := url.Parse(addr)
		if err != nil || u.Scheme != "unix" {
			t.Fatalf("dial %q", addr)
		}
		return &fakeZDBClient{w: e.world, sock: u.Path, admin: u.User.Username()}
	}
	return e
}

func zdbWorkload(mode gridtypes.ZDBMode, pw string, public bool) *gridtypes.ZDB {
	return &gridtypes.ZDB{Size: 2, Mode: mode, Password: pw, DiskType: gridtypes.DiskSSD, Public: public}
}

func (e *zdbEnv) provision(t *testing.T, d *provision.Deployment) gridtypes.ZDBResult {
	t.Helper()
	res, err := e.p.Provision(t.Context(), d)
	if err != nil {
		t.Fatalf("provision %s: %v", d.Name, err)
	}
	return res.(gridtypes.ZDBResult)
}

func TestZDBProvision(t *testing.T) {
	e := newZDBEnv(t, nil)
	d := deployment(t, 12, zdbWorkload(gridtypes.ZDBModeUser, "s3cret", false))
	res := e.provision(t, d)
	want := gridtypes.ZDBResult{Namespace: "12-1", IPs: []string{"127.0.0.1"}, Port: 19900}
	if res.Namespace != want.Namespace || !slices.Equal(res.IPs, want.IPs) || res.Port != want.Port {
		t.Fatalf("result %+v, want %+v", res, want)
	}
	alloc, err := e.st.Find("12-1")
	if err != nil {
		t.Fatal(err)
	}
	svc := e.p.ServiceName(alloc.VolumeID)
	if got := e.zi.names(); !slices.Equal(got, []string{svc}) {
		t.Fatalf("services %v, want %s", got, svc)
	}
	file, _ := e.zi.file(svc)
	words := execWords(t, file)
	for flag, want := range map[string]string{"--mode": "user", "--data": alloc.VolumePath, "--listen": "127.0.0.1",
		"--port": "19900", "--socket": e.p.SocketPath(alloc.VolumeID)} {
		if got := flagValue(words, flag); got != want {
			t.Errorf("%s %q, want %q", flag, got, want)
		}
	}
	p, ok := e.world.props(alloc.VolumePath, "12-1")
	if !ok || p != (fakeNSProps{password: "s3cret", public: false, maxsize: 2 * gridtypes.GiB}) {
		t.Fatalf("namespace %+v %v", p, ok)
	}
	fi, err := os.Stat(filepath.Join(alloc.VolumePath, zdbStateFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", fi, err)
	}

	// an update: no password any more, public, bigger
	d.Workload = &gridtypes.ZDB{Size: 3, Mode: gridtypes.ZDBModeUser, DiskType: gridtypes.DiskSSD, Public: true}
	e.provision(t, d)
	if p, _ := e.world.props(alloc.VolumePath, "12-1"); p != (fakeNSProps{public: true, maxsize: 3 * gridtypes.GiB}) {
		t.Fatalf("updated namespace %+v", p)
	}
	if n := e.zi.startCount(svc); n != 1 {
		t.Fatalf("server started %d times", n)
	}
}

func TestZDBRestartAndPowerCut(t *testing.T) {
	e := newZDBEnv(t, nil)
	d := deployment(t, 12, zdbWorkload(gridtypes.ZDBModeSeq, "pw", true))
	first := e.provision(t, d)
	alloc, _ := e.st.Find("12-1")
	svc := e.p.ServiceName(alloc.VolumeID)

	// the process died and zinit did not restart it yet
	e.zi.crash(svc)
	e.zi.mu.Lock()
	e.zi.monitored[svc].target = zinit.ServiceTargetDown
	e.zi.mu.Unlock()
	if again := e.provision(t, d); again.Port != first.Port {
		t.Fatalf("port %d, was %d", again.Port, first.Port)
	}
	// power cut: no process, zinit's services and the run dir are gone
	e.zi.powerCut()
	if err := os.RemoveAll(e.cfg.RunDir); err != nil {
		t.Fatal(err)
	}
	again := e.provision(t, d)
	if again.Port != first.Port || again.Namespace != first.Namespace {
		t.Fatalf("after power cut %+v, was %+v", again, first)
	}
	if p, _ := e.world.props(alloc.VolumePath, "12-1"); p.password != "pw" || !p.public {
		t.Fatalf("namespace after power cut %+v", p)
	}
	if e.world.nsnew != 0 {
		// the storage module wrote the namespace before the first start
		t.Fatalf("NSNEW called %d times for a namespace on disk", e.world.nsnew)
	}
	if n := e.zi.startCount(svc); n != 3 {
		t.Fatalf("server started %d times, want 3", n)
	}
	f1, _ := e.zi.file(svc)
	if flagValue(execWords(t, f1), "--mode") != "seq" {
		t.Fatalf("exec %q", f1.Exec)
	}

	// while it runs, its port is its own
	e.taken.Store(first.Port, true)
	if again := e.provision(t, d); again.Port != first.Port {
		t.Fatalf("running server moved to port %d", again.Port)
	}
	// after another power cut something else took the port: it moves
	e.zi.powerCut()
	again = e.provision(t, d)
	if again.Port != first.Port+1 {
		t.Fatalf("port %d, want %d", again.Port, first.Port+1)
	}
	f2, _ := e.zi.file(svc)
	if flagValue(execWords(t, f2), "--port") != fmt.Sprint(first.Port+1) {
		t.Fatalf("exec %q", f2.Exec)
	}
}

func TestZDBSharedVolumeAndRelease(t *testing.T) {
	e := newZDBEnv(t, nil)
	ctx := t.Context()
	a := deployment(t, 12, zdbWorkload(gridtypes.ZDBModeUser, "a", false))
	b := deployment(t, 13, zdbWorkload(gridtypes.ZDBModeUser, "b", false))
	s := deployment(t, 14, zdbWorkload(gridtypes.ZDBModeSeq, "", false))
	ra, rb, rs := e.provision(t, a), e.provision(t, b), e.provision(t, s)
	allocA, _ := e.st.Find("12-1")
	allocB, _ := e.st.Find("13-1")
	allocS, _ := e.st.Find("14-1")
	if allocA.VolumeID != allocB.VolumeID || allocA.VolumeID == allocS.VolumeID {
		t.Fatalf("volumes %s %s %s", allocA.VolumeID, allocB.VolumeID, allocS.VolumeID)
	}
	if ra.Port != rb.Port || ra.Port == rs.Port {
		t.Fatalf("ports %d %d %d", ra.Port, rb.Port, rs.Port)
	}
	if got := e.zi.names(); len(got) != 2 {
		t.Fatalf("services %v", got)
	}

	if err := e.p.Decommission(ctx, &provision.Deployment{Name: a.Name, Reservation: a.Reservation}); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.world.props(allocA.VolumePath, "12-1"); ok {
		t.Fatal("namespace 12-1 still there")
	}
	if _, err := os.Stat(filepath.Join(allocA.VolumePath, "12-1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("namespace dir: %v", err)
	}
	if _, ok := e.world.props(allocB.VolumePath, "13-1"); !ok {
		t.Fatal("namespace 13-1 lost")
	}
	if got := e.zi.names(); len(got) != 2 {
		t.Fatalf("services %v", got)
	}
	// again: nothing to do
	if err := e.p.Decommission(ctx, &provision.Deployment{Name: a.Name, Reservation: a.Reservation}); err != nil {
		t.Fatal(err)
	}

	if err := e.p.Decommission(ctx, &provision.Deployment{Name: b.Name, Reservation: b.Reservation}); err != nil {
		t.Fatal(err)
	}
	if got := e.zi.names(); !slices.Equal(got, []string{e.p.ServiceName(allocS.VolumeID)}) {
		t.Fatalf("services %v", got)
	}
	if _, err := os.Stat(allocA.VolumePath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("volume not released: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(e.p.SocketPath(allocA.VolumeID))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket dir left: %v", err)
	}
	if _, err := e.st.Find("13-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("find after release: %v", err)
	}
	// the port of the released volume is handed out again
	c := deployment(t, 15, zdbWorkload(gridtypes.ZDBModeUser, "c", false))
	if rc := e.provision(t, c); rc.Port != ra.Port {
		t.Fatalf("port %d, want the released %d", rc.Port, ra.Port)
	}
}

func TestZDBModeNeverChanges(t *testing.T) {
	e := newZDBEnv(t, nil)
	d := deployment(t, 12, zdbWorkload(gridtypes.ZDBModeUser, "", false))
	e.provision(t, d)
	d.Workload = zdbWorkload(gridtypes.ZDBModeSeq, "", false)
	_, err := e.p.Provision(t.Context(), d)
	if !errors.Is(err, storage.ErrModeMismatch) {
		t.Fatalf("mode change: %v", err)
	}
	if errors.Is(err, provision.ErrTemporary) || errors.Is(err, provision.ErrDependency) {
		t.Fatalf("mode change retried: %v", err)
	}
}

func TestZDBBadInput(t *testing.T) {
	e := newZDBEnv(t, nil)
	for _, w := range []*gridtypes.ZDB{
		zdbWorkload(gridtypes.ZDBModeUser, "*", false),
		zdbWorkload(gridtypes.ZDBModeUser, strings.Repeat("x", 256), false),
		zdbWorkload("direct", "", false),
		{Size: 0, Mode: gridtypes.ZDBModeUser, DiskType: gridtypes.DiskSSD},
	} {
		_, err := e.p.Provision(t.Context(), deployment(t, 12, w))
		if err == nil || errors.Is(err, provision.ErrTemporary) {
			t.Errorf("%+v: %v", w, err)
		}
	}
	if _, err := e.p.Provision(t.Context(), deployment(t, 12, &gridtypes.Volume{Size: 1})); err == nil {
		t.Error("volume accepted")
	}
	// too big for the node: permanent
	_, err := e.p.Provision(t.Context(), deployment(t, 12, &gridtypes.ZDB{Size: 1000, Mode: gridtypes.ZDBModeUser, DiskType: gridtypes.DiskHDD}))
	if _, ok := errors.AsType[pkg.ErrNotEnoughSpace](err); !ok || errors.Is(err, provision.ErrTemporary) {
		t.Errorf("too big: %v", err)
	}
	if _, err := e.st.Find("12-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("allocated anyway: %v", err)
	}
	if got := e.zi.names(); len(got) != 0 {
		t.Fatalf("services %v", got)
	}
	// never provisioned: decommission is a no-op
	if err := e.p.Decommission(t.Context(), deployment(t, 99, zdbWorkload(gridtypes.ZDBModeUser, "", false))); err != nil {
		t.Fatal(err)
	}
}

func TestZDBServerDoesNotStart(t *testing.T) {
	e := newZDBEnv(t, func(c *ZDBConfig) { c.Command = []string{"/missing/zdb"} })
	start := time.Now()
	_, err := e.p.Provision(t.Context(), deployment(t, 12, zdbWorkload(gridtypes.ZDBModeUser, "", false)))
	if !errors.Is(err, provision.ErrTemporary) || !strings.Contains(err.Error(), "failure") {
		t.Fatalf("missing binary: %v", err)
	}
	if time.Since(start) > e.cfg.ReadyTimeout {
		t.Fatalf("took %v: a failed spawn must not wait for the timeout", time.Since(start))
	}
	// the engine undoes a failed deployment with Decommission: the volume
	// goes, the service too (it never answered)
	e.zi.mu.Lock()
	e.zi.spawn = func(_ string, s zinit.InitService) error { return e.world.spawn(t, s) }
	e.zi.mu.Unlock()
	e.p.cfg.Command = []string{"zdb-test"}
	d := deployment(t, 12, zdbWorkload(gridtypes.ZDBModeUser, "", false))
	if err := e.p.Decommission(t.Context(), &provision.Deployment{Name: d.Name, Reservation: d.Reservation}); err != nil {
		t.Fatal(err)
	}
	if got := e.zi.names(); len(got) != 0 {
		t.Fatalf("services %v", got)
	}
	if _, err := e.st.Find("12-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("volume kept: %v", err)
	}
}

func TestZDBNetNS(t *testing.T) {
	e := newZDBEnv(t, func(c *ZDBConfig) { c.NetNS = true; c.Listen = "::"; c.Port = 9900 })
	d := deployment(t, 12, zdbWorkload(gridtypes.ZDBModeUser, "x", false))
	alloc, err := e.st.Allocate("12-1", pkg.SSDDevice, 2*gridtypes.GiB, pkg.ZDBModeUser)
	if err != nil {
		t.Fatal(err)
	}
	hw := ZDBHardwareAddr(alloc.VolumeID)
	ns := "zdb-ns-" + strings.ReplaceAll(hw.String(), ":", "")

	// zdb0 has no public address yet: retried, not failed
	e.net.SetAddrs("zdb0", ns, []net.IP{net.ParseIP("fe80::1")})
	_, err = e.p.Provision(t.Context(), d)
	if !errors.Is(err, provision.ErrDependency) {
		t.Fatalf("no address: %v", err)
	}
	e.net.SetAddrs("zdb0", ns, []net.IP{net.ParseIP("fe80::1"), net.ParseIP("2001:db8:1::5"), net.ParseIP("fd00::1"), net.ParseIP("301:1234::9")})
	res := e.provision(t, d)
	if !slices.Equal(res.IPs, []string{"2001:db8:1::5", "301:1234::9"}) || res.Port != 9900 {
		t.Fatalf("result %+v", res)
	}
	file, _ := e.zi.file(e.p.ServiceName(alloc.VolumeID))
	words := execWords(t, file)
	if !slices.Equal(words[:3], []string{"nsenter", "--net=/run/netns/" + ns, "--"}) || flagValue(words, "--listen") != "::" {
		t.Fatalf("exec %q", words)
	}
	if err := e.p.Decommission(t.Context(), &provision.Deployment{Name: d.Name, Reservation: d.Reservation}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(e.net.destroyed, []string{ns}) {
		t.Fatalf("destroyed %v", e.net.destroyed)
	}
}

func TestZDBConcurrent(t *testing.T) {
	e := newZDBEnv(t, nil)
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 20 {
		d := deployment(t, uint64(100+i), zdbWorkload([]gridtypes.ZDBMode{gridtypes.ZDBModeUser, gridtypes.ZDBModeSeq}[i%2], "", false))
		wg.Go(func() {
			if _, err := e.p.Provision(ctx, d); err != nil {
				errs <- err
				return
			}
			if i%3 == 0 {
				errs <- e.p.Decommission(ctx, &provision.Deployment{Name: d.Name, Reservation: d.Reservation})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// every namespace not decommissioned is served
	for i := range 20 {
		name := fmt.Sprintf("%d-1", 100+i)
		alloc, err := e.st.Find(name)
		_, served := e.world.props(alloc.VolumePath, name)
		if i%3 != 0 && (err != nil || !served) {
			t.Errorf("%s: %v served=%v", name, err, served)
		}
		if i%3 == 0 && served {
			t.Errorf("%s still served", name)
		}
	}
}

func TestZDBConfigValidate(t *testing.T) {
	if err := DefaultZDBConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*ZDBConfig){
		"command": func(c *ZDBConfig) { c.Command = nil },
		"run dir": func(c *ZDBConfig) { c.RunDir = "run" },
		"listen":  func(c *ZDBConfig) { c.Listen = "localhost" },
		"port":    func(c *ZDBConfig) { c.Port = 0 },
		"nsenter": func(c *ZDBConfig) { c.NSEnter = "" },
		"range":   func(c *ZDBConfig) { c.NetNS = false; c.Port = 65530; c.Ports = 10 },
		"timeout": func(c *ZDBConfig) { c.ReadyTimeout = 0 },
		"address": func(c *ZDBConfig) { c.Addresses = []string{"x"} },
		"prefix":  func(c *ZDBConfig) { c.ServicePrefix = "a/b" },
	} {
		c := DefaultZDBConfig()
		mod(&c)
		if c.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	log := slog.New(slog.DiscardHandler)
	if _, err := NewZDB(DefaultZDBConfig(), storagetest.NewFake(t.TempDir(), 1<<30), newFakeZinit(), nil, log); err == nil {
		t.Error("netns without networker accepted")
	}
}

func TestExecPort(t *testing.T) {
	for exec, want := range map[string]uint16{
		"zdb --port 9901 --x":   9901,
		"zdb '--port' '123'":    123,
		"zdb --port":            0,
		"zdb --port 70000":      0,
		"zdb --listen :: 'open": 0,
	} {
		if got := execPort(exec); got != want {
			t.Errorf("%q: %d, want %d", exec, got, want)
		}
	}
}

func FuzzZDBState(f *testing.F) {
	f.Add([]byte(`{"mode":"user","port":9900,"admin":"00112233445566778899aabbccddeeff"}`))
	f.Add([]byte(`{"mode":"seq","port":1,"admin":"0011223344556677"}`))
	f.Add([]byte(`{"mode":"mixed"}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseZDBState(b)
		if err != nil {
			if !errors.Is(err, ErrBadState) {
				t.Fatalf("error %v does not wrap ErrBadState", err)
			}
			return
		}
		// what is accepted can only put hex on the command line
		if strings.ContainsAny(s.Admin, " '\"\\-") || (s.Mode != "user" && s.Mode != "seq") {
			t.Fatalf("accepted %+v", s)
		}
	})
}
