package container

import (
	"maps"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/zos-go/zos/pkg"
)

// StartupFile is the file, at the root of a container's root filesystem,
// that flists built for the original coreX/0-init may carry.
const StartupFile = ".startup.toml"

// startupFile is the part of .startup.toml the original honoured:
//
//	[startup.entry]
//	name = "core.system"
//	[startup.entry.args]
//	name = "/bin/app"
//	args = ["-v", "x y"]
//	dir = "/srv"
//	[startup.entry.args.env]
//	KEY = "value"
type startupFile struct {
	Startup map[string]startupEntry `toml:"startup"`
}

type startupEntry struct {
	Name string      `toml:"name"`
	Args startupArgs `toml:"args"`
}

type startupArgs struct {
	Name string            `toml:"name"`
	Dir  string            `toml:"dir"`
	Args []string          `toml:"args"`
	Env  map[string]string `toml:"env"`
}

// ApplyStartup merges the content of a .startup.toml into c, as the
// original did: the entry's env is added, the caller's values winning;
// when c has no entrypoint, it becomes the entry's command (for an entry
// named core.system, or core.base with a command) with each argument
// quoted, and the working directory the entry's dir when c has none. A
// file that does not parse changes nothing.
func ApplyStartup(c pkg.Container, b []byte) pkg.Container {
	var f startupFile
	if err := toml.Unmarshal(b, &f); err != nil {
		return c
	}
	entry, ok := f.Startup["entry"]
	if !ok {
		return c
	}
	if len(entry.Args.Env) > 0 {
		have := map[string]bool{}
		for _, e := range c.Env {
			k, _, _ := strings.Cut(e, "=")
			have[k] = true
		}
		env := slices.Clone(c.Env)
		for _, k := range slices.Sorted(maps.Keys(entry.Args.Env)) {
			if k == "" || have[k] || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(entry.Args.Env[k], 0) {
				continue
			}
			env = append(env, k+"="+entry.Args.Env[k])
		}
		c.Env = env
	}
	if c.Entrypoint != "" {
		return c
	}
	if entry.Name == "core.system" || entry.Name == "core.base" && entry.Args.Name != "" {
		words := []string{quote(entry.Args.Name)}
		for _, a := range entry.Args.Args {
			words = append(words, quote(a))
		}
		c.Entrypoint = strings.Join(words, " ")
		if c.WorkingDir == "" {
			c.WorkingDir = entry.Args.Dir
		}
	}
	return c
}

// quote double-quotes s so that shlex.Split gives it back as one word (the
// original quoted without escaping, which broke on quotes).
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}
