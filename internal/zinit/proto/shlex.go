package proto

import (
	"errors"
	"strings"
)

// ErrQuoting is returned by Split for an unterminated quote or a trailing
// backslash.
var ErrQuoting = errors.New("invalid quoting")

// Split splits s into words the way a POSIX shell would, without any
// expansion: blanks separate words, single quotes keep everything literally,
// double quotes keep everything but a backslash before ", \, $ or `, and a
// backslash outside quotes escapes the next character.
func Split(s string) ([]string, error) {
	var (
		words   []string
		cur     strings.Builder
		inWord  bool
		i       int
		isBlank = func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	)
	for i < len(s) {
		c := s[i]
		switch {
		case isBlank(c):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
			i++
		case c == '\\':
			if i+1 >= len(s) {
				return nil, ErrQuoting
			}
			inWord = true
			if s[i+1] != '\n' { // backslash-newline is a line continuation
				cur.WriteByte(s[i+1])
			}
			i += 2
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, ErrQuoting
			}
			inWord = true
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 2
		case c == '"':
			inWord = true
			i++
			closed := false
			for i < len(s) {
				d := s[i]
				if d == '"' {
					closed = true
					i++
					break
				}
				if d == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`\n", s[i+1]) >= 0 {
					if s[i+1] != '\n' {
						cur.WriteByte(s[i+1])
					}
					i += 2
					continue
				}
				cur.WriteByte(d)
				i++
			}
			if !closed {
				return nil, ErrQuoting
			}
		default:
			inWord = true
			cur.WriteByte(c)
			i++
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// Quote returns s quoted so that Split gives it back as one word. Words made
// only of safe characters are returned unchanged.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_./@:=+,%", c) >= 0) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Join quotes every word and joins them with spaces: Split(Join(w)) == w.
func Join(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = Quote(w)
	}
	return strings.Join(q, " ")
}
