package btrfs

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/internal/testutil"
)

func TestABISizes(t *testing.T) {
	for name, got := range map[string]uintptr{
		"vol_args": unsafe.Sizeof(volArgs{}), "vol_args_v2": unsafe.Sizeof(volArgsV2{}),
		"ino_lookup": unsafe.Sizeof(inoLookupArgs{}), "search_args": unsafe.Sizeof(searchArgs{}),
		"dev_info": unsafe.Sizeof(devInfoArgs{}),
	} {
		if got != 4096 {
			t.Errorf("%s: %d bytes, want 4096", name, got)
		}
	}
	if got := unsafe.Sizeof(fsInfoArgs{}); got != 1024 {
		t.Errorf("fs_info: %d", got)
	}
	if got := unsafe.Sizeof(qgroupInherit{}); got != 72 {
		t.Errorf("qgroup_inherit: %d", got)
	}
	if got := unsafe.Sizeof(qgroupLimitArgs{}); got != 48 {
		t.Errorf("qgroup_limit_args: %d", got)
	}
	if unsafe.Sizeof(searchKey{}) != 104 {
		t.Errorf("search key: %d", unsafe.Sizeof(searchKey{}))
	}
}

// newFS makes a btrfs on a fresh loop disk, mounted in a temp dir.
func newFS(t *testing.T, size int64) (dev, mnt string) {
	t.Helper()
	dev = testutil.LoopDisk(t, size, false)
	label := testutil.Prefix() + "zos-btrfstest"
	if err := Mkfs(t.Context(), label, "single", dev); err != nil {
		t.Fatal(err)
	}
	mnt = filepath.Join(testutil.TempDir(t), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(dev, mnt, "btrfs", 0, ""); err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return dev, mnt
}

func cli(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("btrfs", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("btrfs %v: %v: %s", args, err, out)
	}
	return string(out)
}

// cliLimit returns the max_rfer column of `btrfs qgroup show -re --raw` for
// qgroup 0/id, as the CLI sees it.
func cliLimit(t *testing.T, mnt string, id uint64) string {
	t.Helper()
	for _, line := range strings.Split(cli(t, "qgroup", "show", "-re", "--raw", mnt), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == "0/"+strconv.FormatUint(id, 10) {
			return f[3]
		}
	}
	return "absent"
}

func TestSuperblockOfMkfs(t *testing.T) {
	testutil.RequireRoot(t, "mkfs.btrfs")
	testutil.CheckLeaks(t)
	dev := testutil.LoopDisk(t, 256<<20, false)
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := ReadSuperblock(f); !errors.Is(err, ErrNotBtrfs) {
		t.Fatalf("empty disk: %v, want ErrNotBtrfs", err)
	}
	if err := Mkfs(t.Context(), "lbl-x", "single", dev); err != nil {
		t.Fatal(err)
	}
	if err := Mkfs(t.Context(), "again", "single", dev); err == nil {
		t.Fatal("mkfs without force overwrote an existing filesystem")
	}
	sb, err := ReadSuperblock(f)
	if err != nil {
		t.Fatal(err)
	}
	if sb.Label != "lbl-x" || sb.NumDevices != 1 || sb.DevID != 1 || sb.TotalBytes != 256<<20 {
		t.Fatalf("superblock %+v", sb)
	}
	blkid, err := exec.Command("blkid", "-s", "UUID", "-o", "value", dev).Output()
	if err == nil && strings.TrimSpace(string(blkid)) != sb.FSIDString() {
		t.Fatalf("fsid %s, blkid says %s", sb.FSIDString(), blkid)
	}
}

func TestSubvolumesAndSimpleQuota(t *testing.T) {
	testutil.RequireRoot(t, "mkfs.btrfs", "btrfs")
	testutil.CheckLeaks(t)
	_, mnt := newFS(t, 512<<20)
	if err := QuotaEnable(mnt, true); err != nil {
		t.Fatalf("enable simple quota: %v", err)
	}
	if err := QuotaEnable(mnt, true); err != nil {
		t.Fatalf("enable again: %v", err)
	}
	st, _, err := Quota(mnt)
	if err != nil || !st.Enabled || !st.Simple {
		t.Fatalf("quota status %+v, %v", st, err)
	}
	if err := CreateSubvolume(mnt, "vol", 8<<20); err != nil {
		t.Fatal(err)
	}
	if err := CreateSubvolume(mnt, "vol", 8<<20); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second create: %v, want EEXIST", err)
	}
	for _, bad := range []string{"", ".", "..", "a/b"} {
		if err := CreateSubvolume(mnt, bad, 1); !errors.Is(err, ErrInvalidName) {
			t.Fatalf("name %q: %v", bad, err)
		}
	}
	id, err := SubvolumeID(filepath.Join(mnt, "vol"))
	if err != nil || id < 256 {
		t.Fatalf("id %d, %v", id, err)
	}
	// with simple quotas the kernel ignores limits passed by qgroup
	// inherit: the limit is set afterwards
	if got := cliLimit(t, mnt, id); got != "none" {
		t.Fatalf("btrfs CLI sees limit %s, want none", got)
	}
	if err := QgroupLimit(mnt, id, 8<<20); err != nil {
		t.Fatal(err)
	}
	if got := cliLimit(t, mnt, id); got != strconv.Itoa(8<<20) {
		t.Fatalf("btrfs CLI sees limit %s, want %d", got, 8<<20)
	}
	_, groups, err := Quota(mnt)
	if err != nil || groups[id] == nil || groups[id].MaxReferencedBytes != 8<<20 {
		t.Fatalf("qgroups %v, %v", groups, err)
	}
	if g, err := QgroupOf(mnt, id); err != nil || g.MaxReferencedBytes != 8<<20 {
		t.Fatalf("QgroupOf = %+v, %v", g, err)
	}
	if _, err := QgroupOf(mnt, 9999); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("QgroupOf(missing): %v", err)
	}
	// the limit is enforced: writing 16 MiB into an 8 MiB volume fails
	err = writeFile(filepath.Join(mnt, "vol", "big"), 16<<20)
	if !errors.Is(err, unix.EDQUOT) {
		t.Fatalf("write past the limit: %v, want EDQUOT", err)
	}
	if err := QgroupLimit(mnt, id, 32<<20); err != nil {
		t.Fatal(err)
	}
	if got := cliLimit(t, mnt, id); got != strconv.Itoa(32<<20) {
		t.Fatalf("limit after QgroupLimit: %s", got)
	}
	if err := QgroupLimit(mnt, id, 0); err != nil {
		t.Fatal(err)
	}
	if got := cliLimit(t, mnt, id); got != "none" {
		t.Fatalf("limit after clearing: %s", got)
	}

	// list, nested subvolumes, snapshots
	if err := os.Mkdir(filepath.Join(mnt, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CreateSubvolume(filepath.Join(mnt, "dir"), "nested", 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "vol", "f"), []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Snapshot(filepath.Join(mnt, "vol"), filepath.Join(mnt, "dir"), "snap", true); err != nil {
		t.Fatal(err)
	}
	if ro, err := ReadOnly(filepath.Join(mnt, "dir", "snap")); err != nil || !ro {
		t.Fatalf("snapshot read-only %v, %v", ro, err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "dir", "snap", "f"), []byte("x"), 0o644); !errors.Is(err, unix.EROFS) {
		t.Fatalf("write into read-only snapshot: %v", err)
	}
	subs, err := ListSubvolumes(mnt)
	if err != nil {
		t.Fatal(err)
	}
	var top, all []string
	for _, s := range subs {
		all = append(all, s.Name)
		if s.TopLevel() {
			top = append(top, s.Name)
		}
	}
	if strings.Join(top, ",") != "vol" || len(all) != 3 {
		t.Fatalf("top-level %v, all %v", top, all)
	}
	cliList := cli(t, "subvolume", "list", mnt)
	for _, want := range []string{"path vol", "path dir/nested", "path dir/snap"} {
		if !strings.Contains(cliList, want) {
			t.Fatalf("CLI list %q lacks %q", cliList, want)
		}
	}
	for _, p := range [][2]string{{mnt, "vol"}, {filepath.Join(mnt, "dir"), "nested"}, {filepath.Join(mnt, "dir"), "snap"}} {
		if err := DeleteSubvolume(p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := DeleteSubvolume(mnt, "vol"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("second delete: %v", err)
	}
	if subs, err := ListSubvolumes(mnt); err != nil || len(subs) != 0 {
		t.Fatalf("after delete: %v, %v", subs, err)
	}
	// once the cleaner dropped them (a commit wakes it), no qgroup is left
	if err := Sync(mnt); err != nil {
		t.Fatal(err)
	}
	cli(t, "subvolume", "sync", mnt)
	_ = QgroupDestroy(mnt, id)
	if err := Sync(mnt); err != nil {
		t.Fatal(err)
	}
	_, groups, err = Quota(mnt)
	if err != nil {
		t.Fatal(err)
	}
	for gid := range groups {
		if gid != TopLevelID {
			t.Errorf("qgroup %s left", QgroupString(gid))
		}
	}
}

func TestClassicQgroups(t *testing.T) {
	testutil.RequireRoot(t, "mkfs.btrfs", "btrfs")
	testutil.CheckLeaks(t)
	_, mnt := newFS(t, 256<<20)
	if err := QuotaEnable(mnt, false); err != nil {
		t.Fatal(err)
	}
	st, _, err := Quota(mnt)
	if err != nil || !st.Enabled || st.Simple {
		t.Fatalf("status %+v, %v", st, err)
	}
	if err := CreateSubvolume(mnt, "v", 4<<20); err != nil {
		t.Fatal(err)
	}
	id, _ := SubvolumeID(filepath.Join(mnt, "v"))
	if err := writeFile(filepath.Join(mnt, "v", "big"), 8<<20); !errors.Is(err, unix.EDQUOT) {
		t.Fatalf("write past the limit: %v, want EDQUOT", err)
	}
	if err := QgroupDestroy(mnt, id); !errors.Is(err, unix.EBUSY) {
		t.Fatalf("destroy of a live subvolume's qgroup: %v, want EBUSY", err)
	}
	if err := QgroupCreate(mnt, 1<<48|1); err != nil {
		t.Fatal(err)
	}
	if err := QgroupDestroy(mnt, 1<<48|1); err != nil {
		t.Fatal(err)
	}
	// more subvolumes than one tree-search batch holds
	for i := range 200 {
		if err := CreateSubvolume(mnt, "many"+strconv.Itoa(i), 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	subs, err := ListSubvolumes(mnt)
	if err != nil || len(subs) != 201 {
		t.Fatalf("listed %d subvolumes, %v; want 201", len(subs), err)
	}
	// inherited limits reach the quota tree at the next commit
	if err := Sync(mnt); err != nil {
		t.Fatal(err)
	}
	_, groups, err := Quota(mnt)
	if err != nil || len(groups) != 202 || groups[subs[200].ID].MaxReferencedBytes != 1<<20 {
		t.Fatalf("%d qgroups, %v; want 202 with limits", len(groups), err)
	}
	if got := cliLimit(t, mnt, subs[200].ID); got != strconv.Itoa(1<<20) {
		t.Fatalf("CLI sees limit %s", got)
	}
	devs, err := Devices(mnt)
	if err != nil || len(devs) != 1 || devs[0].TotalBytes != 256<<20 {
		t.Fatalf("devices %+v, %v", devs, err)
	}
	spaces, err := SpaceInfo(mnt)
	if err != nil || len(spaces) == 0 {
		t.Fatalf("space info %+v, %v", spaces, err)
	}
	info, err := Info(mnt)
	if err != nil || info.NumDevices != 1 {
		t.Fatalf("info %+v, %v", info, err)
	}
}

func writeFile(path string, size int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	buf := bytes.Repeat([]byte{0xa5}, 1<<20)
	for written := 0; written < size; written += len(buf) {
		if _, err := f.Write(buf); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
