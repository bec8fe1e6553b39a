package primitives

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/provision"
	"github.com/zos-go/zos/pkg/storage"
	"github.com/zos-go/zos/pkg/storage/storagetest"
)

// smallZDBEnv is a zdbEnv whose pools hold 10 GiB each.
func smallZDBEnv(t *testing.T) *zdbEnv {
	e := newZDBEnv(t, nil)
	e.st = storagetest.NewFake(t.TempDir(), 10*gridtypes.GiB)
	e.p.storage = e.st
	return e
}

// poolUsed is what the storage module counts as reserved on a pool.
func poolUsed(t *testing.T, st *storagetest.Fake, label string) uint64 {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stats, ok := <-st.Monitor(ctx)
	if !ok {
		t.Fatal("no pool stats")
	}
	return stats[label].Used
}

// descriptorSize is the maxsize the namespace's descriptor on disk says.
func descriptorSize(t *testing.T, alloc pkg.Allocation, ns string) uint64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(alloc.VolumePath, ns, storage.NamespaceFile))
	if err != nil {
		t.Fatal(err)
	}
	d, err := storage.DecodeNamespace(b)
	if err != nil {
		t.Fatal(err)
	}
	return d.MaxSizeBytes
}

func wantPermanent(t *testing.T, err error, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) || errors.Is(err, provision.ErrTemporary) || errors.Is(err, provision.ErrDependency) {
		t.Fatalf("%s: %v, want permanent %v", what, err, target)
	}
}

func TestZDBUpdateResizesReservation(t *testing.T) {
	e := smallZDBEnv(t)
	const GiB, cache = gridtypes.GiB, 1 << 20
	a := deployment(t, 12, zdbWorkload(gridtypes.ZDBModeUser, "a", false))
	b := deployment(t, 13, zdbWorkload(gridtypes.ZDBModeUser, "b", false))
	e.provision(t, a)
	e.provision(t, b)
	alloc, _ := e.st.Find("12-1")
	if allocB, _ := e.st.Find("13-1"); allocB != alloc {
		t.Fatalf("volumes %+v %+v", alloc, allocB)
	}
	if got := poolUsed(t, e.st, "fake-ssd"); got != 4*GiB+cache {
		t.Fatalf("used %d", got)
	}

	// grow a: the server, the descriptor and the pool say 6 GiB
	a.Workload = &gridtypes.ZDB{Size: 6, Mode: gridtypes.ZDBModeUser, Password: "a", DiskType: gridtypes.DiskSSD}
	e.provision(t, a)
	if p, _ := e.world.props(alloc.VolumePath, "12-1"); p.maxsize != 6*GiB {
		t.Fatalf("maxsize %d after growing", p.maxsize)
	}
	if got := descriptorSize(t, alloc, "12-1"); got != 6*GiB {
		t.Fatalf("descriptor maxsize %d", got)
	}
	if got := poolUsed(t, e.st, "fake-ssd"); got != 8*GiB+cache {
		t.Fatalf("used %d after growing, want %d", got, 8*GiB+cache)
	}
	// what a grew by is no longer for others: 5 GiB fitted before, not now
	c := deployment(t, 14, &gridtypes.ZDB{Size: 5, Mode: gridtypes.ZDBModeSeq, DiskType: gridtypes.DiskSSD})
	_, err := e.p.Provision(t.Context(), c)
	if _, ok := errors.AsType[pkg.ErrNotEnoughSpace](err); !ok || errors.Is(err, provision.ErrTemporary) {
		t.Fatalf("5 GiB next to a grown namespace: %v", err)
	}
	if err := e.p.Decommission(t.Context(), c); err != nil {
		t.Fatal(err)
	}

	// growing past the pool, shrinking below the data: refused for good,
	// nothing changes
	a.Workload = &gridtypes.ZDB{Size: 9, Mode: gridtypes.ZDBModeUser, Password: "a", DiskType: gridtypes.DiskSSD}
	_, err = e.p.Provision(t.Context(), a)
	if _, ok := errors.AsType[pkg.ErrNotEnoughSpace](err); !ok || errors.Is(err, provision.ErrTemporary) {
		t.Fatalf("growing past the pool: %v", err)
	}
	data, err := os.Create(filepath.Join(alloc.VolumePath, "12-1", "zdb-data-00000"))
	if err != nil {
		t.Fatal(err)
	}
	if err := data.Truncate(int64(3 * GiB / 2)); err != nil { // sparse: 1.5 GiB written by 0-db
		t.Fatal(err)
	}
	data.Close()
	a.Workload = &gridtypes.ZDB{Size: 1, Mode: gridtypes.ZDBModeUser, Password: "a", DiskType: gridtypes.DiskSSD}
	_, err = e.p.Provision(t.Context(), a)
	wantPermanent(t, err, storage.ErrInUse, "shrinking below the data")
	if p, _ := e.world.props(alloc.VolumePath, "12-1"); p.maxsize != 6*GiB {
		t.Fatalf("maxsize %d after refused updates", p.maxsize)
	}
	if got := poolUsed(t, e.st, "fake-ssd"); got != 8*GiB+cache {
		t.Fatalf("used %d after refused updates", got)
	}
	// shrinking above the data is fine
	a.Workload = &gridtypes.ZDB{Size: 2, Mode: gridtypes.ZDBModeUser, Password: "a", DiskType: gridtypes.DiskSSD}
	e.provision(t, a)
	if p, _ := e.world.props(alloc.VolumePath, "12-1"); p.maxsize != 2*GiB || descriptorSize(t, alloc, "12-1") != 2*GiB {
		t.Fatalf("maxsize %d after shrinking", p.maxsize)
	}
	if got := poolUsed(t, e.st, "fake-ssd"); got != 4*GiB+cache {
		t.Fatalf("used %d after shrinking", got)
	}
}

func TestZDBDeleteOneOfTwoGivesSpaceBack(t *testing.T) {
	e := smallZDBEnv(t)
	const GiB, cache = gridtypes.GiB, 1 << 20
	a := deployment(t, 12, &gridtypes.ZDB{Size: 6, Mode: gridtypes.ZDBModeUser, DiskType: gridtypes.DiskSSD})
	b := deployment(t, 13, zdbWorkload(gridtypes.ZDBModeUser, "b", false))
	e.provision(t, a)
	rb := e.provision(t, b)
	alloc, _ := e.st.Find("13-1")
	svc := e.p.ServiceName(alloc.VolumeID)
	c := deployment(t, 14, &gridtypes.ZDB{Size: 5, Mode: gridtypes.ZDBModeSeq, DiskType: gridtypes.DiskSSD})
	if _, err := e.p.Provision(t.Context(), c); err == nil {
		t.Fatal("5 GiB fitted next to 8 GiB on 10")
	}

	if err := e.p.Decommission(t.Context(), &provision.Deployment{Name: a.Name, Reservation: a.Reservation}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Find("12-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("find deleted namespace: %v", err)
	}
	if got := poolUsed(t, e.st, "fake-ssd"); got != 2*GiB+cache {
		t.Fatalf("used %d after deleting 6 GiB of 8", got)
	}
	// the other one is still served, by the same server
	if p, ok := e.world.props(alloc.VolumePath, "13-1"); !ok || p.password != "b" {
		t.Fatalf("namespace 13-1 %+v %v", p, ok)
	}
	if got := e.zi.names(); !slices.Equal(got, []string{svc}) {
		t.Fatalf("services %v", got)
	}
	if again := e.provision(t, b); again.Port != rb.Port {
		t.Fatalf("port %d, was %d", again.Port, rb.Port)
	}
	// the bytes of the deleted one are free for a later allocation
	e.provision(t, c)
	if got := poolUsed(t, e.st, "fake-ssd"); got != 7*GiB+cache {
		t.Fatalf("used %d", got)
	}
}

func TestZDBDecommissionNeverServed(t *testing.T) {
	e := smallZDBEnv(t)
	// two namespaces allocated on a volume whose server never started (the
	// deployments failed before)
	x, err := e.st.Allocate("12-1", pkg.SSDDevice, 2*gridtypes.GiB, pkg.ZDBModeUser)
	if err != nil {
		t.Fatal(err)
	}
	if y, err := e.st.Allocate("13-1", pkg.SSDDevice, 3*gridtypes.GiB, pkg.ZDBModeUser); err != nil || y != x {
		t.Fatalf("%+v %v", y, err)
	}
	dx := deployment(t, 12, zdbWorkload(gridtypes.ZDBModeUser, "", false))
	if err := e.p.Decommission(t.Context(), &provision.Deployment{Name: dx.Name, Reservation: dx.Reservation}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Find("12-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("find: %v", err)
	}
	if _, err := os.Stat(filepath.Join(x.VolumePath, "12-1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("namespace dir: %v", err)
	}
	if got := poolUsed(t, e.st, "fake-ssd"); got != 3*gridtypes.GiB+1<<20 {
		t.Fatalf("used %d", got)
	}
	if y, err := e.st.Find("13-1"); err != nil || y != x || descriptorSize(t, y, "13-1") != 3*gridtypes.GiB {
		t.Fatalf("other namespace: %+v %v", y, err)
	}
	if got := e.zi.names(); len(got) != 0 {
		t.Fatalf("services %v", got)
	}
	dy := deployment(t, 13, zdbWorkload(gridtypes.ZDBModeUser, "", false))
	if err := e.p.Decommission(t.Context(), &provision.Deployment{Name: dy.Name, Reservation: dy.Reservation}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(x.VolumePath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("volume not released: %v", err)
	}
	if got := poolUsed(t, e.st, "fake-ssd"); got != 1<<20 {
		t.Fatalf("used %d", got)
	}
}

// flakyZDBStorage fails the next release calls.
type flakyZDBStorage struct {
	*storagetest.Fake
	failVolume, failNS atomic.Int32
}

var errFlaky = errors.New("flaky storage")

func (s *flakyZDBStorage) ReleaseFilesystem(name string) error {
	if s.failVolume.Add(-1) >= 0 {
		return errFlaky
	}
	return s.Fake.ReleaseFilesystem(name)
}

func (s *flakyZDBStorage) ReleaseNamespace(ctx context.Context, ns string) error {
	if s.failNS.Add(-1) >= 0 {
		return errFlaky
	}
	return s.Fake.ReleaseNamespace(ctx, ns)
}

// TestZDBDecommissionRetried: a Decommission that failed after NSDEL is
// retried and still gives back the reservation, and the volume with its
// server when it was the last namespace.
func TestZDBDecommissionRetried(t *testing.T) {
	e := smallZDBEnv(t)
	st := &flakyZDBStorage{Fake: e.st}
	e.p.storage = st
	a := deployment(t, 12, zdbWorkload(gridtypes.ZDBModeUser, "", false))
	b := deployment(t, 13, zdbWorkload(gridtypes.ZDBModeUser, "", false))
	e.provision(t, a)
	e.provision(t, b)
	alloc, _ := e.st.Find("12-1")

	st.failNS.Store(1)
	da := &provision.Deployment{Name: a.Name, Reservation: a.Reservation}
	if err := e.p.Decommission(t.Context(), da); !errors.Is(err, errFlaky) {
		t.Fatalf("decommission: %v", err)
	}
	if err := e.p.Decommission(t.Context(), da); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Find("12-1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("find after retry: %v", err)
	}
	if got := poolUsed(t, e.st, "fake-ssd"); got != 2*gridtypes.GiB+1<<20 {
		t.Fatalf("used %d", got)
	}

	st.failVolume.Store(1)
	db := &provision.Deployment{Name: b.Name, Reservation: b.Reservation}
	if err := e.p.Decommission(t.Context(), db); !errors.Is(err, errFlaky) || !errors.Is(err, provision.ErrTemporary) {
		t.Fatalf("decommission: %v", err)
	}
	if err := e.p.Decommission(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(alloc.VolumePath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("volume leaked: %v", err)
	}
	if got := e.zi.names(); len(got) != 0 {
		t.Fatalf("services %v", got)
	}
	if got := poolUsed(t, e.st, "fake-ssd"); got != 1<<20 {
		t.Fatalf("used %d", got)
	}
}
