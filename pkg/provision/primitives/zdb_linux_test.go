package primitives

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zos-go/zos/internal/netns"
	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/network/networktest"
	"github.com/zos-go/zos/pkg/provision"
	"github.com/zos-go/zos/pkg/storage"
	"github.com/zos-go/zos/pkg/storage/storagetest"
	"github.com/zos-go/zos/pkg/zdb/zdbtest"
	"github.com/zos-go/zos/pkg/zinit"
	"github.com/zos-go/zos/pkg/zinit/zinittest"
)

// testPortRange returns the first of 20 ports below the ephemeral range
// (where FreePort and outgoing connections take theirs), so a port a server
// had is normally still free when it restarts, as on a node.
func testPortRange() uint16 { return uint16(20000 + 20*rand.IntN(450)) }

// redisConn opens one connection to a 0-db over TCP, as a user would.
func redisConn(t *testing.T, port uint16) *redis.Conn {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(int(port)), Protocol: 2,
		DisableIdentity: true, MaxRetries: -1, DialTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second})
	t.Cleanup(func() { rdb.Close() })
	c := rdb.Conn()
	t.Cleanup(func() { c.Close() })
	return c
}

// selectNS opens a connection and SELECTs ns with password (none when
// empty).
func selectNS(t *testing.T, port uint16, ns, password string) (*redis.Conn, error) {
	t.Helper()
	c := redisConn(t, port)
	args := []any{"SELECT", ns}
	if password != "" {
		args = append(args, password)
	}
	return c, c.Do(t.Context(), args...).Err()
}

// TestZDBReal deploys 0-db namespaces on our zdb server run by a private
// zinit, on volumes that are real directories, and uses them over TCP.
func TestZDBReal(t *testing.T) {
	testutil.RequireRoot(t, "go")
	testutil.CheckLeaks(t)
	cl, daemon := zinittest.Start(t)
	st := storagetest.NewFake(testutil.TempDir(t), 20*gridtypes.GiB)
	cfg := DefaultZDBConfig()
	cfg.Command = []string{zdbtest.Binary(t)}
	cfg.ServicePrefix = testutil.Name(t, "zdb") + "-"
	cfg.RunDir = testutil.TempDir(t)
	cfg.NetNS = false
	cfg.Listen = "127.0.0.1"
	cfg.Port, cfg.Ports = testPortRange(), 20
	cfg.ReadyTimeout = 30 * time.Second
	p, err := NewZDB(cfg, st, cl, nil, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	a := deployment(t, 12, zdbWorkload(gridtypes.ZDBModeUser, "s3cret", false))
	res, err := p.Provision(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	ra := res.(gridtypes.ZDBResult)
	if ra.Namespace != "12-1" || len(ra.IPs) != 1 || ra.IPs[0] != "127.0.0.1" {
		t.Fatalf("result %+v", ra)
	}

	// the owner writes and reads with the password
	c, err := selectNS(t, ra.Port, "12-1", "s3cret")
	if err != nil {
		t.Fatalf("select with password: %v", err)
	}
	if err := c.Do(ctx, "SET", "key", "value").Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Do(ctx, "GET", "key").Text(); err != nil || v != "value" {
		t.Fatalf("get: %q %v", v, err)
	}
	// others cannot
	if _, err := selectNS(t, ra.Port, "12-1", "wrong"); err == nil {
		t.Fatal("wrong password accepted")
	}
	if _, err := selectNS(t, ra.Port, "12-1", ""); err == nil {
		t.Fatal("private namespace opened without password")
	}
	// a network client is no admin: no NSDEL, no NSSET, no NSNEW, no writes
	// to default
	c2 := redisConn(t, ra.Port)
	for _, cmd := range [][]any{{"NSDEL", "12-1"}, {"NSSET", "12-1", "password", "*"}, {"NSNEW", "mine"}, {"SET", "k", "v"}} {
		if err := c2.Do(ctx, cmd...).Err(); err == nil {
			t.Errorf("%v accepted from the network", cmd)
		}
	}

	alloc, err := st.Find("12-1")
	if err != nil {
		t.Fatal(err)
	}
	svc := p.ServiceName(alloc.VolumeID)
	status, err := cl.Status(svc)
	if err != nil || status.Pid == 0 {
		t.Fatalf("service %s: %+v %v", svc, status, err)
	}

	// a power cut: zinit and the server die, zinit's services and the run
	// directory are gone; provisioning again brings the namespace back
	daemon.Kill()
	if err := syscall.Kill(status.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "zdb gone", func() error {
		if testutil.ProcessAlive(status.Pid) {
			return errors.New("alive")
		}
		return nil
	})
	for _, dir := range []string{daemon.StateDir, cfg.RunDir} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Remove(filepath.Join(daemon.ConfigDir, svc+".yaml")); err != nil {
		t.Fatal(err)
	}
	daemon.Restart()
	res, err = p.Provision(ctx, a)
	if err != nil {
		t.Fatalf("provision after power cut: %v", err)
	}
	if again := res.(gridtypes.ZDBResult); again.Port != ra.Port {
		t.Fatalf("port %d after power cut, was %d", again.Port, ra.Port)
	}
	c, err = selectNS(t, ra.Port, "12-1", "s3cret")
	if err != nil {
		t.Fatalf("select after power cut: %v", err)
	}
	if v, err := c.Do(ctx, "GET", "key").Text(); err != nil || v != "value" {
		t.Fatalf("data after power cut: %q %v", v, err)
	}
	if _, err := selectNS(t, ra.Port, "12-1", "wrong"); err == nil {
		t.Fatal("wrong password accepted after power cut")
	}

	// the process killed: zinit restarts it, provisioning finds it
	status, _ = cl.Status(svc)
	if err := syscall.Kill(status.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Provision(ctx, a); err != nil {
		t.Fatalf("provision after kill: %v", err)
	}
	c, err = selectNS(t, ra.Port, "12-1", "s3cret")
	if err != nil {
		t.Fatalf("select after kill: %v", err)
	}
	if v, err := c.Do(ctx, "GET", "key").Text(); err != nil || v != "value" {
		t.Fatalf("data after kill: %q %v", v, err)
	}

	// a second namespace of the same mode shares the server; one of the
	// other mode gets its own, on another port
	b := deployment(t, 13, zdbWorkload(gridtypes.ZDBModeUser, "", true))
	res, err = p.Provision(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if rb := res.(gridtypes.ZDBResult); rb.Port != ra.Port {
		t.Fatalf("second namespace on port %d, first on %d", rb.Port, ra.Port)
	}
	cb, err := selectNS(t, ra.Port, "13-1", "")
	if err != nil {
		t.Fatalf("second namespace: %v", err)
	}
	if err := cb.Do(ctx, "SET", "b0", "before").Err(); err != nil {
		t.Fatal(err)
	}
	// an update grows it: the server's limit, its descriptor and the pool
	b.Workload = &gridtypes.ZDB{Size: 5, Mode: gridtypes.ZDBModeUser, DiskType: gridtypes.DiskSSD, Public: true}
	if _, err := p.Provision(ctx, b); err != nil {
		t.Fatalf("grow: %v", err)
	}
	if got := nsLimit(t, ra.Port, "13-1"); got != 5*gridtypes.GiB {
		t.Fatalf("server's limit %d after growing", got)
	}
	if got := descriptorSize(t, alloc, "13-1"); got != 5*gridtypes.GiB {
		t.Fatalf("descriptor maxsize %d after growing", got)
	}
	if got := poolUsed(t, st, "fake-ssd"); got != 7*gridtypes.GiB+1<<20 {
		t.Fatalf("pool used %d after growing", got)
	}
	s := deployment(t, 14, zdbWorkload(gridtypes.ZDBModeSeq, "seq", false))
	res, err = p.Provision(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	rs := res.(gridtypes.ZDBResult)
	if rs.Port == ra.Port {
		t.Fatalf("seq namespace on the user server's port %d", rs.Port)
	}
	cs, err := selectNS(t, rs.Port, "14-1", "seq")
	if err != nil {
		t.Fatal(err)
	}
	id, err := cs.Do(ctx, "SET", "", "first").Text()
	if err != nil {
		t.Fatalf("seq set: %v", err)
	}
	if v, err := cs.Do(ctx, "GET", id).Text(); err != nil || v != "first" {
		t.Fatalf("seq get: %q %v", v, err)
	}

	if got := poolUsed(t, st, "fake-ssd"); got != 9*gridtypes.GiB+1<<20 {
		t.Fatalf("pool used %d", got)
	}
	// 12 GiB more do not fit on the 20 GiB pool
	big := deployment(t, 15, &gridtypes.ZDB{Size: 12, Mode: gridtypes.ZDBModeSeq, DiskType: gridtypes.DiskSSD})
	if _, err := p.Provision(ctx, big); err == nil {
		t.Fatal("12 GiB fitted next to 9 GiB on 20")
	}

	// decommission: the first namespace goes, the second stays
	if err := p.Decommission(ctx, &provision.Deployment{Name: a.Name, Reservation: a.Reservation}); err != nil {
		t.Fatal(err)
	}
	if _, err := selectNS(t, ra.Port, "12-1", "s3cret"); err == nil {
		t.Fatal("deleted namespace still selectable")
	}
	if _, err := st.Find("12-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleted namespace still reserved: %v", err)
	}
	cb, err = selectNS(t, ra.Port, "13-1", "")
	if err != nil {
		t.Fatalf("other namespace: %v", err)
	}
	if v, err := cb.Do(ctx, "GET", "b0").Text(); err != nil || v != "before" {
		t.Fatalf("other namespace's data: %q %v", v, err)
	}
	if err := cb.Do(ctx, "SET", "b", "1").Err(); err != nil {
		t.Fatalf("write to the other namespace: %v", err)
	}
	if got := nsLimit(t, ra.Port, "13-1"); got != 5*gridtypes.GiB {
		t.Fatalf("other namespace's limit %d", got)
	}
	// its bytes are back: now the 12 GiB fit
	if got := poolUsed(t, st, "fake-ssd"); got != 7*gridtypes.GiB+1<<20 {
		t.Fatalf("pool used %d after deleting 2 GiB", got)
	}
	res, err = p.Provision(ctx, big)
	if err != nil {
		t.Fatalf("12 GiB after the delete: %v", err)
	}
	if rbig := res.(gridtypes.ZDBResult); rbig.Port != rs.Port {
		t.Fatalf("seq namespace on port %d, the seq server is on %d", rbig.Port, rs.Port)
	}
	pid, _ := cl.Status(svc)
	for _, d := range []*provision.Deployment{b, s, big} {
		if err := p.Decommission(ctx, &provision.Deployment{Name: d.Name, Reservation: d.Reservation}); err != nil {
			t.Fatal(err)
		}
	}
	if testutil.ProcessAlive(pid.Pid) {
		t.Fatalf("zdb %d still running", pid.Pid)
	}
	list, err := cl.List()
	if err != nil {
		t.Fatal(err)
	}
	for name := range list {
		if strings.HasPrefix(name, cfg.ServicePrefix) {
			t.Errorf("service %s left", name)
		}
	}
	for _, ns := range []string{"12-1", "13-1", "14-1", "15-1"} {
		if _, err := st.Find(ns); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: volume not released: %v", ns, err)
		}
	}
	if _, err := os.Stat(alloc.VolumePath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("volume dir left: %v", err)
	}
	if _, err := cl.Status(svc); !errors.Is(err, zinit.ErrUnknownService) {
		t.Fatalf("service status: %v", err)
	}
}

// nsLimit is the data limit of namespace ns as its server reports it to
// a network client (NSINFO).
func nsLimit(t *testing.T, port uint16, ns string) uint64 {
	t.Helper()
	info, err := redisConn(t, port).Do(t.Context(), "NSINFO", ns).Text()
	if err != nil {
		t.Fatalf("NSINFO %s: %v", ns, err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "data_limits_bytes: "); ok {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				t.Fatalf("NSINFO %s: %q", ns, line)
			}
			return n
		}
	}
	t.Fatalf("NSINFO %s: no limit in %q", ns, info)
	return 0
}

// zdbNSNet is a Networker whose ZDBPrepare hands out a namespace the test
// made (the real one needs the node's br-pub).
type zdbNSNet struct {
	*networktest.Fake
	ns                  string
	mu                  sync.Mutex
	prepared, destroyed int
}

func (n *zdbNSNet) ZDBPrepare(net.HardwareAddr) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.prepared++
	return n.ns, nil
}

func (n *zdbNSNet) ZDBDestroy(ns string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ns == n.ns {
		n.destroyed++
	}
	return nil
}

// TestZDBRealNetNS runs a server the way a node does: inside the 0-db
// network namespace (through nsenter), on port 9900, reached on zdb0's
// address.
func TestZDBRealNetNS(t *testing.T) {
	testutil.RequireRoot(t, "go", "ip", "nsenter")
	testutil.CheckLeaks(t)
	cl, _ := zinittest.Start(t)
	ns := testutil.NetNS(t)
	for _, args := range [][]string{
		{"ip", "link", "add", "zdb0", "type", "veth", "peer", "name", "zdbp"},
		{"ip", "-6", "addr", "add", "2001:db8::5/64", "dev", "zdb0", "nodad"},
		{"ip", "link", "set", "zdbp", "up"},
		{"ip", "link", "set", "zdb0", "up"},
	} {
		if out, err := testutil.InNetNS(t, ns, args[0], args[1:]...); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	nw := &zdbNSNet{Fake: networktest.NewFake(), ns: ns}
	nw.SetAddrs("zdb0", ns, []net.IP{net.ParseIP("fe80::1"), net.ParseIP("2001:db8::5")})

	st := storagetest.NewFake(testutil.TempDir(t), 20*gridtypes.GiB)
	cfg := DefaultZDBConfig()
	cfg.Command = []string{zdbtest.Binary(t)}
	cfg.ServicePrefix = testutil.Name(t, "zdb") + "-"
	cfg.RunDir = testutil.TempDir(t)
	cfg.ReadyTimeout = 30 * time.Second
	p, err := NewZDB(cfg, st, cl, nw, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	d := deployment(t, 21, zdbWorkload(gridtypes.ZDBModeUser, "pw", false))
	res, err := p.Provision(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	r := res.(gridtypes.ZDBResult)
	if r.Port != 9900 || len(r.IPs) != 1 || r.IPs[0] != "2001:db8::5" {
		t.Fatalf("result %+v", r)
	}

	rdb := redis.NewClient(&redis.Options{
		Addr: net.JoinHostPort(r.IPs[0], strconv.Itoa(int(r.Port))), Protocol: 2, DisableIdentity: true, MaxRetries: -1,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := netns.Do(ns, func() error {
				var err error
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	})
	defer rdb.Close()
	c := rdb.Conn()
	defer c.Close()
	ctx := t.Context()
	if err := c.Do(ctx, "SELECT", "21-1", "pw").Err(); err != nil {
		t.Fatalf("select: %v", err)
	}
	if err := c.Do(ctx, "SET", "k", "v").Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Do(ctx, "GET", "k").Text(); err != nil || v != "v" {
		t.Fatalf("get %q %v", v, err)
	}
	// not reachable from the test's own namespace: it lives in its own
	if conn, err := net.DialTimeout("tcp", "[2001:db8::5]:9900", 500*time.Millisecond); err == nil {
		conn.Close()
		t.Fatal("server reachable outside its namespace")
	}

	alloc, _ := st.Find("21-1")
	status, err := cl.Status(p.ServiceName(alloc.VolumeID))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Decommission(ctx, &provision.Deployment{Name: d.Name, Reservation: d.Reservation}); err != nil {
		t.Fatal(err)
	}
	if testutil.ProcessAlive(status.Pid) {
		t.Fatalf("zdb %d still running", status.Pid)
	}
	if nw.destroyed != 1 {
		t.Fatalf("namespace destroyed %d times", nw.destroyed)
	}
}
