package types

import (
	"encoding/json"
	"errors"
	"net"
	"reflect"
	"testing"
)

func TestParseIPNet(t *testing.T) {
	tests := []struct {
		in       string
		ip, mask string // hex of the stored bytes
		want     string // String()
	}{
		{in: "10.1.0.0/16", ip: "0a010000", mask: "ffff0000", want: "10.1.0.0/16"},
		{in: "10.1.3.5/24", ip: "0a010305", mask: "ffffff00", want: "10.1.3.5/24"}, // host bits kept
		{in: "0.0.0.0/0", ip: "00000000", mask: "00000000", want: "0.0.0.0/0"},
		{in: "100.64.3.1/32", ip: "64400301", mask: "ffffffff", want: "100.64.3.1/32"},
		{in: "1.2.3.4/024", ip: "01020304", mask: "ffffff00", want: "1.2.3.4/24"}, // net.ParseCIDR accepts leading zeros
		{in: "fd00::1/64", ip: "fd000000000000000000000000000001", mask: "ffffffffffffffff0000000000000000", want: "fd00::1/64"},
		{in: "::/0", ip: "00000000000000000000000000000000", mask: "00000000000000000000000000000000", want: "::/0"},
		{in: "::ffff:1.2.3.4/120", ip: "00000000000000000000ffff01020304", mask: "ffffffffffffffffffffffffffffff00", want: "::ffff:1.2.3.4/120"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			n, err := ParseIPNet(tt.in)
			if err != nil {
				t.Fatalf("ParseIPNet(%q): %v", tt.in, err)
			}
			if got := hexOf(n.IP); got != tt.ip {
				t.Errorf("IP = %s, want %s", got, tt.ip)
			}
			if got := hexOf(n.Mask); got != tt.mask {
				t.Errorf("Mask = %s, want %s", got, tt.mask)
			}
			if got := n.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if n.Nil() {
				t.Error("Nil() = true for a parsed network")
			}
		})
	}
}

func TestParseIPNetErrors(t *testing.T) {
	for _, in := range []string{
		"10.1.0.0",         // no prefix length
		"10.1.0.0/33",      // too long for IPv4
		"fd00::/129",       // too long for IPv6
		"10.1.0/16",        // short address
		"10.1.0.0/-1",      // negative
		"10.1.0.0/ 16",     // space
		" 10.1.0.0/16",     // leading space
		"fe80::1%eth0/64",  // zone
		"example.com/24",   // name
		"10.1.0.0/16/16",   // two slashes
		"10.1.0.0/255.0.0", // dotted mask is not CIDR
		"/",
	} {
		t.Run(in, func(t *testing.T) {
			n, err := ParseIPNet(in)
			if !errors.Is(err, ErrInvalidIPNet) {
				t.Fatalf("ParseIPNet(%q) = %v, %v; want ErrInvalidIPNet", in, n, err)
			}
			if !n.Nil() {
				t.Errorf("value on error = %v, want zero", n)
			}
		})
	}
}

func TestIPNetZero(t *testing.T) {
	n, err := ParseIPNet("")
	if err != nil || !n.Nil() {
		t.Fatalf(`ParseIPNet("") = %v, %v; want zero, nil`, n, err)
	}
	if s := n.String(); s != "" {
		t.Errorf("String() of zero = %q, want empty", s)
	}
	b, err := json.Marshal(n)
	if err != nil || string(b) != `""` {
		t.Errorf("json of zero = %s, %v; want \"\"", b, err)
	}
}

func TestIPNetJSON(t *testing.T) {
	type doc struct {
		Range  IPNet   `json:"ip_range"`
		Ptr    *IPNet  `json:"ptr"`
		Allow  []IPNet `json:"allowed_ips"`
		Unset  IPNet   `json:"unset"`
		Absent IPNet   `json:"absent"`
	}
	in := `{"ip_range":"10.1.0.0/16","ptr":"10.1.3.0/24","allowed_ips":["10.1.3.0/24","100.64.1.3/32"],"unset":""}`
	var d doc
	if err := json.Unmarshal([]byte(in), &d); err != nil {
		t.Fatal(err)
	}
	if d.Range.String() != "10.1.0.0/16" || d.Ptr.String() != "10.1.3.0/24" ||
		len(d.Allow) != 2 || d.Allow[1].String() != "100.64.1.3/32" || !d.Unset.Nil() || !d.Absent.Nil() {
		t.Fatalf("decoded %+v", d)
	}
	// the decoded network behaves as a net.IPNet
	if !d.Range.Contains(net.IPv4(10, 1, 200, 7)) || d.Range.Contains(net.IPv4(10, 2, 0, 1)) {
		t.Error("Contains gives wrong answers for 10.1.0.0/16")
	}
	out, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ip_range":"10.1.0.0/16","ptr":"10.1.3.0/24","allowed_ips":["10.1.3.0/24","100.64.1.3/32"],"unset":"","absent":""}`
	if string(out) != want {
		t.Errorf("marshal:\n got %s\nwant %s", out, want)
	}
}

func TestIPNetUnmarshalBadKeepsValue(t *testing.T) {
	n := MustParseIPNet("10.1.0.0/16")
	if err := n.UnmarshalText([]byte("nonsense")); !errors.Is(err, ErrInvalidIPNet) {
		t.Fatalf("err = %v, want ErrInvalidIPNet", err)
	}
	if n.String() != "10.1.0.0/16" {
		t.Errorf("value changed to %v on error", n)
	}
	var doc struct{ R IPNet }
	if err := json.Unmarshal([]byte(`{"R":"10.1.0.0/99"}`), &doc); !errors.Is(err, ErrInvalidIPNet) {
		t.Errorf("json err = %v, want ErrInvalidIPNet", err)
	}
}

func TestIPNetMarshalInvalid(t *testing.T) {
	for name, n := range map[string]IPNet{
		"no mask":         NewIPNet(net.IPNet{IP: net.IPv4(10, 0, 0, 1).To4()}),
		"no ip":           NewIPNet(net.IPNet{Mask: net.CIDRMask(8, 32)}),
		"non-prefix mask": NewIPNet(net.IPNet{IP: net.IPv4(10, 0, 0, 1).To4(), Mask: net.IPv4Mask(255, 0, 255, 0)}),
		"v4 ip, v6 mask":  NewIPNet(net.IPNet{IP: net.IPv4(10, 0, 0, 1).To4(), Mask: net.CIDRMask(64, 128)}),
		"v6 ip, v4 mask":  NewIPNet(net.IPNet{IP: net.ParseIP("fd00::1"), Mask: net.CIDRMask(24, 32)}),
		"3-byte ip":       NewIPNet(net.IPNet{IP: net.IP{1, 2, 3}, Mask: net.CIDRMask(24, 32)}),
	} {
		t.Run(name, func(t *testing.T) {
			if b, err := n.MarshalText(); !errors.Is(err, ErrInvalidIPNet) {
				t.Errorf("MarshalText = %q, %v; want ErrInvalidIPNet", b, err)
			}
			if _, err := json.Marshal(struct{ N IPNet }{n}); !errors.Is(err, ErrInvalidIPNet) {
				t.Errorf("json.Marshal err = %v; want ErrInvalidIPNet", err)
			}
		})
	}
}

func TestIPNetFrom16ByteIPv4(t *testing.T) {
	// net.IPv4 returns 16 bytes; with a 4-byte mask this is still IPv4 text
	n := NewIPNet(net.IPNet{IP: net.IPv4(10, 3, 1, 0), Mask: net.CIDRMask(24, 32)})
	b, err := n.MarshalText()
	if err != nil || string(b) != "10.3.1.0/24" {
		t.Fatalf("MarshalText = %q, %v; want 10.3.1.0/24", b, err)
	}
}

func TestMustParseIPNetPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustParseIPNet did not panic on bad input")
		}
	}()
	MustParseIPNet("10.1.0.0/40")
}

func FuzzIPNetUnmarshalText(f *testing.F) {
	for _, s := range []string{
		"", "10.1.0.0/16", "10.1.3.5/24", "0.0.0.0/0", "1.2.3.4/032", "fd00::1/64",
		"::ffff:1.2.3.4/100", "::/0", "2001:db8::/32", "fe80::1%eth0/64", "10.1.0.0", "/", "1.2.3.4/33",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var n IPNet
		if err := n.UnmarshalText(b); err != nil {
			if !errors.Is(err, ErrInvalidIPNet) {
				t.Fatalf("error %v does not wrap ErrInvalidIPNet", err)
			}
			return
		}
		text, err := n.MarshalText()
		if err != nil {
			t.Fatalf("accepted %q but cannot marshal it: %v", b, err)
		}
		var back IPNet
		if err := back.UnmarshalText(text); err != nil {
			t.Fatalf("cannot read back %q (from %q): %v", text, b, err)
		}
		if !reflect.DeepEqual(n, back) {
			t.Fatalf("round trip of %q: %#v -> %q -> %#v", b, n, text, back)
		}
	})
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
