package primitives

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/container/containertest"
	"github.com/zos-go/zos/pkg/flist/flisttest"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/network/networktest"
	"github.com/zos-go/zos/pkg/provision"
	"github.com/zos-go/zos/pkg/storage/storagetest"
)

const testCtFlist = "https://hub.test/alice/busybox.fl"

type ctEnv struct {
	c     Container
	store *provision.MemStore
	net   *networktest.Fake
	fl    *flisttest.Fake
	rt    *containertest.Fake
	st    *storagetest.Fake
}

func newCtEnv(t *testing.T) *ctEnv {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "image")
	writeFiles(t, root, map[string]string{"bin/sh": "#!", "www/index.html": "hi", "data/.keep": ""})
	if err := os.Chmod(filepath.Join(root, "bin/sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	e := &ctEnv{store: provision.NewMemStore(), net: networktest.NewFake(), fl: flisttest.NewFake(filepath.Join(dir, "flist")),
		rt: containertest.NewFake(), st: storagetest.NewFake(filepath.Join(dir, "storage"), 1<<40)}
	e.fl.AddFlist(testCtFlist, root)
	e.c = Container{Networker: e.net, Flister: e.fl, Storage: e.st, Runtime: e.rt, StateDir: filepath.Join(dir, "state")}
	return e
}

func (e *ctEnv) addNetwork(t *testing.T) {
	t.Helper()
	id := pkg.NetID(gridtypes.NetworkID(testUser, "demo"))
	if _, err := e.net.CreateNR(networktest.NR(id, "demo", "10.42.0.0/16", "10.42.1.0/24", 41001, networktest.NewKey(), nil)); err != nil {
		t.Fatal(err)
	}
}

// volume records a volume reservation in state and creates its filesystem.
func (e *ctEnv) volume(t *testing.T, id uint64, user uint64, state provision.State) {
	t.Helper()
	d := deployment(t, id, &gridtypes.Volume{Size: 1, Type: gridtypes.DiskSSD})
	d.Reservation.UserID = user
	if err := e.store.Put(&provision.Record{Reservation: d.Reservation, Name: d.Name, State: state}); err != nil {
		t.Fatal(err)
	}
	if state == provision.StateDeployed {
		if _, err := e.st.CreateFilesystem(d.Name, gridtypes.GiB, pkg.SSDDevice); err != nil {
			t.Fatal(err)
		}
	}
}

func webCt(env string, volumes ...string) *gridtypes.Container {
	c := &gridtypes.Container{
		Flist: testCtFlist, Entrypoint: "/bin/sh -c serve", Environment: map[string]string{"MODE": env},
		NetworkConnection: []gridtypes.NetworkConnection{{NetworkID: "demo", IPAddress: "10.42.1.10"}},
		Capacity:          gridtypes.ContainerCapacity{CPU: 1, Memory: 128},
	}
	for _, v := range volumes {
		c.Volumes = append(c.Volumes, gridtypes.ContainerMount{VolumeID: v, Mountpoint: "/data"})
	}
	return c
}

func (e *ctEnv) deployment(t *testing.T, id uint64, w *gridtypes.Container) *provision.Deployment {
	t.Helper()
	d := deployment(t, id, w)
	d.Store = e.store
	return d
}

func TestContainerProvision(t *testing.T) {
	e := newCtEnv(t)
	e.addNetwork(t)
	e.volume(t, 5, testUser, provision.StateDeployed)
	d := e.deployment(t, 9, webCt("a", "5-1"))
	data, err := e.c.Provision(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	res := data.(gridtypes.ContainerResult)
	if res.ID != d.Name || res.IPv4 != "10.42.1.10" {
		t.Fatalf("result %+v", res)
	}
	got, err := e.rt.Inspect(ContainerNS(testUser), pkg.ContainerID(d.Name))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(got.Env, "MODE=a") || got.Memory != 128*gridtypes.MiB || got.CPU != 1 {
		t.Errorf("container spec %+v", got)
	}
	vol, _ := e.st.Path("5-1")
	if len(got.Mounts) != 1 || got.Mounts[0].Source != vol.Path || got.Mounts[0].Target != "/data" {
		t.Errorf("mounts %+v, want the volume at /data", got.Mounts)
	}
	if !slices.Contains(e.net.Members(pkg.NetID(gridtypes.NetworkID(testUser, "demo"))), d.Name) {
		t.Error("container did not join its network")
	}

	// A re-ensure (agent restart) leaves the running container alone.
	if _, err := e.c.Provision(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	again, _ := e.rt.Inspect(ContainerNS(testUser), pkg.ContainerID(d.Name))
	if !slices.Equal(again.Env, got.Env) {
		t.Fatal("re-ensure changed the container")
	}
	// An update with another configuration recreates it.
	upd := e.deployment(t, 10, webCt("b", "5-1"))
	upd.Name = d.Name
	if _, err := e.c.Provision(t.Context(), upd); err != nil {
		t.Fatal(err)
	}
	after, _ := e.rt.Inspect(ContainerNS(testUser), pkg.ContainerID(d.Name))
	if !slices.Contains(after.Env, "MODE=b") {
		t.Fatalf("update not applied: env %v", after.Env)
	}

	if err := e.c.Decommission(t.Context(), upd); err != nil {
		t.Fatal(err)
	}
	if ids, _ := e.rt.List(ContainerNS(testUser)); len(ids) != 0 {
		t.Errorf("containers left: %v", ids)
	}
	if m := e.fl.Mounts(); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	if len(e.net.Members(pkg.NetID(gridtypes.NetworkID(testUser, "demo")))) != 0 {
		t.Error("still a network member")
	}
	if err := e.c.Decommission(t.Context(), upd); err != nil {
		t.Errorf("second decommission: %v", err)
	}
}

func TestContainerWaitsForDependencies(t *testing.T) {
	e := newCtEnv(t)
	d := e.deployment(t, 9, webCt("a", "5-1"))
	if _, err := e.c.Provision(t.Context(), d); !errors.Is(err, provision.ErrDependency) {
		t.Fatalf("no network yet: %v, want ErrDependency", err)
	}
	e.addNetwork(t)
	if _, err := e.c.Provision(t.Context(), d); !errors.Is(err, provision.ErrDependency) {
		t.Fatalf("volume not arrived: %v, want ErrDependency", err)
	}
	e.volume(t, 5, testUser, provision.StateDeploying)
	if _, err := e.c.Provision(t.Context(), d); !errors.Is(err, provision.ErrDependency) {
		t.Fatalf("volume deploying: %v, want ErrDependency", err)
	}
	if ids, _ := e.rt.List(""); len(ids) != 0 || len(e.fl.Mounts()) != 0 {
		t.Fatal("something was created while waiting")
	}
}

func TestContainerRefusesForeignVolume(t *testing.T) {
	e := newCtEnv(t)
	e.addNetwork(t)
	e.volume(t, 5, testUser+1, provision.StateDeployed)
	_, err := e.c.Provision(t.Context(), e.deployment(t, 9, webCt("a", "5-1")))
	if !errors.Is(err, ErrForeignVolume) || errors.Is(err, provision.ErrDependency) {
		t.Fatalf("foreign volume: %v", err)
	}
	if !strings.Contains(err.Error(), "volumes[0]") {
		t.Errorf("error %q does not name the field", err)
	}
}

func TestVolumeName(t *testing.T) {
	r := &gridtypes.Reservation{ID: 12}
	if got := VolumeName(r, "-1"); got != "12-1" {
		t.Errorf("relative volume: %s", got)
	}
	if got := VolumeName(r, "7-1"); got != "7-1" {
		t.Errorf("absolute volume: %s", got)
	}
}
