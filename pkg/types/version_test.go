package types

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in   string
		want Version
	}{
		{"0.0.0", Version{}},
		{"1.0.0", Version{Major: 1}},
		{"2.0.0", Version{Major: 2}},
		{"0.4.9", Version{Minor: 4, Patch: 9}},
		{"10.20.30", Version{Major: 10, Minor: 20, Patch: 30}},
		{"1.2.3-rc.1", Version{Major: 1, Minor: 2, Patch: 3, Pre: "rc.1"}},
		{"1.2.3-0.alpha-x.7", Version{Major: 1, Minor: 2, Patch: 3, Pre: "0.alpha-x.7"}},
		{"1.2.3+build.007", Version{Major: 1, Minor: 2, Patch: 3, Build: "build.007"}},
		{"1.2.3-beta+exp.sha.5114f85", Version{Major: 1, Minor: 2, Patch: 3, Pre: "beta", Build: "exp.sha.5114f85"}},
		{"1.0.0-a-b+c-d", Version{Major: 1, Pre: "a-b", Build: "c-d"}},
		{"18446744073709551615.0.0", Version{Major: 1<<64 - 1}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseVersion(tt.in)
			if err != nil {
				t.Fatalf("ParseVersion: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if s := got.String(); s != tt.in {
				t.Errorf("String() = %q, want %q", s, tt.in)
			}
		})
	}
}

func TestParseVersionErrors(t *testing.T) {
	for _, in := range []string{
		"", "1", "1.0", "1.0.0.0", "v1.0.0", "01.0.0", "1.00.0", "1.0.00", "-1.0.0",
		"1.0.0-", "1.0.0+", "1.0.0-01", "1.0.0-a..b", "1.0.0-a_b", "1.0.0+a..b", "1.0.0+ä",
		"1.0.0 ", " 1.0.0", "1.a.0", "18446744073709551616.0.0", "1.0.0-rc+", "+1.0.0", "1..0",
	} {
		t.Run(in, func(t *testing.T) {
			v, err := ParseVersion(in)
			if !errors.Is(err, ErrInvalidVersion) {
				t.Fatalf("ParseVersion(%q) = %+v, %v; want ErrInvalidVersion", in, v, err)
			}
		})
	}
}

func TestVersionCompare(t *testing.T) {
	// increasing precedence, from the semver 2.0.0 specification §11 plus
	// numeric fields compared as numbers
	order := []string{
		"0.0.0", "0.4.9", "0.4.10", "0.10.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
		"1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0-rc.2", "1.0.0", "2.0.0", "2.1.0", "2.1.1", "10.0.0",
	}
	for i, a := range order {
		for j, b := range order {
			va, vb := MustParseVersion(a), MustParseVersion(b)
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := va.Compare(vb); got != want {
				t.Errorf("%s.Compare(%s) = %d, want %d", a, b, got, want)
			}
			if got := va.LessThan(vb); got != (want < 0) {
				t.Errorf("%s.LessThan(%s) = %v", a, b, got)
			}
		}
	}
	if c := MustParseVersion("1.0.0+a").Compare(MustParseVersion("1.0.0+b")); c != 0 {
		t.Errorf("build metadata changed precedence: %d", c)
	}
}

func TestVersionJSON(t *testing.T) {
	type doc struct {
		V Version `json:"version"`
	}
	b, err := json.Marshal(doc{MustParseVersion("2.0.0")})
	if err != nil || string(b) != `{"version":"2.0.0"}` {
		t.Fatalf("marshal = %s, %v", b, err)
	}
	// a bare JSON string, as networkd writes before a cached object
	var v Version
	if err := json.Unmarshal([]byte(`"1.0.0"`), &v); err != nil || v != MustParseVersion("1.0.0") {
		t.Fatalf("unmarshal = %v, %v", v, err)
	}
	if err := json.Unmarshal([]byte(`"x"`), &v); !errors.Is(err, ErrInvalidVersion) {
		t.Fatalf("bad version err = %v", err)
	}
	if v != MustParseVersion("1.0.0") {
		t.Errorf("value changed on error: %v", v)
	}
}

func TestMustParseVersionPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustParseVersion did not panic")
		}
	}()
	MustParseVersion("1.0")
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"1.0.0", "2.0.0", "0.4.9-rc.1+b.5", "1.0.0-0A.is.legal", "01.0.0", "v1", "1.0.0-", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidVersion) {
				t.Fatalf("error %v does not wrap ErrInvalidVersion", err)
			}
			return
		}
		if v.String() != s {
			t.Fatalf("accepted %q but prints %q", s, v.String())
		}
		if v.Compare(v) != 0 {
			t.Fatalf("%q does not compare equal to itself", s)
		}
	})
}
