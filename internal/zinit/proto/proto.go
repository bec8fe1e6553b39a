// Package proto is zinit's control-socket wire protocol, shared by the server
// (internal/zinit) and the client (pkg/zinit).
//
// Line protocol (zinit v0.1): a client sends one command per line, words split
// shell-style; several commands may be sent on one connection and each is
// answered in order with header lines, an empty line and a body:
//
//	status: ok
//	lines: 2
//
//	redis: Running
//	networkd: Spawned
//
// On error the status is "error" and the body is the error text. The JSON form
// (zinit v0.2) answers one command per connection with one object
// {"state": "ok"|"error", "body": <value>}.
//
// Errors travel as text; this package owns the one table that turns the
// texts of the original zinit back into the sentinels below.
package proto

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// MaxRequestBytes is the longest request line a server accepts.
const MaxRequestBytes = 4096

// Limits a client applies to responses, so a broken server cannot exhaust its
// memory.
const (
	MaxResponseLines     = 1 << 20
	MaxResponseLineBytes = 1 << 20
)

// Sentinels for the errors a zinit server reports. Every error parsed from a
// response or produced by the server wraps exactly one of them.
var (
	ErrUnknownService   = errors.New("unknown service")
	ErrAlreadyMonitored = errors.New("already monitored")
	ErrNotRunning       = errors.New("service is not running")
	ErrTargetNotDown    = errors.New("service target is not down")
	ErrServiceRunning   = errors.New("service is running")
	ErrUnknownCommand   = errors.New("unknown command")
	ErrInvalidCommand   = errors.New("invalid command")
	ErrInvalidArguments = errors.New("invalid arguments")
	ErrRequestTooLong   = errors.New("request too long")
	ErrInvalidService   = errors.New("invalid service")
	ErrInvalidSignal    = errors.New("invalid signal")
	ErrShuttingDown     = errors.New("zinit is shutting down")
	ErrNotSupported     = errors.New("not supported")
	// ErrRemote is wrapped by server errors whose text matches no known form.
	ErrRemote = errors.New("zinit error")
	// ErrProtocol reports a malformed response.
	ErrProtocol = errors.New("zinit protocol error")
)

// Error is an error as carried on the wire: Msg is the exact text, Kind the
// sentinel it belongs to.
type Error struct {
	Kind error
	Msg  string
}

// Error returns the text as zinit sends it.
func (e *Error) Error() string { return e.Msg }

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Kind }

// Constructors for the server's errors, with the original zinit's texts.

// UnknownService is the error for a name zinit does not manage.
func UnknownService(name string) *Error {
	return &Error{ErrUnknownService, "unknown service name " + name}
}

// AlreadyMonitored is the error of monitor for a managed service.
func AlreadyMonitored(name string) *Error {
	return &Error{ErrAlreadyMonitored, "service " + name + " already monitored"}
}

// NotRunning is the error of kill for a service without a process.
func NotRunning() *Error { return &Error{ErrNotRunning, "service is not running"} }

// TargetNotDown is the error of forget for a service whose target is up.
func TargetNotDown() *Error {
	return &Error{ErrTargetNotDown, "service target must be set to `Down`"}
}

// ServiceRunning is the error of forget for a service with a live process.
func ServiceRunning() *Error { return &Error{ErrServiceRunning, "service is running"} }

// UnknownCommand is the error for a command zinit does not know.
func UnknownCommand() *Error { return &Error{ErrUnknownCommand, "unknown command"} }

// InvalidCommand is the error for a request that cannot be split into words.
func InvalidCommand() *Error { return &Error{ErrInvalidCommand, "invalid command"} }

// InvalidArguments is the error for a wrong number of arguments.
func InvalidArguments(cmd string, want string) *Error {
	return &Error{ErrInvalidArguments, fmt.Sprintf("invalid arguments: %s expects %s", cmd, want)}
}

// RequestTooLong is the error for a request line over MaxRequestBytes.
func RequestTooLong() *Error {
	return &Error{ErrRequestTooLong, fmt.Sprintf("request too long: over %d bytes", MaxRequestBytes)}
}

// InvalidService is the error for a service file that cannot be used.
func InvalidService(name string, err error) *Error {
	return &Error{ErrInvalidService, fmt.Sprintf("invalid service %s: %s", name, oneLine(err.Error()))}
}

// InvalidSignal is the error for a signal name zinit does not know.
func InvalidSignal(sig string) *Error { return &Error{ErrInvalidSignal, "invalid signal " + sig} }

// ShuttingDown is the error for requests that arrive during shutdown.
func ShuttingDown() *Error { return &Error{ErrShuttingDown, "zinit is shutting down"} }

// NotSupported is the error for an operation this zinit cannot do.
func NotSupported(what string) *Error { return &Error{ErrNotSupported, "not supported: " + what} }

var errorForms = []struct {
	prefix, suffix string
	kind           error
}{
	{"unknown service name ", "", ErrUnknownService},
	{"service ", " already monitored", ErrAlreadyMonitored},
	{"service is not running", "", ErrNotRunning},
	{"service target must be set to", "", ErrTargetNotDown},
	{"service is running", "", ErrServiceRunning},
	{"unknown command", "", ErrUnknownCommand},
	{"invalid command", "", ErrInvalidCommand},
	{"invalid arguments", "", ErrInvalidArguments},
	{"request too long", "", ErrRequestTooLong},
	{"invalid service ", "", ErrInvalidService},
	{"invalid signal", "", ErrInvalidSignal},
	{"zinit is shutting down", "", ErrShuttingDown},
	{"not supported", "", ErrNotSupported},
}

// ParseError turns an error text received from a server into an *Error
// wrapping the matching sentinel, or ErrRemote.
func ParseError(msg string) *Error {
	for _, f := range errorForms {
		if strings.HasPrefix(msg, f.prefix) && strings.HasSuffix(msg, f.suffix) && len(msg) >= len(f.prefix)+len(f.suffix) {
			return &Error{f.kind, msg}
		}
	}
	return &Error{ErrRemote, msg}
}

// AsError returns err as a wire error; errors of other types become ErrRemote
// with their text.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{ErrRemote, oneLine(err.Error())}
}

func oneLine(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r", " "), "\n", " ")
}

// ReadRequest reads one request line (without its newline). A line longer
// than max is consumed to its end and reported as ErrRequestTooLong, so the
// connection stays usable. At end of input it returns io.EOF; a last line
// without a newline is still returned.
func ReadRequest(r *bufio.Reader, max int) (string, error) {
	var line []byte
	tooLong := false
	for {
		chunk, err := r.ReadSlice('\n')
		if !tooLong {
			line = append(line, chunk...)
			if len(line) > max+2 { // +2: room for \r\n
				tooLong = true
				line = nil
			}
		}
		switch {
		case err == nil:
			l := strings.TrimRight(string(line), "\r\n")
			if tooLong || len(l) > max {
				return "", RequestTooLong()
			}
			return l, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0 && !tooLong:
			l := strings.TrimRight(string(line), "\r\n")
			if len(l) > max {
				return "", RequestTooLong()
			}
			return l, nil
		default:
			if tooLong {
				return "", RequestTooLong()
			}
			return "", err
		}
	}
}

// Request is a parsed request: the command and its arguments.
type Request struct {
	Cmd  string
	Args []string
}

// ParseRequest splits a request line. An empty line gives an empty Cmd.
func ParseRequest(line string) (Request, error) {
	words, err := Split(line)
	if err != nil {
		return Request{}, InvalidCommand()
	}
	if len(words) == 0 {
		return Request{}, nil
	}
	return Request{Cmd: words[0], Args: words[1:]}, nil
}

// String formats the request as a line (without newline) that ParseRequest
// reads back.
func (r Request) String() string {
	return Join(append([]string{r.Cmd}, r.Args...))
}

// WriteResponse writes a line-protocol response. A nil err gives status ok
// with body (split into lines); a non-nil err gives status error with its
// text as the one body line.
func WriteResponse(w io.Writer, body string, err error) error {
	var b strings.Builder
	var lines []string
	if err != nil {
		b.WriteString("status: error\n")
		lines = []string{AsError(err).Msg}
	} else {
		b.WriteString("status: ok\n")
		if body != "" {
			lines = strings.Split(strings.TrimSuffix(body, "\n"), "\n")
		}
	}
	fmt.Fprintf(&b, "lines: %d\n\n", len(lines))
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	_, werr := io.WriteString(w, b.String())
	return werr
}

// Response is a line-protocol response.
type Response struct {
	OK    bool
	Lines []string
}

// Body returns the body lines joined, each ending with a newline.
func (r Response) Body() string {
	if len(r.Lines) == 0 {
		return ""
	}
	return strings.Join(r.Lines, "\n") + "\n"
}

// Err returns nil for an ok response and the parsed error otherwise.
func (r Response) Err() error {
	if r.OK {
		return nil
	}
	return ParseError(strings.Join(r.Lines, " "))
}

func readLine(r *bufio.Reader) (string, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxResponseLineBytes {
			return "", fmt.Errorf("response line over %d bytes: %w", MaxResponseLineBytes, ErrProtocol)
		}
		if err == nil {
			return strings.TrimRight(string(line), "\r\n"), nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) && len(line) > 0 {
			return "", fmt.Errorf("truncated response: %w", io.ErrUnexpectedEOF)
		}
		return "", err
	}
}

// ReadResponse reads one line-protocol response. Unknown header keys are
// ignored; status and lines are required.
func ReadResponse(r *bufio.Reader) (Response, error) {
	var (
		resp           Response
		haveStatus     bool
		nlines         = -1
		sawFirstHeader bool
	)
	for {
		line, err := readLine(r)
		if err != nil {
			if sawFirstHeader && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Response{}, err
		}
		sawFirstHeader = true
		if line == "" {
			break
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			return Response{}, fmt.Errorf("header %q: %w", line, ErrProtocol)
		}
		value = strings.TrimSpace(value)
		switch strings.TrimSpace(key) {
		case "status":
			switch value {
			case "ok":
				resp.OK = true
			case "error":
				resp.OK = false
			default:
				return Response{}, fmt.Errorf("status %q: %w", value, ErrProtocol)
			}
			haveStatus = true
		case "lines":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 || n > MaxResponseLines {
				return Response{}, fmt.Errorf("lines %q: %w", value, ErrProtocol)
			}
			nlines = n
		}
	}
	if !haveStatus || nlines < 0 {
		return Response{}, fmt.Errorf("missing status or lines header: %w", ErrProtocol)
	}
	for range nlines {
		line, err := readLine(r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Response{}, err
		}
		resp.Lines = append(resp.Lines, line)
	}
	return resp, nil
}
