package zinit

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
)

// LogLine is one line of zinit's log: "[+] <service>: <text>" for a
// service's stdout, "[-] ..." for its stderr; other lines (zinit's own) have
// no Service.
type LogLine struct {
	Service string
	Stderr  bool
	Text    string
	// Raw is the line as zinit sent it.
	Raw string
}

// ParseLogLine splits a log line.
func ParseLogLine(raw string) LogLine {
	l := LogLine{Raw: raw, Text: raw}
	var rest string
	switch {
	case strings.HasPrefix(raw, "[+] "):
		rest = raw[4:]
	case strings.HasPrefix(raw, "[-] "):
		rest, l.Stderr = raw[4:], true
	default:
		return l
	}
	name, text, ok := strings.Cut(rest, ": ")
	if !ok {
		return l
	}
	l.Service, l.Text = name, text
	return l
}

// Logs streams zinit's log: first the lines in its ring buffer, then new
// lines as they come, calling fn for each until ctx ends (nil is returned)
// or fn returns an error (returned). An empty service means every line;
// otherwise only lines of that service (and of its test, "<service>/test").
func (c *Client) Logs(ctx context.Context, service string, fn func(LogLine) error) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.logSocket)
	if err != nil {
		return fmt.Errorf("zinit log %s: %w", c.logSocket, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := ParseLogLine(sc.Text())
		if service != "" && l.Service != service && l.Service != service+"/test" {
			continue
		}
		if err := fn(l); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("zinit log %s: %w", c.logSocket, err)
	}
	return nil
}

// LogSnapshot returns the lines currently in zinit's ring buffer, of one
// service (and its test) or of all when service is empty.
func (c *Client) LogSnapshot(ctx context.Context, service string) ([]LogLine, error) {
	lines, err := c.ctxDo(ctx, "log")
	if err != nil {
		return nil, err
	}
	var out []LogLine
	for _, raw := range lines {
		l := ParseLogLine(raw)
		if service == "" || l.Service == service || l.Service == service+"/test" {
			out = append(out, l)
		}
	}
	return out, nil
}
