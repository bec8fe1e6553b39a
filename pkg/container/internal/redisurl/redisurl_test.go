package redisurl

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Endpoint
	}{
		{"redis://host/ch", Endpoint{Addr: "host:6379", Channel: "ch"}},
		{"redis://10.1.2.3:7000/logs.out", Endpoint{Addr: "10.1.2.3:7000", Channel: "logs.out"}},
		{"redis://[2001:db8::1]:6380/c", Endpoint{Addr: "[2001:db8::1]:6380", Channel: "c"}},
		{"redis://:pw@h/c", Endpoint{Addr: "h:6379", Password: "pw", Channel: "c"}},
		{"redis://pw@h/c", Endpoint{Addr: "h:6379", Password: "pw", Channel: "c"}},
		{"redis://u:pw@h/c", Endpoint{Addr: "h:6379", Username: "u", Password: "pw", Channel: "c"}},
	} {
		got, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	for _, in := range []string{"", "host/ch", "http://h/c", "redis://h", "redis://h/", "redis:///c", "redis://h:0/c", "redis://h:99999/c", "redis://h:x/c", "redis://h/c?db=1", "redis://h/c%0a"} {
		if _, err := Parse(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) = %v, want ErrInvalid", in, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"redis://host/ch", "redis://:p@[::1]:1/x", "redis://a@b/c", "redis://h:0/c", "%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(e.String())
		if err != nil {
			t.Fatalf("re-parse of %q (%q): %v", e.String(), s, err)
		}
		if again != e {
			t.Fatalf("round trip %+v → %q → %+v", e, e.String(), again)
		}
	})
}
