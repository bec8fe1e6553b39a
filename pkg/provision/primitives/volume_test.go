package primitives

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/gridtypes"
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
