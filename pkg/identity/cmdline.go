package identity

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Kernel command line parameters read by zos.
const (
	// ParamFarmID is the kernel parameter holding the farm id.
	ParamFarmID = "farmer_id"
	// ParamRunMode selects the network (dev, test, prod).
	ParamRunMode = "runmode"
)

// Params are the parameters of a kernel command line: each key=value appends
// value to the list of key; a bare key is present with no value.
type Params map[string][]string

// ParseCmdline parses a kernel command line (the bytes of /proc/cmdline).
// Words are split shell-style: white space separates them; 'single quotes'
// keep everything literally; "double quotes" keep everything but \" and \\;
// outside quotes a backslash escapes the next byte. An unterminated quote runs
// to the end of the input (the kernel is lenient the same way). Each word is
// split at its first '='; words with an empty key are ignored. ParseCmdline
// never fails: odd input yields odd words, never an error or panic.
func ParseCmdline(cmdline []byte) Params {
	p := Params{}
	for _, w := range splitShell(cmdline) {
		key, value, hasValue := strings.Cut(w, "=")
		if key == "" {
			continue
		}
		if !hasValue {
			if _, ok := p[key]; !ok {
				p[key] = []string{}
			}
			continue
		}
		p[key] = append(p[key], value)
	}
	return p
}

// Has reports whether key appears on the command line, with or without value.
func (p Params) Has(key string) bool {
	_, ok := p[key]
	return ok
}

// Get returns the first value of key; ok is false when key has no value.
func (p Params) Get(key string) (value string, ok bool) {
	if v := p[key]; len(v) > 0 {
		return v[0], true
	}
	return "", false
}

// FarmID returns the farm id of farmer_id= (its first value). Missing or empty
// is ErrOrphan; anything but a decimal uint64 is ErrInvalidFarmID.
func (p Params) FarmID() (uint64, error) {
	v, ok := p.Get(ParamFarmID)
	if !ok || v == "" {
		return 0, fmt.Errorf("kernel parameter %s: %w", ParamFarmID, ErrOrphan)
	}
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("kernel parameter %s=%q: %w", ParamFarmID, v, ErrInvalidFarmID)
	}
	return id, nil
}

// CmdlineFile returns a Config.Cmdline func that reads the file at path on
// each call (cmd/ passes "/proc/cmdline").
func CmdlineFile(path string) func() ([]byte, error) {
	return func() ([]byte, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("kernel command line: %w", err)
		}
		return b, nil
	}
}

// isSpace reports the bytes that separate words.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// splitShell splits b into words as ParseCmdline documents.
func splitShell(b []byte) []string {
	var (
		words []string
		cur   []byte
		in    bool // inside a word (possibly an empty quoted one)
	)
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case isSpace(c):
			if in {
				words = append(words, string(cur))
				cur, in = cur[:0], false
			}
		case c == '\'':
			in = true
			for i++; i < len(b) && b[i] != '\''; i++ {
				cur = append(cur, b[i])
			}
		case c == '"':
			in = true
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' && i+1 < len(b) && (b[i+1] == '"' || b[i+1] == '\\') {
					i++
				}
				cur = append(cur, b[i])
			}
		case c == '\\':
			in = true
			if i+1 < len(b) {
				i++
			}
			cur = append(cur, b[i])
		default:
			in = true
			cur = append(cur, c)
		}
	}
	if in {
		words = append(words, string(cur))
	}
	return words
}
