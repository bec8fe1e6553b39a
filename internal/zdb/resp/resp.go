// Package resp reads redis protocol (RESP2) requests and encodes replies, as
// the 0-db server speaks them. The reader accepts arrays of bulk strings (what
// every client library sends) and inline commands (space separated words, as
// typed into telnet). It does not allocate per request once warmed up.
package resp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Limits of a request.
const (
	DefaultMaxBulk = 64 << 20 // largest argument
	DefaultMaxArgs = 1 << 16  // most arguments in one request
	maxInline      = 64 << 10 // longest inline command line
)

// ErrProtocol is wrapped by every malformed-request error. After it the
// connection cannot be resynchronised and should be closed.
var ErrProtocol = errors.New("protocol error")

// Reader reads requests from a buffered stream.
type Reader struct {
	r       *bufio.Reader
	MaxBulk int
	MaxArgs int

	buf  []byte   // argument bytes of the current request
	offs []int    // argument boundaries in buf
	args [][]byte // the current request, slices of buf
}

// NewReader returns a Reader over r.
func NewReader(r io.Reader) *Reader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 16<<10)
	}
	return &Reader{r: br, MaxBulk: DefaultMaxBulk, MaxArgs: DefaultMaxArgs}
}

// Buffered returns the number of bytes already read from the stream but not
// yet parsed: when 0, no further request is pending.
func (rd *Reader) Buffered() int { return rd.r.Buffered() }

// ReadRequest reads one request. The returned arguments stay valid until the
// next call. An empty request (blank inline line) is skipped. io.EOF is
// returned when the stream ends between requests.
func (rd *Reader) ReadRequest() ([][]byte, error) {
	for {
		line, err := rd.readLine()
		if err != nil {
			return nil, err
		}
		if len(line) == 0 {
			continue
		}
		if line[0] != '*' {
			args, err := rd.inline(line)
			if err != nil {
				return nil, err
			}
			if len(args) == 0 {
				continue
			}
			return args, nil
		}
		n, err := parseInt(line[1:])
		if err != nil {
			return nil, fmt.Errorf("array length %q: %w", line[1:], ErrProtocol)
		}
		if n <= 0 {
			continue // null or empty array: nothing to run
		}
		if n > int64(rd.MaxArgs) {
			return nil, fmt.Errorf("array of %d arguments: %w", n, ErrProtocol)
		}
		return rd.array(int(n))
	}
}

// readLine returns a line without its CR LF (or LF).
func (rd *Reader) readLine() ([]byte, error) {
	line, err := rd.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("line too long: %w", ErrProtocol)
		}
		if errors.Is(err, io.EOF) && len(line) > 0 {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, nil
}

func (rd *Reader) array(n int) ([][]byte, error) {
	rd.buf = rd.buf[:0]
	rd.offs = rd.offs[:0]
	for i := 0; i < n; i++ {
		line, err := rd.readLine()
		if err != nil {
			return nil, noEOF(err)
		}
		if len(line) == 0 || line[0] != '$' {
			return nil, fmt.Errorf("expected bulk string, got %q: %w", truncate(line), ErrProtocol)
		}
		size, err := parseInt(line[1:])
		if err != nil || size < 0 || size > int64(rd.MaxBulk) {
			return nil, fmt.Errorf("bulk length %q: %w", truncate(line[1:]), ErrProtocol)
		}
		start := len(rd.buf)
		need := start + int(size) + 2
		if cap(rd.buf) < need {
			nb := make([]byte, start, max(need, 2*cap(rd.buf)))
			copy(nb, rd.buf)
			rd.buf = nb
		}
		rd.buf = rd.buf[:need]
		if _, err := io.ReadFull(rd.r, rd.buf[start:need]); err != nil {
			return nil, noEOF(err)
		}
		if rd.buf[need-2] != '\r' || rd.buf[need-1] != '\n' {
			return nil, fmt.Errorf("bulk string not terminated by CRLF: %w", ErrProtocol)
		}
		rd.buf = rd.buf[:need-2]
		rd.offs = append(rd.offs, start)
	}
	return rd.split(), nil
}

func (rd *Reader) split() [][]byte {
	rd.args = rd.args[:0]
	for i, start := range rd.offs {
		end := len(rd.buf)
		if i+1 < len(rd.offs) {
			end = rd.offs[i+1]
		}
		rd.args = append(rd.args, rd.buf[start:end:end])
	}
	return rd.args
}

// inline splits an inline command on spaces and tabs.
func (rd *Reader) inline(line []byte) ([][]byte, error) {
	if len(line) > maxInline {
		return nil, fmt.Errorf("inline command too long: %w", ErrProtocol)
	}
	rd.buf = append(rd.buf[:0], line...)
	rd.offs = rd.offs[:0]
	var ends []int
	inWord := false
	for i, c := range rd.buf {
		space := c == ' ' || c == '\t'
		if !space && !inWord {
			rd.offs = append(rd.offs, i)
			inWord = true
		} else if space && inWord {
			ends = append(ends, i)
			inWord = false
		}
	}
	if inWord {
		ends = append(ends, len(rd.buf))
	}
	if len(rd.offs) > rd.MaxArgs {
		return nil, fmt.Errorf("inline command of %d words: %w", len(rd.offs), ErrProtocol)
	}
	rd.args = rd.args[:0]
	for i, start := range rd.offs {
		rd.args = append(rd.args, rd.buf[start:ends[i]:ends[i]])
	}
	return rd.args, nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func truncate(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}

// parseInt parses a decimal integer without allocating.
func parseInt(b []byte) (int64, error) {
	if len(b) == 0 || len(b) > 19 {
		return 0, strconv.ErrSyntax
	}
	neg := false
	if b[0] == '-' {
		neg, b = true, b[1:]
		if len(b) == 0 {
			return 0, strconv.ErrSyntax
		}
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, strconv.ErrSyntax
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, nil
}

// AppendSimple appends a simple string reply: +s.
func AppendSimple(b []byte, s string) []byte {
	b = append(b, '+')
	b = append(b, s...)
	return append(b, '\r', '\n')
}

// AppendError appends an error reply: -msg.
func AppendError(b []byte, msg string) []byte {
	b = append(b, '-')
	b = append(b, msg...)
	return append(b, '\r', '\n')
}

// AppendInt appends an integer reply: :n.
func AppendInt(b []byte, n int64) []byte {
	b = append(b, ':')
	b = strconv.AppendInt(b, n, 10)
	return append(b, '\r', '\n')
}

// AppendBulk appends a bulk string reply.
func AppendBulk(b, v []byte) []byte {
	b = AppendBulkHeader(b, len(v))
	b = append(b, v...)
	return append(b, '\r', '\n')
}

// AppendBulkString appends a bulk string reply.
func AppendBulkString(b []byte, v string) []byte {
	b = AppendBulkHeader(b, len(v))
	b = append(b, v...)
	return append(b, '\r', '\n')
}

// AppendBulkHeader appends $n CRLF; the caller appends n bytes and CRLF.
func AppendBulkHeader(b []byte, n int) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

// AppendNil appends the nil bulk reply: $-1.
func AppendNil(b []byte) []byte { return append(b, "$-1\r\n"...) }

// AppendArray appends an array header: *n.
func AppendArray(b []byte, n int) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

// AppendCommand appends args encoded as a request (an array of bulk strings).
func AppendCommand(b []byte, args ...[]byte) []byte {
	b = AppendArray(b, len(args))
	for _, a := range args {
		b = AppendBulk(b, a)
	}
	return b
}
