package server

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"math/bits"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/zos-go/zos/internal/zdb/engine"
	"github.com/zos-go/zos/internal/zdb/resp"
)

// nameArg checks a namespace name argument for length.
func nameArg(c *client, b []byte) (string, bool) {
	if len(b) > engine.MaxNameLength {
		c.out = resp.AppendError(c.out, "Namespace too long")
		return "", false
	}
	return string(b), true
}

func cmdNSNew(s *Server, c *client, args [][]byte) {
	if !s.requireAdmin(c) || !validate(c, args, 2, false) {
		return
	}
	name, ok := nameArg(c, args[1])
	if !ok {
		return
	}
	if _, err := s.eng.Create(name); err != nil {
		if _, ok := err.(*engine.Error); !ok {
			s.log.Error("namespace create failed", "namespace", name, "err", err)
			c.out = resp.AppendError(c.out, "Could not create namespace")
			return
		}
		s.replyErr(c, err)
		return
	}
	c.out = resp.AppendSimple(c.out, "OK")
}

func cmdNSDel(s *Server, c *client, args [][]byte) {
	if !s.requireAdmin(c) || !validate(c, args, 2, false) {
		return
	}
	name, ok := nameArg(c, args[1])
	if !ok {
		return
	}
	if name == engine.DefaultNamespace {
		s.replyErr(c, engine.ErrDefaultDelete)
		return
	}
	ns, err := s.eng.Namespace(name)
	if err != nil {
		c.out = resp.AppendError(c.out, "This namespace doesn't exists")
		return
	}
	if ns == c.ns {
		c.out = resp.AppendError(c.out, "Cannot remove namespace you're currently using.")
		return
	}
	if err := s.eng.Delete(name); err != nil {
		s.log.Error("namespace delete failed", "namespace", name, "err", err)
		c.out = resp.AppendError(c.out, "Could not delete this namespace")
		return
	}
	c.out = resp.AppendSimple(c.out, "OK")
}

func cmdNSList(s *Server, c *client, _ [][]byte) {
	names := s.eng.List()
	c.out = resp.AppendArray(c.out, len(names))
	for _, n := range names {
		c.out = resp.AppendBulkString(c.out, n)
	}
}

func cmdNSSet(s *Server, c *client, args [][]byte) {
	if !s.requireAdmin(c) || !validate(c, args, 4, false) {
		return
	}
	name, ok := nameArg(c, args[1])
	if !ok {
		return
	}
	if len(args[3]) > 63 {
		c.out = resp.AppendError(c.out, "Invalid value")
		return
	}
	if name == engine.DefaultNamespace {
		s.replyErr(c, engine.ErrDefaultUpdate)
		return
	}
	ns, err := s.eng.Namespace(name)
	if err != nil {
		s.replyErr(c, err)
		return
	}
	if err := ns.SetProperty(string(args[2]), string(args[3])); err != nil {
		s.replyErr(c, err)
		return
	}
	c.out = resp.AppendSimple(c.out, "OK")
}

func cmdNSInfo(s *Server, c *client, args [][]byte) {
	if !validate(c, args, 2, false) {
		return
	}
	name, ok := nameArg(c, args[1])
	if !ok {
		return
	}
	ns, err := s.eng.Namespace(name)
	if err != nil {
		s.replyErr(c, err)
		return
	}
	in := ns.Info()
	var b strings.Builder
	yn := func(v bool) string {
		if v {
			return "yes"
		}
		return "no"
	}
	fmt.Fprintf(&b, "# namespace\n")
	fmt.Fprintf(&b, "name: %s\n", in.Name)
	fmt.Fprintf(&b, "entries: %d\n", in.Entries)
	fmt.Fprintf(&b, "public: %s\n", yn(in.Public))
	fmt.Fprintf(&b, "worm: %s\n", yn(in.Worm))
	fmt.Fprintf(&b, "locked: %s\n", yn(in.Locked))
	fmt.Fprintf(&b, "frozen: %s\n", yn(in.Frozen))
	fmt.Fprintf(&b, "password: %s\n", yn(in.Password != ""))
	fmt.Fprintf(&b, "data_size_bytes: %d\n", in.DataSizeBytes)
	fmt.Fprintf(&b, "data_size_mb: %.2f\n", float64(in.DataSizeBytes)/(1024*1024))
	fmt.Fprintf(&b, "data_limits_bytes: %d\n", in.MaxSize)
	fmt.Fprintf(&b, "index_size_bytes: %d\n", in.IndexMemBytes)
	fmt.Fprintf(&b, "index_size_kb: %.2f\n", float64(in.IndexMemBytes)/1024)
	fmt.Fprintf(&b, "next_internal_id: 0x%08x\n", bits.ReverseBytes32(uint32(in.NextID)))
	fmt.Fprintf(&b, "mode: %s\n", in.Mode.Name())
	st := s.eng.Stats()
	fmt.Fprintf(&b, "stats_index_io_errors: %d\n", st.IndexReadFailed.Load()+st.IndexWriteFailed.Load())
	fmt.Fprintf(&b, "stats_index_io_error_last: 0\n")
	fmt.Fprintf(&b, "stats_index_faults: 0\n")
	fmt.Fprintf(&b, "stats_data_io_errors: %d\n", st.DataReadFailed.Load()+st.DataWriteFailed.Load())
	fmt.Fprintf(&b, "stats_data_io_error_last: 0\n")
	fmt.Fprintf(&b, "stats_data_faults: 0\n")
	if in.MaxSize > 0 {
		avail := uint64(0)
		if in.MaxSize > in.DataSizeBytes {
			avail = in.MaxSize - in.DataSizeBytes
		}
		fmt.Fprintf(&b, "space_available: %d\n", avail)
	}
	for _, p := range []struct{ label, path string }{{"index", in.IndexPath}, {"data", in.DataPath}} {
		var st unix.Statfs_t
		if unix.Statfs(p.path, &st) == nil {
			free := uint64(st.Bsize) * st.Bavail
			fmt.Fprintf(&b, "%s_disk_freespace_bytes: %d\n", p.label, free)
			fmt.Fprintf(&b, "%s_disk_freespace_mb: %.2f\n", p.label, float64(free)/(1024*1024))
		}
	}
	if c.admin {
		fmt.Fprintf(&b, "data_path: %s\n", in.DataPath)
		fmt.Fprintf(&b, "index_path: %s\n", in.IndexPath)
	}
	if c.master && in.Password != "" {
		fmt.Fprintf(&b, "password_raw: %s\n", in.Password)
	}
	c.out = resp.AppendBulkString(c.out, b.String())
}

func cmdNSJump(s *Server, c *client, _ [][]byte) {
	if !s.requireAdmin(c) {
		return
	}
	if _, err := c.ns.Jump(); err != nil {
		s.replyErr(c, err)
		return
	}
	c.out = resp.AppendSimple(c.out, "OK")
}

// hashPassword returns hex(sha1("<nonce>:<password>")), 0-db's SECURE proof.
func hashPassword(nonce, password string) string {
	sum := sha1.Sum([]byte(nonce + ":" + password))
	return hex.EncodeToString(sum[:])
}

func passwordEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func cmdSelect(s *Server, c *client, args [][]byte) {
	if len(args) < 2 {
		c.out = resp.AppendError(c.out, "Invalid argument")
		return
	}
	name, ok := nameArg(c, args[1])
	if !ok {
		return
	}
	ns, err := s.eng.Namespace(name)
	if err != nil {
		s.replyErr(c, err)
		return
	}
	d := ns.Descriptor()
	writable := true
	if d.Password != "" {
		switch len(args) {
		case 2:
			if !d.Public {
				c.out = resp.AppendError(c.out, "Namespace protected and private")
				return
			}
			writable = false
		case 3:
			if len(args[2]) > 255 {
				c.out = resp.AppendError(c.out, "Password too long")
				return
			}
			if !passwordEqual(string(args[2]), d.Password) {
				c.out = resp.AppendError(c.out, "Access denied")
				return
			}
		case 4:
			if !equalFold(args[2], "SECURE") {
				c.out = resp.AppendError(c.out, "Only SECURE extra method supported")
				return
			}
			if c.nonce == "" {
				c.out = resp.AppendError(c.out, "No CHALLENGE requested, secure authentication not available")
				return
			}
			if len(args[3]) != 40 {
				c.out = resp.AppendError(c.out, "Invalid hash length")
				return
			}
			if !passwordEqual(strings.ToLower(string(args[3])), hashPassword(c.nonce, d.Password)) {
				c.out = resp.AppendError(c.out, "Access denied")
				return
			}
		default:
			c.out = resp.AppendError(c.out, "Too many arguments")
			return
		}
	}
	c.ns, c.writable = ns, writable
	c.out = resp.AppendSimple(c.out, "OK")
}

func cmdReload(s *Server, c *client, args [][]byte) {
	if !s.requireAdmin(c) || !validate(c, args, 2, false) {
		return
	}
	name, ok := nameArg(c, args[1])
	if !ok {
		return
	}
	if err := s.eng.Reload(name); err != nil {
		s.replyErr(c, err)
		return
	}
	c.out = resp.AppendSimple(c.out, "OK")
}

func cmdFlush(s *Server, c *client, _ [][]byte) {
	d := c.ns.Descriptor()
	if d.Public || d.Password == "" {
		c.out = resp.AppendError(c.out, "Flushing public namespace denied")
		return
	}
	if !c.writable {
		c.out = resp.AppendError(c.out, "Namespace is in read-only mode")
		return
	}
	if err := s.eng.Flush(c.ns); err != nil {
		s.log.Error("flush failed", "namespace", c.ns.Name(), "err", err)
		c.out = resp.AppendError(c.out, "Internal Server Error")
		return
	}
	c.out = resp.AppendSimple(c.out, "OK")
}

// cmdIndex implements INDEX DIRTY [RESET].
func cmdIndex(s *Server, c *client, args [][]byte) {
	if !s.requireAdmin(c) {
		return
	}
	if len(args) < 2 || len(args) > 3 || !equalFold(args[1], "DIRTY") || (len(args) == 3 && !equalFold(args[2], "RESET")) {
		c.out = resp.AppendError(c.out, "Invalid arguments")
		return
	}
	ids := c.ns.DirtyIndexes(len(args) == 3)
	c.out = resp.AppendArray(c.out, len(ids))
	for _, id := range ids {
		c.out = resp.AppendInt(c.out, int64(id))
	}
}
