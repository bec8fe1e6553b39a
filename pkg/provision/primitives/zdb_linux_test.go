package primitives

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/provision"
	"github.com/zos-go/zos/pkg/storage"
	"github.com/zos-go/zos/pkg/storage/storagetest"
	"github.com/zos-go/zos/pkg/zdb/zdbtest"
	"github.com/zos-go/zos/pkg/zinit"
	"github.com/zos-go/zos/pkg/zinit/zinittest"
)

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
	cfg.Port = uint16(testutil.FreePort(t))
	cfg.Ports = 20
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

	// decommission: the first namespace goes, the second stays
	if err := p.Decommission(ctx, &provision.Deployment{Name: a.Name, Reservation: a.Reservation}); err != nil {
		t.Fatal(err)
	}
	if _, err := selectNS(t, ra.Port, "12-1", "s3cret"); err == nil {
		t.Fatal("deleted namespace still selectable")
	}
	cb, err := selectNS(t, ra.Port, "13-1", "")
	if err != nil {
		t.Fatalf("other namespace: %v", err)
	}
	if err := cb.Do(ctx, "SET", "b", "1").Err(); err != nil {
		t.Fatalf("write to the other namespace: %v", err)
	}
	pid, _ := cl.Status(svc)
	for _, d := range []*provision.Deployment{b, s} {
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
	for _, ns := range []string{"12-1", "13-1", "14-1"} {
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
