package types

import (
	"cmp"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalidVersion is wrapped by every error about text that is not a
// semantic version.
var ErrInvalidVersion = errors.New("invalid version")

// Version is a semantic version (https://semver.org, 2.0.0):
// MAJOR.MINOR.PATCH, an optional pre-release after "-" and optional build
// metadata after "+", e.g. "2.0.0", "0.4.9-rc1+abc". The zero Version is
// "0.0.0". Version is comparable with ==, which also compares Build; use
// Compare for precedence.
type Version struct {
	Major, Minor, Patch uint64
	// Pre is the dot-separated pre-release ("rc.1"), empty for a release.
	Pre string
	// Build is the dot-separated build metadata, ignored by Compare.
	Build string
}

// ParseVersion parses a semantic version such as "1.0.0" or "1.2.3-rc.1+b5".
// A leading "v", missing parts, leading zeros in numbers and empty or
// non-alphanumeric identifiers are refused with an error wrapping
// ErrInvalidVersion.
func ParseVersion(s string) (Version, error) {
	fail := func(reason string) (Version, error) {
		return Version{}, fmt.Errorf("version %q: %s: %w", s, reason, ErrInvalidVersion)
	}
	var v Version
	rest := s
	if i := strings.IndexByte(rest, '+'); i >= 0 {
		v.Build, rest = rest[i+1:], rest[:i]
		if !validIdents(v.Build, false) {
			return fail("bad build metadata")
		}
	}
	if i := strings.IndexByte(rest, '-'); i >= 0 {
		v.Pre, rest = rest[i+1:], rest[:i]
		if !validIdents(v.Pre, true) {
			return fail("bad pre-release")
		}
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return fail("want MAJOR.MINOR.PATCH")
	}
	nums := [3]*uint64{&v.Major, &v.Minor, &v.Patch}
	for i, p := range parts {
		if !isNumeric(p) || (len(p) > 1 && p[0] == '0') {
			return fail("bad number " + strconv.Quote(p))
		}
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return fail("number out of range")
		}
		*nums[i] = n
	}
	return v, nil
}

// MustParseVersion is ParseVersion for constants: it panics when s is not valid.
func MustParseVersion(s string) Version {
	v, err := ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

// String returns the text form, e.g. "2.0.0" or "1.0.0-rc.1+b5".
func (v Version) String() string {
	var b strings.Builder
	b.WriteString(strconv.FormatUint(v.Major, 10))
	b.WriteByte('.')
	b.WriteString(strconv.FormatUint(v.Minor, 10))
	b.WriteByte('.')
	b.WriteString(strconv.FormatUint(v.Patch, 10))
	if v.Pre != "" {
		b.WriteByte('-')
		b.WriteString(v.Pre)
	}
	if v.Build != "" {
		b.WriteByte('+')
		b.WriteString(v.Build)
	}
	return b.String()
}

// Compare returns -1, 0 or +1 when v has lower, equal or higher precedence
// than o. A pre-release sorts before its release; numeric pre-release
// identifiers compare as numbers and before alphanumeric ones; build
// metadata is ignored.
func (v Version) Compare(o Version) int {
	if c := cmp.Compare(v.Major, o.Major); c != 0 {
		return c
	}
	if c := cmp.Compare(v.Minor, o.Minor); c != 0 {
		return c
	}
	if c := cmp.Compare(v.Patch, o.Patch); c != 0 {
		return c
	}
	switch {
	case v.Pre == o.Pre:
		return 0
	case v.Pre == "":
		return 1
	case o.Pre == "":
		return -1
	}
	a, b := strings.Split(v.Pre, "."), strings.Split(o.Pre, ".")
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := compareIdent(a[i], b[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

// LessThan reports whether v has lower precedence than o.
func (v Version) LessThan(o Version) bool {
	return v.Compare(o) < 0
}

// MarshalText implements encoding.TextMarshaler (JSON "2.0.0").
func (v Version) MarshalText() ([]byte, error) {
	return []byte(v.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseVersion. On
// error v is left unchanged.
func (v *Version) UnmarshalText(text []byte) error {
	p, err := ParseVersion(string(text))
	if err != nil {
		return err
	}
	*v = p
	return nil
}

// compareIdent orders two pre-release identifiers.
func compareIdent(a, b string) int {
	an, bn := isNumeric(a), isNumeric(b)
	switch {
	case an && bn:
		// no leading zeros, so a longer number is a larger one
		if c := cmp.Compare(len(a), len(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	case an:
		return -1
	case bn:
		return 1
	}
	return strings.Compare(a, b)
}

// validIdents checks dot-separated identifiers of [0-9A-Za-z-]; pre-release
// numeric identifiers must not have leading zeros.
func validIdents(s string, pre bool) bool {
	for id := range strings.SplitSeq(s, ".") {
		if id == "" {
			return false
		}
		for i := 0; i < len(id); i++ {
			c := id[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
				return false
			}
		}
		if pre && isNumeric(id) && len(id) > 1 && id[0] == '0' {
			return false
		}
	}
	return true
}

// isNumeric reports whether s is a non-empty run of ASCII digits.
func isNumeric(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
