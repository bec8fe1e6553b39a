package network

import (
	"errors"
	"strings"
	"testing"

	"github.com/zos-go/zos/pkg"
)

func TestVMTapName(t *testing.T) {
	seen := map[string]string{}
	for _, c := range []struct {
		id pkg.NetID
		vm string
	}{
		{"net1", "100-1"}, {"net1", "101-1"}, {"net2", "100-1"},
		// The separator keeps (ab, c) and (a, bc) apart.
		{"ab", "c"}, {"a", "bc"},
		{"ABCDEFGHIJKLM", strings.Repeat("x", 64)},
	} {
		name := VMTapName(c.id, c.vm)
		if len(name) != maxIfaceLen || !strings.HasPrefix(name, "tv-") {
			t.Errorf("VMTapName(%s, %s) = %q; want tv- and 12 characters", c.id, c.vm, name)
		}
		for _, r := range name[3:] {
			if !(r >= 'a' && r <= 'z' || r >= '2' && r <= '7') {
				t.Errorf("VMTapName(%s, %s) = %q: %q is not lowercase base32", c.id, c.vm, name, r)
			}
		}
		if VMTapName(c.id, c.vm) != name {
			t.Errorf("VMTapName(%s, %s) is not stable", c.id, c.vm)
		}
		key := string(c.id) + "/" + c.vm
		if other, ok := seen[name]; ok {
			t.Errorf("VMTapName(%s) = VMTapName(%s) = %s", key, other, name)
		}
		seen[name] = key
		// No seed tap (t-<netid>) can ever have that name.
		if rest, ok := strings.CutPrefix(name, "t-"); ok && checkName(rest, "t-") == nil {
			t.Errorf("%s could be the seed tap of a network", name)
		}
	}
}

func TestVMTapStore(t *testing.T) {
	s := vmTapStore{dir: t.TempDir() + "/vmtaps"}
	if all, err := s.All(); len(all) != 0 || err != nil {
		t.Fatalf("All of an empty store = %v, %v", all, err)
	}
	r := vmTapRecord{NetID: "net1", VM: "100-1"}
	if err := s.Put(r); err != nil {
		t.Fatal(err)
	}
	name := VMTapName(r.NetID, r.VM)
	if got, found, err := s.Get(name); got != r || !found || err != nil {
		t.Errorf("Get = %v, %v, %v", got, found, err)
	}
	// A record under another tap's name is refused.
	if _, err := decodeVMTapRecord("tv-aaaaaaaaaaaa", []byte(`{"net_id":"net1","vm":"100-1"}`)); !errors.Is(err, ErrBadVMTapRecord) {
		t.Errorf("record under the wrong name: %v", err)
	}
	if all, err := s.All(); len(all) != 1 || all[name] != r || err != nil {
		t.Errorf("All = %v, %v", all, err)
	}
	if err := s.Delete(name); err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.Get(name); found || err != nil {
		t.Errorf("Get after Delete: %v, %v", found, err)
	}
	if err := s.Delete(name); err != nil {
		t.Errorf("second Delete: %v", err)
	}
}

func FuzzDecodeVMTapRecord(f *testing.F) {
	good := VMTapName("net1", "100-1")
	f.Add(good, []byte(`{"net_id":"net1","vm":"100-1"}`))
	f.Add(good, []byte(`{"net_id":"net1","vm":"100-2"}`))
	f.Add("tv-x", []byte(`{"net_id":"bad/id","vm":""}`))
	f.Add(good, []byte(`{`))
	f.Add(good, []byte(`null`))
	f.Fuzz(func(t *testing.T, tap string, b []byte) {
		r, err := decodeVMTapRecord(tap, b)
		if err != nil {
			if !errors.Is(err, ErrBadVMTapRecord) {
				t.Fatalf("error %v does not wrap ErrBadVMTapRecord", err)
			}
			return
		}
		if CheckVMTap(r.NetID, r.VM) != nil || VMTapName(r.NetID, r.VM) != tap {
			t.Fatalf("accepted %q as the record of %s", b, tap)
		}
	})
}
