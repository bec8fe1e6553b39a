package storage

import (
	"errors"
	"strings"
	"testing"

	"github.com/zos-go/zos/pkg"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	bad := map[string]func(*Config){
		"relative root":     func(c *Config) { c.Root = "var/lib" },
		"relative device":   func(c *Config) { c.Devices = []string{"sdb"} },
		"bad glob":          func(c *Config) { c.Devices = []string{"/dev/[a"} },
		"bad override type": func(c *Config) { c.DeviceTypes = map[string]pkg.DeviceType{"/dev/sdb": "nvme"} },
		"probe":             func(c *Config) { c.TypeProbe = "guess" },
		"raid5":             func(c *Config) { c.Policy = pkg.StoragePolicy{Raid: "raid5"} },
		"raid1 of 3":        func(c *Config) { c.Policy = pkg.StoragePolicy{Raid: pkg.Raid1, Disks: 3} },
		"raid10 of 2":       func(c *Config) { c.Policy = pkg.StoragePolicy{Raid: pkg.Raid10, Disks: 2} },
		"null with disks":   func(c *Config) { c.Policy = pkg.StoragePolicy{Disks: 2} },
		"prefix slash":      func(c *Config) { c.LabelPrefix = "a/b" },
		"zero scan":         func(c *Config) { c.ScanInterval = 0 },
		"zero cache":        func(c *Config) { c.CacheSizeBytes = 0 },
		"quota mode":        func(c *Config) { c.Quota = "half" },
		"relative cache":    func(c *Config) { c.CacheMount = "cache" },
	}
	for name, mutate := range bad {
		c := DefaultConfig()
		mutate(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
		if _, err := New(c, nil); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("New with %s: %v", name, err)
		}
	}
	for _, p := range []pkg.StoragePolicy{pkg.DefaultPolicy, pkg.NullPolicy, {Raid: pkg.Raid0}, {Raid: pkg.Raid1, Disks: 4},
		{Raid: pkg.Raid10, Disks: 8, MaxPools: 1}, {Raid: pkg.Single, Disks: 3}} {
		if err := ValidatePolicy(p); err != nil {
			t.Errorf("%+v: %v", p, err)
		}
	}
}

func TestOwnLabel(t *testing.T) {
	m := &Module{cfg: Config{LabelPrefix: "x"}}
	label := m.newLabel()
	if _, ok := m.ownLabel(label); !ok {
		t.Fatalf("own label %q not recognised", label)
	}
	other := &Module{cfg: Config{LabelPrefix: "xzos-"}}
	for _, l := range []string{"", "zos-0123456789abcdef", "xzos-0123", "xzos-0123456789ABCDEF", "yzos-0123456789abcdef",
		other.newLabel(), "xzos-0123456789abcdefg"} {
		if _, ok := m.ownLabel(l); ok {
			t.Errorf("label %q taken as ours", l)
		}
	}
}

func TestNamespaceRoundTrip(t *testing.T) {
	d := NamespaceDescriptor{Name: "ns", Password: "pw", MaxSizeBytes: 5 << 30, Public: true}
	b, err := EncodeNamespace(d)
	if err != nil {
		t.Fatal(err)
	}
	// the layout of 0-db v1: lengths, legacy size, flags, name, password, version, size
	want := "\x02\x02\x00\x00\x00\x00\x05nspw\x01\x00\x00\x00\x00\x00\x00\x40\x01\x00\x00\x00"
	if string(b) != want {
		t.Fatalf("encoded %q, want %q", b, want)
	}
	got, err := DecodeNamespace(b)
	if err != nil || got != d {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	legacy := []byte("\x04\x00\x00\x10\x00\x00\x01test")
	if got, err := DecodeNamespace(legacy); err != nil || got.Name != "test" || got.MaxSizeBytes != 4096 || !got.Public {
		t.Fatalf("legacy %+v, %v", got, err)
	}
	for _, bad := range []string{"", "\x05\x00\x00\x00\x00\x00\x00ab", "\x01\x00\x00\x00\x00\x00\x04a\x01"} {
		if _, err := DecodeNamespace([]byte(bad)); !errors.Is(err, ErrBadDescriptor) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := EncodeNamespace(NamespaceDescriptor{Name: strings.Repeat("n", 256)}); !errors.Is(err, ErrBadDescriptor) {
		t.Error(err)
	}
}

func FuzzDecodeNamespace(f *testing.F) {
	b, _ := EncodeNamespace(NamespaceDescriptor{Name: "ns", MaxSizeBytes: 1 << 30, Public: true})
	f.Add(b)
	f.Add([]byte("\x04\x00\x00\x10\x00\x00\x01test"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeNamespace(b)
		if err != nil {
			return
		}
		enc, err := EncodeNamespace(d)
		if err != nil {
			t.Fatal(err)
		}
		if d2, err := DecodeNamespace(enc); err != nil || d2 != d {
			t.Fatalf("round trip %+v → %+v, %v", d, d2, err)
		}
	})
}

const mountinfo = `22 1 252:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
35 22 7:3 / /tmp/zt\040x/mnt/p rw,relatime shared:20 - btrfs /dev/loop3 rw,space_cache=v2,subvolid=5,subvol=/
36 22 0:45 / /run/x rw - tmpfs tmpfs rw
bad line
`

func TestParseMountinfo(t *testing.T) {
	got := parseMountinfo([]byte(mountinfo))
	if len(got) != 3 || got[1].target != "/tmp/zt x/mnt/p" || got[1].fstype != "btrfs" || got[1].source != "/dev/loop3" {
		t.Fatalf("%+v", got)
	}
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add([]byte(mountinfo))
	f.Add([]byte(`1 2 3:4 / /a\1 - x y`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, me := range parseMountinfo(b) {
			if me.fstype == "" {
				t.Fatal("entry without fstype")
			}
		}
	})
}

func TestValidateNames(t *testing.T) {
	for _, ok := range []string{"a", "100-1", "zdbish-not", strings.Repeat("n", MaxNameLen)} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	if err := ValidateVolumeName("zdbfoo"); !errors.Is(err, ErrInvalidName) {
		t.Error(err)
	}
	if err := ValidateMode("direct"); !errors.Is(err, ErrInvalidMode) {
		t.Error(err)
	}
}
