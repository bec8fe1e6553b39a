// Package qmp is a small client of the QEMU Machine Protocol: JSON objects
// over a unix socket, one request at a time. It does what the VM module
// needs (greeting, capability negotiation, commands with typed results,
// asynchronous events skipped) with context deadlines on every exchange.
package qmp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// maxMessage bounds one QMP message; QEMU's answers to our queries are far
// smaller.
const maxMessage = 1 << 20

// ErrProtocol reports bytes that are not QMP.
var ErrProtocol = errors.New("qmp protocol error")

// Error is an error answer of QEMU to a command.
type Error struct {
	Command string
	Class   string
	Desc    string
}

// Error returns "qmp <command>: <class>: <desc>".
func (e *Error) Error() string {
	return fmt.Sprintf("qmp %s: %s: %s", e.Command, e.Class, e.Desc)
}

// Greeting is the banner QEMU sends on connect.
type Greeting struct {
	Version struct {
		QEMU struct {
			Major int `json:"major"`
			Minor int `json:"minor"`
			Micro int `json:"micro"`
		} `json:"qemu"`
		Package string `json:"package"`
	} `json:"version"`
	Capabilities []string `json:"capabilities"`
}

// message is any QMP message: a greeting, a return, an error or an event.
type message struct {
	QMP    *Greeting       `json:"QMP"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string `json:"event"`
}

// Conn is one QMP session. It is safe for concurrent use: commands are
// serialised.
type Conn struct {
	mu       sync.Mutex
	c        net.Conn
	r        *bufio.Reader
	greeting Greeting
}

// Dial connects to the QMP unix socket at path and negotiates
// capabilities. ctx bounds the whole handshake.
func Dial(ctx context.Context, path string) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("qmp %s: %w", path, err)
	}
	c, err := NewConn(ctx, nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("qmp %s: %w", path, err)
	}
	return c, nil
}

// NewConn runs the handshake on an open connection: read the greeting, send
// qmp_capabilities.
func NewConn(ctx context.Context, nc net.Conn) (*Conn, error) {
	c := &Conn{c: nc, r: bufio.NewReaderSize(nc, 4096)}
	stop := c.deadline(ctx)
	defer stop()
	m, err := c.read()
	if err != nil {
		return nil, err
	}
	if m.QMP == nil {
		return nil, fmt.Errorf("no greeting: %w", ErrProtocol)
	}
	c.greeting = *m.QMP
	if err := c.executeLocked("qmp_capabilities", nil, nil); err != nil {
		return nil, err
	}
	return c, nil
}

// Greeting returns what QEMU announced.
func (c *Conn) Greeting() Greeting { return c.greeting }

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// Execute runs command with args (nil for none) and decodes its return
// value into out (nil to ignore it). Events received meanwhile are
// dropped. A QEMU error is an *Error.
func (c *Conn) Execute(ctx context.Context, command string, args, out any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	stop := c.deadline(ctx)
	defer stop()
	return c.executeLocked(command, args, out)
}

// deadline applies ctx's deadline to the connection and closes it when ctx
// is canceled; the returned func undoes that.
func (c *Conn) deadline(ctx context.Context) func() {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.c.SetDeadline(dl)
	} else {
		_ = c.c.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { _ = c.c.SetDeadline(time.Unix(1, 0)) })
	return func() { stop() }
}

func (c *Conn) executeLocked(command string, args, out any) error {
	req := struct {
		Execute   string `json:"execute"`
		Arguments any    `json:"arguments,omitempty"`
	}{command, args}
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("qmp %s: %w", command, err)
	}
	if _, err := c.c.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("qmp %s: %w", command, err)
	}
	for {
		m, err := c.read()
		if err != nil {
			return fmt.Errorf("qmp %s: %w", command, err)
		}
		switch {
		case m.Error != nil:
			return &Error{Command: command, Class: m.Error.Class, Desc: m.Error.Desc}
		case m.Return != nil:
			if out == nil {
				return nil
			}
			if err := json.Unmarshal(m.Return, out); err != nil {
				return fmt.Errorf("qmp %s: return value: %w: %w", command, err, ErrProtocol)
			}
			return nil
		case m.Event != "":
			continue
		default:
			return fmt.Errorf("qmp %s: unexpected message: %w", command, ErrProtocol)
		}
	}
}

// read reads one message (one line of JSON).
func (c *Conn) read() (message, error) {
	line, err := readLine(c.r)
	if err != nil {
		return message{}, err
	}
	return parse(line)
}

func readLine(r *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := r.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > maxMessage {
			return nil, fmt.Errorf("message over %d bytes: %w", maxMessage, ErrProtocol)
		}
		switch {
		case err == nil:
			return buf, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(buf) > 0:
			return nil, fmt.Errorf("truncated message: %w", io.ErrUnexpectedEOF)
		default:
			return nil, err
		}
	}
}

// parse decodes one QMP message.
func parse(line []byte) (message, error) {
	var m message
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' {
		return m, fmt.Errorf("not a json object: %w", ErrProtocol)
	}
	if err := json.Unmarshal(line, &m); err != nil {
		return m, fmt.Errorf("%w: %w", err, ErrProtocol)
	}
	if m.Return != nil && bytes.Equal(m.Return, []byte("null")) {
		m.Return = nil
	}
	return m, nil
}
