package container

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/shlex"

	"github.com/zos-go/zos/pkg"
)

// rootfs makes a small tree: /bin/app (executable), /bin/sh → app
// (relative link), /usr/bin/abs → /bin/app (absolute link), /etc/data
// (not executable), /loop → /loop.
func rootfs(t *testing.T) string {
	dir := t.TempDir()
	for _, d := range []string{"bin", "usr/bin", "etc"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "bin/app"), []byte("x"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "etc/data"), []byte("x"), 0o644))
	must(os.Symlink("app", filepath.Join(dir, "bin/sh")))
	must(os.Symlink("/bin/app", filepath.Join(dir, "usr/bin/abs")))
	must(os.Symlink("/loop", filepath.Join(dir, "loop")))
	must(os.Symlink("../../../../../../etc/data", filepath.Join(dir, "bin/escape")))
	return dir
}

func TestFindProgram(t *testing.T) {
	dir := rootfs(t)
	for _, tc := range []struct {
		prog, workdir string
		env           []string
		want          string
	}{
		{"/bin/app", "", nil, "/bin/app"},
		{"app", "", nil, "/bin/app"},
		{"sh", "", nil, "/bin/sh"},
		{"abs", "", nil, "/usr/bin/abs"},
		{"./app", "/bin", nil, "/bin/app"},
		{"app", "", []string{"PATH=/usr/bin:/bin"}, "/bin/app"},
	} {
		got, err := findProgram(dir, tc.prog, tc.workdir, tc.env)
		if err != nil || got != tc.want {
			t.Errorf("findProgram(%q) = %q, %v; want %q", tc.prog, got, err, tc.want)
		}
	}
	for _, prog := range []string{"/etc/data", "data", "/bin/none", "/loop", "/bin/escape", "app/"} {
		if got, err := findProgram(dir, prog, "", []string{"PATH=/etc"}); err == nil {
			t.Errorf("findProgram(%q) = %q, want an error", prog, got)
		}
	}
}

func TestPrepareDefaultsAndCopies(t *testing.T) {
	dir := rootfs(t)
	env := []string{"A=1"}
	c := pkg.Container{Name: "c1", RootFS: dir, Env: env, Network: pkg.NetworkInfo{Namespace: "n"}, Entrypoint: `app -c "echo hi"`}
	r, err := Prepare("ns", c, PrepareOptions{CPUs: 2, DefaultMemoryBytes: 100 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if r.Container.CPU != 1 || r.Container.Memory != 100<<20 {
		t.Fatalf("defaults: cpu %d memory %d", r.Container.CPU, r.Container.Memory)
	}
	if want := []string{"app", "-c", "echo hi"}; !slices.Equal(r.Args, want) {
		t.Fatalf("args %q, want %q", r.Args, want)
	}
	r.Container.Env[0] = "B=2"
	if env[0] != "A=1" {
		t.Fatal("Prepare shares the caller's Env slice")
	}
	c.CPU = 3
	if _, err := Prepare("ns", c, PrepareOptions{CPUs: 2}); !errors.Is(err, ErrInvalidLimit) {
		t.Fatalf("3 cpus on 2: %v", err)
	}
	c.CPU, c.Interactive, c.Entrypoint = 0, true, ""
	if r, err := Prepare("ns", c, PrepareOptions{}); err != nil || len(r.Args) != 0 {
		t.Fatalf("interactive without entrypoint: %+v, %v", r, err)
	}
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"a", "ns1", "a.b-c_d", "A9", "x123456789012345678901234567890123456789012345678901234567890123456789012345"} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("ValidateName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a/b", "-a", "a-", "a..b", ".", "..", "a b", "é", string(make([]byte, 77))} {
		if err := ValidateName(bad); !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalidName", bad, err)
		}
	}
}

const startupTOML = `
[startup.entry]
name = "core.system"
[startup.entry.args]
name = "/bin/app"
args = ["-v", "two words", "with \"quote\""]
dir = "/srv"
[startup.entry.args.env]
FROM_FILE = "file"
BOTH = "file"
`

func TestApplyStartup(t *testing.T) {
	c := ApplyStartup(pkg.Container{Env: []string{"BOTH=caller"}}, []byte(startupTOML))
	if want := []string{"BOTH=caller", "FROM_FILE=file"}; !slices.Equal(c.Env, want) {
		t.Fatalf("env %q, want %q (caller wins)", c.Env, want)
	}
	args, err := shlex.Split(c.Entrypoint)
	if want := []string{"/bin/app", "-v", "two words", `with "quote"`}; err != nil || !slices.Equal(args, want) {
		t.Fatalf("entrypoint %q splits to %q, %v; want %q", c.Entrypoint, args, err, want)
	}
	if c.WorkingDir != "/srv" {
		t.Fatalf("workdir %q", c.WorkingDir)
	}
	kept := ApplyStartup(pkg.Container{Entrypoint: "mine", WorkingDir: "/w"}, []byte(startupTOML))
	if kept.Entrypoint != "mine" || kept.WorkingDir != "/w" {
		t.Fatalf("caller's entrypoint replaced: %+v", kept)
	}
	base := ApplyStartup(pkg.Container{}, []byte("[startup.entry]\nname = \"core.base\"\n"))
	if base.Entrypoint != "" {
		t.Fatalf("core.base without a command gave entrypoint %q", base.Entrypoint)
	}
	if got := ApplyStartup(pkg.Container{Name: "x"}, []byte("not toml [")); got.Name != "x" || got.Entrypoint != "" {
		t.Fatalf("bad toml changed the container: %+v", got)
	}
}

func TestPrepareReadsStartupFile(t *testing.T) {
	dir := rootfs(t)
	if err := os.WriteFile(filepath.Join(dir, StartupFile), []byte(startupTOML), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Prepare("ns", pkg.Container{Name: "c", RootFS: dir, Network: pkg.NetworkInfo{Namespace: "n"}}, PrepareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Args[0] != "/bin/app" || r.Container.WorkingDir != "/srv" {
		t.Fatalf("startup file not applied: %+v", r)
	}
}

func FuzzApplyStartup(f *testing.F) {
	f.Add([]byte(startupTOML), "")
	f.Add([]byte("[startup.entry]\nname=\"core.base\"\n[startup.entry.args]\nname=\"a\\\\\"\n"), "x")
	f.Add([]byte("startup = 1"), "")
	f.Fuzz(func(t *testing.T, b []byte, entry string) {
		c := ApplyStartup(pkg.Container{Entrypoint: entry, Env: []string{"K=v"}}, b)
		if entry != "" && c.Entrypoint != entry {
			t.Fatalf("caller's entrypoint %q replaced by %q", entry, c.Entrypoint)
		}
		if c.Env[0] != "K=v" {
			t.Fatalf("caller's env replaced: %q", c.Env)
		}
		if entry == "" && c.Entrypoint != "" {
			if _, err := shlex.Split(c.Entrypoint); err != nil {
				t.Fatalf("entrypoint %q from the file does not split: %v", c.Entrypoint, err)
			}
		}
	})
}
