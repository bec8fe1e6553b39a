package primitives

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/provision"
	"github.com/zos-go/zos/pkg/storage/storagetest"
)

func TestVolumeLifecycleAndResize(t *testing.T) {
	st := storagetest.NewFake(filepath.Join(t.TempDir(), "storage"), 10*gridtypes.GiB)
	v := Volume{Storage: st}
	d := deployment(t, 4, &gridtypes.Volume{Size: 1, Type: gridtypes.DiskSSD})
	data, err := v.Provision(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	if data.(gridtypes.VolumeResult).VolumeID != d.Name {
		t.Fatalf("result %+v", data)
	}
	fs, err := st.Path(d.Name)
	if err != nil || fs.DiskType != pkg.SSDDevice {
		t.Fatalf("volume %+v %v", fs, err)
	}
	// Re-ensure: nothing changes.
	if _, err := v.Provision(t.Context(), d); err != nil {
		t.Fatalf("re-ensure: %v", err)
	}
	// An update grows it in place.
	grow := deployment(t, 5, &gridtypes.Volume{Size: 3, Type: gridtypes.DiskSSD})
	grow.Name = d.Name
	if _, err := v.Provision(t.Context(), grow); err != nil {
		t.Fatalf("grow: %v", err)
	}
	if fs2, _ := st.Path(d.Name); fs2.Path != fs.Path {
		t.Fatalf("resize moved the volume: %s → %s", fs.Path, fs2.Path)
	}
	free, _ := st.Total(pkg.SSDDevice)
	t.Logf("ssd total %d", free)
	// Growing past the pool, or moving to HDD, is refused.
	huge := deployment(t, 6, &gridtypes.Volume{Size: 100, Type: gridtypes.DiskSSD})
	huge.Name = d.Name
	if _, err := v.Provision(t.Context(), huge); !errors.As(err, new(pkg.ErrNotEnoughSpace)) {
		t.Fatalf("grow past the pool: %v", err)
	}
	move := deployment(t, 7, &gridtypes.Volume{Size: 3, Type: gridtypes.DiskHDD})
	move.Name = d.Name
	if _, err := v.Provision(t.Context(), move); err == nil || !strings.HasPrefix(err.Error(), "type:") {
		t.Fatalf("type change: %v", err)
	}
	if err := v.Decommission(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Path(d.Name); err == nil {
		t.Fatal("volume still there after decommission")
	}
	if err := v.Decommission(t.Context(), d); err != nil {
		t.Fatalf("second decommission: %v", err)
	}
}

// TestVolumeSnapshotsAndRestore: listed snapshots are taken and unlisted
// ones dropped; a restore brings a snapshot's bytes back once per
// reservation, and is refused, changing nothing, while a container mounts
// the volume or when the snapshot does not exist.
func TestVolumeSnapshotsAndRestore(t *testing.T) {
	st := storagetest.NewFake(filepath.Join(t.TempDir(), "storage"), 10*gridtypes.GiB)
	store := provision.NewMemStore()
	v := Volume{Storage: st, StateDir: t.TempDir()}
	deploy := func(id uint64, w *gridtypes.Volume) (gridtypes.VolumeResult, error) {
		t.Helper()
		d := deployment(t, id, w)
		d.Name = "10-1"
		d.Store = store
		data, err := v.Provision(t.Context(), d)
		if err != nil {
			return gridtypes.VolumeResult{}, err
		}
		return data.(gridtypes.VolumeResult), nil
	}
	write := func(s string) {
		t.Helper()
		fs, err := st.Path("10-1")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(fs.Path, "data"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func() string {
		t.Helper()
		fs, _ := st.Path("10-1")
		b, _ := os.ReadFile(filepath.Join(fs.Path, "data"))
		return string(b)
	}

	if _, err := deploy(10, &gridtypes.Volume{Size: 1, Type: gridtypes.DiskSSD}); err != nil {
		t.Fatal(err)
	}
	write("monday")
	res, err := deploy(11, &gridtypes.Volume{Size: 1, Type: gridtypes.DiskSSD, Snapshots: []string{"mon"}})
	if err != nil || !slices.Equal(res.Snapshots, []string{"mon"}) {
		t.Fatalf("take a snapshot: %+v %v", res, err)
	}
	write("tuesday")
	// A snapshot that does not exist: refused, nothing changes.
	if _, err := deploy(12, &gridtypes.Volume{Size: 2, Type: gridtypes.DiskSSD, Snapshots: []string{"mon"}, Restore: "sun"}); err == nil || !strings.Contains(err.Error(), `no snapshot "sun"`) {
		t.Fatalf("restore of a missing snapshot: %v", err)
	}
	if fs, _ := st.Path("10-1"); fs.Usage.Size != 1*gridtypes.GiB || read() != "tuesday" {
		t.Fatalf("refused restore changed the volume: size %d, data %q", fs.Usage.Size, read())
	}
	// While a container mounts it: refused.
	ct := reservation(t, 20, &gridtypes.Container{Flist: "https://hub/x.fl", Volumes: []gridtypes.ContainerMount{{VolumeID: "10-1", Mountpoint: "/data"}},
		NetworkConnection: []gridtypes.NetworkConnection{{NetworkID: "n", IPAddress: "10.1.2.5"}}, Capacity: gridtypes.ContainerCapacity{CPU: 1, Memory: 128}})
	vol := reservation(t, 10, &gridtypes.Volume{Size: 1, Type: gridtypes.DiskSSD})
	_ = store.Put(&provision.Record{Reservation: vol, Name: "10-1", State: provision.StateDeployed})
	_ = store.Put(&provision.Record{Reservation: ct, Name: ct.GWID(), State: provision.StateDeployed})
	if _, err := deploy(13, &gridtypes.Volume{Size: 1, Type: gridtypes.DiskSSD, Snapshots: []string{"mon"}, Restore: "mon"}); err == nil || !strings.Contains(err.Error(), "mounted by container 20-1") {
		t.Fatalf("restore under a container: %v", err)
	}
	if read() != "tuesday" {
		t.Fatal("refused restore changed the data")
	}
	// Once the container is gone: restored, once.
	_ = store.Put(&provision.Record{Reservation: ct, Name: ct.GWID(), State: provision.StateDeleted})
	if _, err := deploy(14, &gridtypes.Volume{Size: 1, Type: gridtypes.DiskSSD, Snapshots: []string{"mon"}, Restore: "mon"}); err != nil {
		t.Fatal(err)
	}
	if read() != "monday" {
		t.Fatalf("after restore: %q, want monday", read())
	}
	write("wednesday")
	if _, err := deploy(14, &gridtypes.Volume{Size: 1, Type: gridtypes.DiskSSD, Snapshots: []string{"mon"}, Restore: "mon"}); err != nil {
		t.Fatal(err)
	}
	if read() != "wednesday" {
		t.Fatal("ensuring the same reservation restored again")
	}
	// An unlisted snapshot is dropped.
	res, err = deploy(15, &gridtypes.Volume{Size: 1, Type: gridtypes.DiskSSD})
	if err != nil || len(res.Snapshots) != 0 {
		t.Fatalf("drop: %+v %v", res, err)
	}
	if snaps, _ := st.Snapshots(t.Context(), "10-1"); len(snaps) != 0 {
		t.Fatalf("snapshots left: %+v", snaps)
	}
	if err := v.Decommission(t.Context(), deployment(t, 15, &gridtypes.Volume{Size: 1, Type: gridtypes.DiskSSD})); err != nil {
		t.Fatal(err)
	}
}
