package server

import (
	"errors"
	"strconv"

	"github.com/zos-go/zos/internal/zdb/engine"
	"github.com/zos-go/zos/internal/zdb/resp"
)

type handler func(s *Server, c *client, args [][]byte)

type command struct {
	name  string
	fn    handler
	write bool // forwarded to MIRROR clients
	// loop reports whether the command may run on an event loop: it never
	// waits for the disk or for another client there. nil: never; the loop
	// has a goroutine run it.
	loop func(s *Server, c *client, args [][]byte) bool
	// own: the command needs the connection to itself (it writes to it from
	// a goroutine): an event loop hands the connection over for good.
	own bool
}

// Event loop rules (see command.loop). The data commands run there through
// the namespace's NoWait face, which declines (engine.ErrWouldBlock) what
// would wait; the loop then hands the request to a goroutine.
var (
	loopAlways = func(*Server, *client, [][]byte) bool { return true }
	// loopWrite: a write, unless --sync makes every write wait for fsync
	loopWrite = func(s *Server, _ *client, _ [][]byte) bool { return !s.syncWrites }
)

var commands map[string]*command

func init() {
	commands = map[string]*command{}
	for _, cmd := range []*command{
		{name: "PING", fn: cmdPing, loop: loopAlways},
		{name: "TIME", fn: cmdTime, loop: loopAlways},
		{name: "AUTH", fn: cmdAuth, loop: loopAlways},
		{name: "SET", fn: cmdSet, write: true, loop: loopWrite},
		{name: "SETX", fn: cmdSet, write: true, loop: loopWrite},
		{name: "GET", fn: cmdGet, loop: loopAlways},
		{name: "MGET", fn: cmdMGet, loop: loopAlways},
		{name: "DEL", fn: cmdDel, write: true, loop: loopWrite},
		{name: "EXISTS", fn: cmdExists, loop: loopAlways},
		{name: "CHECK", fn: cmdCheck},
		{name: "SCAN", fn: cmdScan},
		{name: "SCANX", fn: cmdScan},
		{name: "RSCAN", fn: cmdRScan},
		{name: "KSCAN", fn: cmdKScan},
		{name: "HISTORY", fn: cmdHistory},
		{name: "KEYCUR", fn: cmdKeyCur},
		{name: "LENGTH", fn: cmdLength, loop: loopAlways},
		{name: "KEYTIME", fn: cmdKeyTime},
		{name: "INFO", fn: cmdInfo, loop: loopAlways},
		{name: "STOP", fn: cmdStop, loop: loopAlways},
		{name: "DBSIZE", fn: cmdDBSize},
		{name: "NSNEW", fn: cmdNSNew},
		{name: "NSDEL", fn: cmdNSDel},
		{name: "NSLIST", fn: cmdNSList},
		{name: "NSSET", fn: cmdNSSet},
		{name: "NSINFO", fn: cmdNSInfo},
		{name: "NSJUMP", fn: cmdNSJump},
		{name: "SELECT", fn: cmdSelect},
		{name: "RELOAD", fn: cmdReload},
		{name: "FLUSH", fn: cmdFlush, write: true},
		{name: "HOOKS", fn: cmdHooks},
		{name: "INDEX", fn: cmdIndex},
		{name: "DATA", fn: cmdData},
		{name: "WAIT", fn: cmdWait, own: true},
		{name: "MIRROR", fn: cmdMirror, own: true},
		{name: "MASTER", fn: cmdMaster, loop: loopAlways},
	} {
		commands[cmd.name] = cmd
	}
}

// lookup finds a command by name, case-insensitively, without allocating.
func lookup(name []byte) *command {
	if len(name) > 16 {
		return nil
	}
	var up [16]byte
	for i, ch := range name {
		if ch >= 'a' && ch <= 'z' {
			ch -= 'a' - 'A'
		}
		up[i] = ch
	}
	return commands[string(up[:len(name)])]
}

func (s *Server) dispatch(c *client, args [][]byte) {
	s.dispatchOn(c, args, false)
}

// dispatchOn runs one request. On an event loop (loop) it returns ran ==
// false, having changed nothing, when the command must run on a goroutine:
// it may wait, or its data is not in the page cache; own: the connection
// must move to that goroutine for good.
func (s *Server) dispatchOn(c *client, args [][]byte, loop bool) (ran, own bool) {
	if c.ns.Closed() {
		c.out = resp.AppendError(c.out, engine.ErrClosed.Reply())
		c.quit = true
		return true, false
	}
	cmd := lookup(args[0])
	if cmd == nil {
		s.stats.cmdsFailed.Add(1)
		c.out = resp.AppendError(c.out, "Command not supported")
		return true, false
	}
	if loop && (cmd.loop == nil || !cmd.loop(s, c, args)) {
		// a client writing with --sync waits for fsync at every write: it
		// is served best by a goroutine of its own (group commit)
		return false, cmd.own || (cmd.write && s.syncWrites)
	}
	s.stats.cmdsValid.Add(1)
	mark := len(c.out)
	c.cachedOnly = loop
	cmd.fn(s, c, args)
	c.cachedOnly = false
	if c.wouldBlock {
		c.wouldBlock = false
		c.out = c.out[:mark]
		s.stats.cmdsValid.Add(^uint64(0))
		return false, false
	}
	if s.waits.active() {
		s.waits.notify(c.ns, cmd.name, c)
	}
	if cmd.write && s.mirrors.active() {
		s.mirrors.forward(c, args)
	}
	return true, false
}

// declined reports whether an engine call on an event loop declined to wait
// (engine.ErrWouldBlock): the loop then runs the request on a goroutine.
func declined(c *client, err error) bool {
	if err != nil && errors.Is(err, engine.ErrWouldBlock) {
		c.wouldBlock = true
		return true
	}
	return false
}

// replyErr sends the 0-db error line for err.
func (s *Server) replyErr(c *client, err error) {
	if e, ok := errors.AsType[*engine.Error](err); ok {
		c.out = resp.AppendError(c.out, e.Reply())
		if e == engine.ErrClosed {
			c.quit = true
		}
		return
	}
	s.log.Error("command failed", "err", err)
	c.out = resp.AppendError(c.out, "Internal Error")
}

// validate checks the argument count (and, unless nullOK, that no argument
// is empty), as 0-db's command_args_validate.
func validate(c *client, args [][]byte, n int, nullOK bool) bool {
	if len(args) != n {
		c.out = resp.AppendError(c.out, "Unexpected arguments")
		return false
	}
	if !nullOK {
		for _, a := range args {
			if len(a) == 0 {
				c.out = resp.AppendError(c.out, "Invalid argument")
				return false
			}
		}
	}
	return true
}

func (s *Server) requireAdmin(c *client) bool {
	if !c.admin {
		s.stats.unauthorized.Add(1)
		c.out = resp.AppendError(c.out, "Permission denied")
		return false
	}
	return true
}

// keyOK rejects keys longer than 255 bytes with "-Invalid key".
func keyOK(c *client, key []byte) bool {
	if len(key) > engine.MaxKeySize {
		c.out = resp.AppendError(c.out, "Invalid key")
		return false
	}
	return true
}

// parseTimestamp mimics atoll on a SET/DEL timestamp argument.
func parseTimestamp(b []byte) uint32 {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	j := i
	if j < len(b) && (b[j] == '-' || b[j] == '+') {
		j++
	}
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	n, _ := strconv.ParseInt(string(b[i:j]), 10, 64)
	return uint32(n)
}

func cmdSet(s *Server, c *client, args [][]byte) {
	var ts uint32
	if len(args) == 4 {
		if !s.requireAdmin(c) {
			return
		}
		ts = parseTimestamp(args[3])
	} else if !validate(c, args, 3, true) {
		return
	}
	if len(args[1]) > engine.MaxKeySize {
		c.out = resp.AppendError(c.out, "Key too large")
		return
	}
	if !c.writable {
		c.out = resp.AppendError(c.out, "Namespace is in read-only mode")
		return
	}
	var (
		res engine.SetResult
		err error
	)
	if c.cachedOnly { // on an event loop, which commits the batch
		res, err = c.ns.NoWait().SetBatched(args[1], args[2], ts)
	} else {
		res, err = c.ns.Set(args[1], args[2], ts)
	}
	if declined(c, err) {
		return
	}
	if err != nil {
		s.replyErr(c, err)
		return
	}
	if res.Unchanged {
		c.out = resp.AppendNil(c.out)
		return
	}
	start := len(c.out)
	c.out = resp.AppendBulk(c.out, res.Key)
	if res.Batch != 0 {
		c.batched = append(c.batched, batchedReply{ns: c.ns, batch: res.Batch, start: start, end: len(c.out)})
	}
}

func cmdGet(s *Server, c *client, args [][]byte) {
	if !validate(c, args, 2, false) || !keyOK(c, args[1]) {
		return
	}
	s.appendValue(c, args[1])
}

// appendValue appends the bulk value of key (nil when missing). On an event
// loop it only reads the page cache, and flags the client when the value is
// not there.
func (s *Server) appendValue(c *client, key []byte) {
	if c.wouldBlock {
		return
	}
	var (
		out []byte
		ok  bool
		err error
	)
	if c.cachedOnly {
		out, ok, err = c.ns.NoWait().AppendGet(c.out, key, resp.AppendBulkHeader)
	} else {
		out, ok, err = c.ns.AppendGet(c.out, key, resp.AppendBulkHeader)
	}
	switch {
	case declined(c, err):
	case err != nil:
		s.replyErr(c, err)
	case !ok:
		c.out = resp.AppendNil(c.out)
	default:
		c.out = append(out, '\r', '\n')
	}
}

func cmdMGet(s *Server, c *client, args [][]byte) {
	if len(args) < 2 || len(args) > 1024 {
		c.out = resp.AppendError(c.out, "Invalid arguments")
		return
	}
	for _, k := range args[1:] {
		if !keyOK(c, k) {
			return
		}
	}
	var (
		frozen bool
		err    error
	)
	if c.cachedOnly {
		frozen, err = c.ns.NoWait().Frozen()
	} else {
		frozen = c.ns.Frozen()
	}
	if declined(c, err) {
		return
	}
	if frozen {
		s.replyErr(c, engine.ErrFrozen)
		return
	}
	c.out = resp.AppendArray(c.out, len(args)-1)
	for _, k := range args[1:] {
		s.appendValue(c, k)
	}
}

func cmdDel(s *Server, c *client, args [][]byte) {
	var ts uint32
	if len(args) == 3 {
		if !s.requireAdmin(c) {
			return
		}
		ts = parseTimestamp(args[2])
	} else if !validate(c, args, 2, false) {
		return
	}
	if !keyOK(c, args[1]) {
		return
	}
	if !c.writable {
		c.out = resp.AppendError(c.out, "Namespace is in read-only mode")
		return
	}
	var err error
	if c.cachedOnly {
		err = c.ns.NoWait().Del(args[1], ts)
	} else {
		err = c.ns.Del(args[1], ts)
	}
	if declined(c, err) {
		return
	}
	if err != nil {
		s.replyErr(c, err)
		return
	}
	c.out = resp.AppendSimple(c.out, "OK")
}

func cmdExists(s *Server, c *client, args [][]byte) {
	if !validate(c, args, 2, false) || !keyOK(c, args[1]) {
		return
	}
	var (
		ok  bool
		err error
	)
	if c.cachedOnly {
		ok, err = c.ns.NoWait().Exists(args[1])
	} else {
		ok, err = c.ns.Exists(args[1])
	}
	if declined(c, err) {
		return
	}
	if err != nil {
		s.replyErr(c, err)
		return
	}
	c.out = resp.AppendInt(c.out, b2i(ok))
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func cmdCheck(s *Server, c *client, args [][]byte) {
	if !validate(c, args, 2, false) || !keyOK(c, args[1]) {
		return
	}
	valid, found, err := c.ns.Check(args[1])
	switch {
	case err != nil:
		s.replyErr(c, err)
	case !found:
		c.out = resp.AppendNil(c.out)
	default:
		c.out = resp.AppendInt(c.out, b2i(valid))
	}
}

func cmdLength(s *Server, c *client, args [][]byte) {
	if !validate(c, args, 2, false) || !keyOK(c, args[1]) {
		return
	}
	var (
		n     uint32
		found bool
		err   error
	)
	if c.cachedOnly {
		n, found, err = c.ns.NoWait().Length(args[1])
	} else {
		n, found, err = c.ns.Length(args[1])
	}
	switch {
	case declined(c, err):
	case err != nil:
		s.replyErr(c, err)
	case !found:
		c.out = resp.AppendNil(c.out)
	default:
		c.out = resp.AppendInt(c.out, int64(n))
	}
}

func cmdKeyTime(s *Server, c *client, args [][]byte) {
	if !validate(c, args, 2, false) || !keyOK(c, args[1]) {
		return
	}
	ts, found, err := c.ns.KeyTime(args[1])
	switch {
	case err != nil:
		s.replyErr(c, err)
	case !found:
		c.out = resp.AppendNil(c.out)
	default:
		c.out = resp.AppendInt(c.out, int64(ts))
	}
}

func cmdKeyCur(s *Server, c *client, args [][]byte) {
	if !validate(c, args, 2, false) {
		return
	}
	cur, err := c.ns.KeyCursor(args[1])
	if err != nil {
		s.replyErr(c, err)
		return
	}
	c.out = resp.AppendBulk(c.out, cur)
}

func cmdScan(s *Server, c *client, args [][]byte)  { scan(s, c, args, true) }
func cmdRScan(s *Server, c *client, args [][]byte) { scan(s, c, args, false) }

func scan(s *Server, c *client, args [][]byte, forward bool) {
	var cursor []byte
	switch len(args) {
	case 1:
	case 2:
		cursor = args[1]
		if len(cursor) != engine.CursorSize {
			s.replyErr(c, engine.ErrInvalidCursor)
			return
		}
	default:
		c.out = resp.AppendError(c.out, "Invalid arguments")
		return
	}
	res, err := c.ns.Scan(cursor, forward)
	if err != nil {
		s.replyErr(c, err)
		return
	}
	c.out = resp.AppendArray(c.out, 2)
	c.out = resp.AppendBulk(c.out, res.Next)
	c.out = resp.AppendArray(c.out, len(res.Items))
	for _, it := range res.Items {
		c.out = resp.AppendArray(c.out, 3)
		c.out = resp.AppendBulk(c.out, it.Key)
		c.out = resp.AppendInt(c.out, int64(it.Length))
		c.out = resp.AppendInt(c.out, int64(it.Timestamp))
	}
}

func cmdKScan(s *Server, c *client, args [][]byte) {
	if c.ns.Mode() != engine.ModeUser {
		s.replyErr(c, engine.ErrModeNoSupport)
		return
	}
	if !validate(c, args, 2, false) {
		return
	}
	keys, err := c.ns.KScan(args[1])
	if err != nil {
		s.replyErr(c, err)
		return
	}
	c.out = resp.AppendArray(c.out, 2)
	c.out = resp.AppendBulkString(c.out, "0")
	c.out = resp.AppendArray(c.out, len(keys))
	for _, k := range keys {
		c.out = resp.AppendBulk(c.out, k)
	}
}

func cmdHistory(s *Server, c *client, args [][]byte) {
	if len(args) != 2 && len(args) != 3 {
		c.out = resp.AppendError(c.out, "Invalid arguments")
		return
	}
	var ref []byte
	if len(args) == 3 {
		ref = args[2]
		if len(ref) != engine.HistoryRefSize {
			c.out = resp.AppendError(c.out, "Invalid arguments")
			return
		}
	}
	h, err := c.ns.History(args[1], ref)
	if err != nil {
		s.replyErr(c, err)
		return
	}
	c.out = resp.AppendArray(c.out, 3)
	if h.Prev.IsZero() {
		c.out = resp.AppendNil(c.out)
	} else {
		c.out = resp.AppendBulk(c.out, h.Prev.Marshal())
	}
	c.out = resp.AppendBulkString(c.out, strconv.FormatUint(uint64(h.Timestamp), 10))
	c.out = resp.AppendBulk(c.out, h.Payload)
}

func cmdDBSize(_ *Server, c *client, _ [][]byte) {
	c.out = resp.AppendInt(c.out, int64(c.ns.Entries()))
}

// cmdData implements DATA RAW <fileid> <offset> (admin).
func cmdData(s *Server, c *client, args [][]byte) {
	if !s.requireAdmin(c) {
		return
	}
	if len(args) != 4 || !equalFold(args[1], "RAW") {
		c.out = resp.AppendError(c.out, "Invalid arguments")
		return
	}
	fid, err1 := strconv.ParseUint(string(args[2]), 10, 32)
	off, err2 := strconv.ParseUint(string(args[3]), 10, 32)
	if err1 != nil || err2 != nil {
		c.out = resp.AppendError(c.out, "Invalid arguments")
		return
	}
	e, err := c.ns.DataRaw(uint32(fid), uint32(off))
	if err != nil {
		s.replyErr(c, err)
		return
	}
	c.out = resp.AppendArray(c.out, 6)
	c.out = resp.AppendBulk(c.out, e.Key)
	c.out = resp.AppendInt(c.out, int64(e.Previous))
	c.out = resp.AppendInt(c.out, int64(e.CRC))
	c.out = resp.AppendInt(c.out, int64(e.Flags))
	c.out = resp.AppendInt(c.out, int64(e.Timestamp))
	c.out = resp.AppendBulk(c.out, e.Payload)
}

func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i], s[i]
		if x >= 'a' && x <= 'z' {
			x -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
