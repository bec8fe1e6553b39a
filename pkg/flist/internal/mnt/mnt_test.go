package mnt

import "testing"

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/tmp/a\040b`:  "/tmp/a b",
		`/x\011y\134z`: "/x\ty\\z",
		`/plain`:       "/plain",
		`/bad\04`:      `/bad\04`,
	} {
		if got := unescape(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func TestListHasRoot(t *testing.T) {
	list, err := List()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range list {
		found = found || m.Mountpoint == "/"
	}
	if !found {
		t.Errorf("no mount at / in %d mounts", len(list))
	}
	if ok, err := IsMounted("/"); err != nil || !ok {
		t.Errorf("IsMounted(/): %v %v", ok, err)
	}
	if ok, _ := IsMounted("/surely/not/a/mount/point"); ok {
		t.Error("a missing path is mounted")
	}
}
