package resp

import (
	"bytes"
	"fmt"
)

// maxLine is the longest line (CR LF included) a request may hold outside of
// bulk payloads: the size of the Reader's buffer, so both accept the same.
const maxLine = 16 << 10

// Parser parses requests out of a byte slice, for servers that read whatever
// a socket holds and run the requests it completes. It accepts exactly what
// Reader accepts and fails where Reader fails. A request that arrives in
// pieces is not parsed again from its start each time: the Parser keeps its
// progress, so the work stays linear in the request size.
type Parser struct {
	MaxBulk int
	MaxArgs int

	args [][]byte
	// progress in a request parsed in part, relative to the slice start
	want int   // arguments of the array being parsed; 0: at a request start
	pos  int   // where parsing resumes
	scan int   // bytes after pos already searched for a line end
	offs []int // start and end of each argument parsed so far
}

// NewParser returns a Parser with the default limits.
func NewParser() *Parser { return &Parser{MaxBulk: DefaultMaxBulk, MaxArgs: DefaultMaxArgs} }

// Parse parses the first request of b. It returns the arguments (slices of
// b, valid until the next call or until b changes) and the number of bytes
// the request took. n == 0 means that b holds only the start of a request:
// read more and call again with the same bytes, extended. A request with no
// arguments (blank inline line, empty or null array) is consumed with n > 0
// and no arguments. An error wraps ErrProtocol; the Parser is then reset.
func (p *Parser) Parse(b []byte) (args [][]byte, n int, err error) {
	args, n, err = p.parse(b)
	if err != nil || n > 0 {
		p.want, p.pos, p.scan, p.offs = 0, 0, 0, p.offs[:0]
	}
	return args, n, err
}

func (p *Parser) parse(b []byte) ([][]byte, int, error) {
	if p.want == 0 {
		line, next, err := p.line(b)
		if err != nil || next == 0 {
			return nil, 0, err
		}
		if len(line) == 0 {
			return nil, next, nil
		}
		if line[0] != '*' {
			args := p.inline(line)
			if len(args) > p.MaxArgs {
				return nil, 0, fmt.Errorf("inline command of %d words: %w", len(args), ErrProtocol)
			}
			return args, next, nil
		}
		count, err := parseInt(line[1:])
		if err != nil {
			return nil, 0, fmt.Errorf("array length %q: %w", line[1:], ErrProtocol)
		}
		if count <= 0 {
			return nil, next, nil
		}
		if count > int64(p.MaxArgs) {
			return nil, 0, fmt.Errorf("array of %d arguments: %w", count, ErrProtocol)
		}
		p.want, p.pos, p.scan = int(count), next, 0
	}
	for len(p.offs) < 2*p.want {
		line, next, err := p.line(b)
		if err != nil || next == 0 {
			return nil, 0, err
		}
		if len(line) == 0 || line[0] != '$' {
			return nil, 0, fmt.Errorf("expected bulk string, got %q: %w", truncate(line), ErrProtocol)
		}
		size, err := parseInt(line[1:])
		if err != nil || size < 0 || size > int64(p.MaxBulk) {
			return nil, 0, fmt.Errorf("bulk length %q: %w", truncate(line[1:]), ErrProtocol)
		}
		end := next + int(size)
		if end+2 > len(b) {
			return nil, 0, nil // the header line is parsed again: it is short
		}
		if b[end] != '\r' || b[end+1] != '\n' {
			return nil, 0, fmt.Errorf("bulk string not terminated by CRLF: %w", ErrProtocol)
		}
		p.offs = append(p.offs, next, end)
		p.pos, p.scan = end+2, 0
	}
	p.args = p.args[:0]
	for i := 0; i < len(p.offs); i += 2 {
		p.args = append(p.args, b[p.offs[i]:p.offs[i+1]:p.offs[i+1]])
	}
	return p.args, p.pos, nil
}

// line returns the line at b[p.pos:] without its CR LF (or LF) and the
// position after it; next == 0 when the line is not complete yet.
func (p *Parser) line(b []byte) (line []byte, next int, err error) {
	rest := b[p.pos:]
	limit := min(len(rest), maxLine)
	i := bytes.IndexByte(rest[p.scan:limit], '\n')
	if i < 0 {
		if len(rest) >= maxLine {
			return nil, 0, fmt.Errorf("line too long: %w", ErrProtocol)
		}
		p.scan = limit
		return nil, 0, nil
	}
	i += p.scan
	line = rest[:i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, p.pos + i + 1, nil
}

// inline splits an inline command on spaces and tabs; the words alias line.
func (p *Parser) inline(line []byte) [][]byte {
	p.args = p.args[:0]
	start := -1
	for i, c := range line {
		space := c == ' ' || c == '\t'
		switch {
		case !space && start < 0:
			start = i
		case space && start >= 0:
			p.args = append(p.args, line[start:i:i])
			start = -1
		}
	}
	if start >= 0 {
		p.args = append(p.args, line[start:len(line):len(line)])
	}
	if len(p.args) == 0 {
		return nil
	}
	return p.args
}
