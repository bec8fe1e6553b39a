package identity

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseCmdline(t *testing.T) {
	cases := []struct {
		in   string
		want Params
	}{
		{"", Params{}},
		{"   \n", Params{}},
		{"farmer_id=12 runmode=dev\n", Params{"farmer_id": {"12"}, "runmode": {"dev"}}},
		{"BOOT_IMAGE=/vmlinuz root=UUID=abc ro quiet", Params{"BOOT_IMAGE": {"/vmlinuz"}, "root": {"UUID=abc"}, "ro": {}, "quiet": {}}},
		{"console=tty0 console=ttyS0,115200", Params{"console": {"tty0", "ttyS0,115200"}}},
		{"farmer_id=1 farmer_id=2", Params{"farmer_id": {"1", "2"}}},
		{"farmer_id farmer_id=3", Params{"farmer_id": {"3"}}},
		{"farmer_id=3 farmer_id", Params{"farmer_id": {"3"}}},
		{"farmer_id=", Params{"farmer_id": {""}}},
		{`a="hello world" b='x y' c=p\ q`, Params{"a": {"hello world"}, "b": {"x y"}, "c": {"p q"}}},
		{`a="say \"hi\" \\ \n"`, Params{"a": {`say "hi" \ \n`}}},
		{`a='it''s'`, Params{"a": {"its"}}},
		{`"farmer_id=5"`, Params{"farmer_id": {"5"}}},
		{`a="unterminated value b=2`, Params{"a": {"unterminated value b=2"}}},
		{`a='unterminated`, Params{"a": {"unterminated"}}},
		{`trailing\`, Params{"trailing\\": {}}},
		{"=value other", Params{"other": {}}},
		{`"" ''`, Params{}},
		{"k=v=w\tx\r\ny", Params{"k": {"v=w"}, "x": {}, "y": {}}},
	}
	for _, c := range cases {
		got := ParseCmdline([]byte(c.in))
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("ParseCmdline(%q) (-want +got):\n%s", c.in, diff)
		}
	}
}

func TestParamsFarmID(t *testing.T) {
	cases := []struct {
		in   string
		id   uint64
		want error
	}{
		{"quiet farmer_id=42", 42, nil},
		{"farmer_id=0", 0, nil},
		{"farmer_id=18446744073709551615", 1<<64 - 1, nil},
		{"farmer_id=7 farmer_id=8", 7, nil},
		{`farmer_id="9"`, 9, nil},
		{"", 0, ErrOrphan},
		{"quiet", 0, ErrOrphan},
		{"farmer_id", 0, ErrOrphan},
		{"farmer_id=", 0, ErrOrphan},
		{"farmer_id= farmer_id=3", 0, ErrOrphan}, // the first value wins, and it is empty
		{"farmer_id=abc", 0, ErrInvalidFarmID},
		{"farmer_id=-1", 0, ErrInvalidFarmID},
		{"farmer_id=+1", 0, ErrInvalidFarmID},
		{"farmer_id=0x10", 0, ErrInvalidFarmID},
		{"farmer_id=1.5", 0, ErrInvalidFarmID},
		{"farmer_id=18446744073709551616", 0, ErrInvalidFarmID},
		{`farmer_id=" 1"`, 0, ErrInvalidFarmID},
		{"farmer_id=12abc", 0, ErrInvalidFarmID},
	}
	for _, c := range cases {
		id, err := ParseCmdline([]byte(c.in)).FarmID()
		if !errors.Is(err, c.want) || (err == nil && id != c.id) {
			t.Errorf("%q: %d, %v; want %d, %v", c.in, id, err, c.id, c.want)
		}
	}
}

func TestParamsHasGet(t *testing.T) {
	p := ParseCmdline([]byte("quiet runmode=dev runmode=test empty="))
	if !p.Has("quiet") || p.Has("loud") || !p.Has("empty") {
		t.Fatal("Has")
	}
	if v, ok := p.Get("runmode"); !ok || v != "dev" {
		t.Fatalf("Get runmode = %q %v", v, ok)
	}
	if _, ok := p.Get("quiet"); ok {
		t.Fatal("a bare key has a value")
	}
	if v, ok := p.Get("empty"); !ok || v != "" {
		t.Fatal("empty value")
	}
}

func TestCmdlineFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cmdline")
	if err := os.WriteFile(path, []byte("farmer_id=3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	read := CmdlineFile(path)
	b, err := read()
	if err != nil || string(b) != "farmer_id=3\n" {
		t.Fatalf("%q %v", b, err)
	}
	// Read again on each call.
	if err := os.WriteFile(path, []byte("farmer_id=4"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := read(); !strings.Contains(string(b), "4") {
		t.Fatal("file not read again")
	}
	if _, err := CmdlineFile(filepath.Join(t.TempDir(), "none"))(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}
