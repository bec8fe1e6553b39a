package netns

import (
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/internal/testutil"
)

func inode(t *testing.T, path string) uint64 {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestCreateDoDelete(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t)
	name := testutil.Name(t, "ns")
	created, err := Create(name)
	if err != nil || !created {
		t.Fatalf("Create = %v, %v", created, err)
	}
	if again, err := Create(name); err != nil || again {
		t.Errorf("second Create = %v, %v", again, err)
	}
	self := inode(t, "/proc/thread-self/ns/net")
	var inside uint64
	if err := Do(name, func() error { inside = inode(t, "/proc/thread-self/ns/net"); return nil }); err != nil {
		t.Fatal(err)
	}
	if inside != inode(t, Path(name)) || inside == self {
		t.Errorf("Do ran in namespace %d; want %d", inside, inode(t, Path(name)))
	}
	// The loopback is up in a new namespace.
	var flags uint16
	_ = Do(name, func() error {
		fd, _ := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		defer unix.Close(fd)
		ifr, _ := unix.NewIfreq("lo")
		err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr)
		flags = ifr.Uint16()
		return err
	})
	if flags&unix.IFF_UP == 0 {
		t.Errorf("lo is down")
	}
	want := errors.New("boom")
	if err := Do(name, func() error { return want }); !errors.Is(err, want) {
		t.Errorf("Do error = %v", err)
	}
	if l, _ := List(testutil.Prefix()); len(l) == 0 {
		t.Errorf("List does not show %s", name)
	}
	if err := Delete(name); err != nil {
		t.Fatal(err)
	}
	if Exists(name) {
		t.Errorf("exists after Delete")
	}
	if err := Delete(name); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if err := Do(name, func() error { return nil }); !errors.Is(err, ErrNotExist) {
		t.Errorf("Do on a missing namespace: %v", err)
	}
}

// TestCreateRepairsLeftover: a plain file left by a crash between creating
// the name and mounting the namespace is replaced.
func TestCreateRepairsLeftover(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t)
	name := testutil.Name(t, "ns")
	if err := os.MkdirAll(Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(Path(name), nil, 0o444); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Delete(name) })
	if Exists(name) {
		t.Fatalf("a plain file counts as a namespace")
	}
	if created, err := Create(name); err != nil || !created {
		t.Fatalf("Create over a leftover = %v, %v", created, err)
	}
	if !Exists(name) {
		t.Errorf("not a namespace after Create")
	}
}
