package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestLoopDiskRotationalAndSize(t *testing.T) {
	RequireRoot(t)
	CheckLeaks(t)
	for _, rot := range []bool{false, true} {
		dev := LoopDisk(t, 64<<20, rot)
		b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), "queue/rotational"))
		if err != nil {
			t.Fatal(err)
		}
		want := "0"
		if rot {
			want = "1"
		}
		if strings.TrimSpace(string(b)) != want {
			t.Fatalf("%s rotational = %q, want %s", dev, b, want)
		}
		f, err := os.Open(dev)
		if err != nil {
			t.Fatal(err)
		}
		size, err := unix.IoctlGetUint64(int(f.Fd()), unix.BLKGETSIZE64)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if size != 64<<20 {
			t.Fatalf("%s size %d, want %d", dev, size, 64<<20)
		}
	}
}

func TestFindLeaksSeesLoopMountAndNetNS(t *testing.T) {
	RequireRoot(t, "ip", "mkfs.ext4")
	roots := []string{filepath.Join(Root(t), sanitize(t.Name()))}
	before := snapshot{procs: descendants(os.Getpid())}

	var dev, mnt, ns string
	t.Run("make", func(t *testing.T) {
		// Created without cleanup on purpose: the parent checks they are seen.
		dir, err := os.MkdirTemp(Root(t), sanitize(t.Name())+"-")
		if err != nil {
			t.Fatal(err)
		}
		img := filepath.Join(dir, "leak.img")
		f, err := os.Create(img)
		if err != nil {
			t.Fatal(err)
		}
		_ = f.Truncate(32 << 20)
		var hold *os.File
		dev, hold, err = attachLoop(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		defer hold.Close() // the mount keeps the device bound
		if out, err := exec.Command("mkfs.ext4", "-q", dev).CombinedOutput(); err != nil {
			t.Fatalf("mkfs: %v %s", err, out)
		}
		mnt = filepath.Join(dir, "mnt")
		_ = os.Mkdir(mnt, 0o755)
		if err := unix.Mount(dev, mnt, "ext4", 0, ""); err != nil {
			t.Fatal(err)
		}
		ns = Name(t, "ns")
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("netns: %v %s", err, out)
		}
	})
	leaks := strings.Join(findLeaks(roots, before), "\n")
	for _, want := range []string{"loop device " + dev, "on " + mnt, "network namespace " + ns} {
		if !strings.Contains(leaks, want) {
			t.Errorf("leak report lacks %q:\n%s", want, leaks)
		}
	}
	cleanLeaks(roots, before)
	if rest := findLeaks(roots, before); len(rest) != 0 {
		t.Fatalf("cleanLeaks left %v", rest)
	}
	_ = os.RemoveAll(filepath.Dir(mnt))
}

func TestNetNS(t *testing.T) {
	RequireRoot(t, "ip")
	CheckLeaks(t)
	ns := NetNS(t)
	if _, err := os.Stat("/run/netns/" + ns); err != nil {
		t.Fatalf("namespace %s missing: %v", ns, err)
	}
	out, err := InNetNS(t, ns, "ip", "-o", "link", "show", "lo")
	if err != nil || !strings.Contains(out, "UP") {
		t.Fatalf("lo in %s not up: %v %s", ns, err, out)
	}
}
