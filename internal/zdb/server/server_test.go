package server_test

import (
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/zdb/zdbtest"
)

// TestUserModeCommands runs the data commands and their error paths against
// a real server, over TCP and over the unix socket.
func TestUserModeCommands(t *testing.T) {
	srv := zdbtest.Start(t, zdbtest.Options{Mode: "user"})
	for _, name := range []string{"tcp", "unix"} {
		t.Run(name, func(t *testing.T) {
			c := dialTCP(t, srv)
			if name == "unix" {
				c = dialUnix(t, srv)
			}
			k := "key-" + name
			c.expect(pong, "PING")
			c.expect(pong, "ping")
			c.expect(null, "GET", k)
			c.expect(zero, "EXISTS", k)
			c.expect(bulk(k), "SET", k, "hello")
			c.expect(null, "SET", k, "hello") // unchanged value
			c.expect(bulk("hello"), "GET", k)
			c.expect(one, "EXISTS", k)
			c.expect(one, "CHECK", k)
			c.expect(":5\r\n", "LENGTH", k)
			c.expect(bulk(k), "SET", k, "world!")
			c.expect(bulk("world!"), "GET", k)
			c.expect(":6\r\n", "LENGTH", k)
			if got := c.do("KEYTIME", k); !strings.HasPrefix(got, ":") || got == zero {
				t.Fatalf("KEYTIME = %q", got)
			}
			c.expect("*3\r\n"+bulk("world!")+null+null, "MGET", k, "missing", k+"x")
			c.expect(ok, "DEL", k)
			c.expect(null, "GET", k)
			c.expect(zero, "EXISTS", k)
			c.expect(null, "LENGTH", k)
			c.expect(null, "CHECK", k)
			c.expect(errReply("Key not found"), "DEL", k)
			c.expect(errReply("Key not found"), "KEYCUR", k)
			c.expect(bulk("empty-"+name), "SET", "empty-"+name, "")
			c.expect(bulk(""), "GET", "empty-"+name)

			// argument errors
			c.expect(errReply("Unexpected arguments"), "GET")
			c.expect(errReply("Unexpected arguments"), "SET", k)
			c.expect(errReply("Invalid argument"), "GET", "")
			c.expect(errReply("Invalid argument, key needed"), "SET", "", "v")
			c.expect(errReply("Key too large"), "SET", strings.Repeat("k", 256), "v")
			c.expect(errReply("Invalid key"), "GET", strings.Repeat("k", 256))
			c.expect(errReply("Invalid arguments"), "MGET")
			c.expect(errReply("Invalid arguments"), "HISTORY")

			// unknown commands and modern-client handshakes keep the connection
			c.expect(notSp, "HELLO", "3")
			c.expect(notSp, "CLIENT", "SETINFO", "lib-name", "x")
			c.expect(notSp, "COMMAND")
			c.expect(notSp, "FOOBAR")
			c.expect(pong, "PING")
		})
	}
	c := dialTCP(t, srv)
	c.expect(":2\r\n", "DBSIZE") // the two empty-value keys
	if got := c.do("TIME"); !strings.HasPrefix(got, "*2\r\n$") {
		t.Fatalf("TIME = %q", got)
	}
	info := bulkValue(t, c.do("INFO"))
	for _, f := range []string{"# server", "server_name: 0-db (zdb)", "instance_id: ", "uptime: ", "# clients", "# stats", "commands_executed: ", "data_disk_write_bytes: "} {
		if !strings.Contains(info, f) {
			t.Fatalf("INFO lacks %q:\n%s", f, info)
		}
	}
}

// TestHistoryScanCursor checks HISTORY, KEYCUR, SCAN, RSCAN and KSCAN.
func TestHistoryScanCursor(t *testing.T) {
	srv := zdbtest.Start(t, zdbtest.Options{Mode: "user"})
	c := dialTCP(t, srv)
	c.expect(errReply("No more data"), "SCAN")
	c.expect(errReply("No more data"), "RSCAN")
	c.expect(bulk("a"), "SET", "a", "v1")
	c.expect(bulk("b"), "SET", "b", "x")
	c.expect(bulk("a"), "SET", "a", "v2")
	c.expect(bulk("c"), "SET", "c", "yy")
	c.expect(ok, "DEL", "b")

	h := arrayItems(t, c.do("HISTORY", "a"))
	if len(h) != 3 || h[2] != bulk("v2") || h[0] == null {
		t.Fatalf("HISTORY a = %q", h)
	}
	ref := bulkValue(t, h[0])
	h = arrayItems(t, c.do("HISTORY", "a", ref))
	if h[2] != bulk("v1") || h[0] != null {
		t.Fatalf("HISTORY a <ref> = %q", h)
	}
	c.expect(errReply("No more history"), "HISTORY", "a", string(make([]byte, 8)))
	c.expect(errReply("Invalid arguments (invalid key)"), "HISTORY", "c", ref)
	c.expect(errReply("Invalid arguments"), "HISTORY", "a", "short")

	// SCAN walks the live keys in write order: a (v2) then c
	page := arrayItems(t, c.do("SCAN"))
	items := arrayItems(t, page[1])
	if len(items) != 2 || !strings.Contains(items[0], bulk("a")+":2\r\n") || !strings.Contains(items[1], bulk("c")+":2\r\n") {
		t.Fatalf("SCAN = %q", items)
	}
	c.expect(errReply("No more data"), "SCAN", bulkValue(t, page[0]))
	cur := bulkValue(t, c.do("KEYCUR", "a"))
	if len(cur) != 17 {
		t.Fatalf("KEYCUR length %d", len(cur))
	}
	page = arrayItems(t, c.do("SCAN", cur))
	if items := arrayItems(t, page[1]); len(items) != 1 || !strings.Contains(items[0], bulk("c")) {
		t.Fatalf("SCAN from a = %q", items)
	}
	page = arrayItems(t, c.do("RSCAN"))
	if items := arrayItems(t, page[1]); len(items) != 2 || !strings.Contains(items[0], bulk("c")) {
		t.Fatalf("RSCAN = %q", items)
	}
	c.expect(errReply("Invalid key format"), "SCAN", "bad")
	forged := []byte(cur)
	forged[13] ^= 0xff // crc
	c.expect(errReply("Invalid key format"), "SCAN", string(forged))
	c.expect("*2\r\n$1\r\n0\r\n*1\r\n"+bulk("a"), "KSCAN", "a")
	c.expect(errReply("No keys match"), "KSCAN", "zz")

	raw := arrayItems(t, c.do("DATA", "RAW", "0", "28"))
	if len(raw) != 6 || raw[0] != bulk("a") || raw[5] != bulk("v1") {
		t.Fatalf("DATA RAW = %q", raw)
	}
	c.expect("*1\r\n:0\r\n", "INDEX", "DIRTY")
}

// TestSeqMode checks sequential ids, updates and deletes.
func TestSeqMode(t *testing.T) {
	srv := zdbtest.Start(t, zdbtest.Options{Mode: "seq"})
	c := dialUnix(t, srv)
	id := func(n uint64) string {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint64(b, n)
		return string(b)
	}
	c.expect(bulk(id(0)), "SET", "", "first")
	c.expect(bulk(id(1)), "SET", "", "second")
	c.expect(bulk("first"), "GET", id(0))
	c.expect(errReply("Invalid key, only update authorized"), "SET", id(9), "x")
	c.expect(errReply("Invalid key, only update authorized"), "SET", "abc", "x")
	c.expect(bulk(id(0)), "SET", id(0), "updated")
	c.expect(bulk("updated"), "GET", id(0))
	c.expect(null, "SET", id(0), "updated")
	// the update appended a history copy: the next id skips its position
	c.expect(bulk(id(3)), "SET", "", "third")
	c.expect(bulk("third"), "GET", id(3))
	c.expect(null, "GET", id(2))
	h := arrayItems(t, c.do("HISTORY", id(0)))
	if h[2] != bulk("updated") {
		t.Fatalf("HISTORY = %q", h)
	}
	if h2 := arrayItems(t, c.do("HISTORY", id(0), bulkValue(t, h[0]))); h2[2] != bulk("first") {
		t.Fatalf("HISTORY prev = %q", h2)
	}
	c.expect(ok, "DEL", id(1))
	c.expect(null, "GET", id(1))
	c.expect(":2\r\n", "DBSIZE")
	c.expect(errReply("Index running mode doesn't support this feature"), "KSCAN", "a")
	if info := bulkValue(t, c.do("NSINFO", "default")); !strings.Contains(info, "mode: sequential") {
		t.Fatalf("NSINFO: %s", info)
	}
	srv.Restart(t)
	c = dialTCP(t, srv)
	c.expect(bulk("updated"), "GET", id(0))
	c.expect(null, "GET", id(1))
	c.expect(bulk("third"), "GET", id(3))
	c.expect(bulk(id(4)), "SET", "", "fourth")
	c.expect(":3\r\n", "DBSIZE")
}

// TestNamespaces checks NSNEW, NSSET properties, SELECT and NSDEL.
func TestNamespaces(t *testing.T) {
	srv := zdbtest.Start(t, zdbtest.Options{Mode: "user"})
	a, b := dialTCP(t, srv), dialUnix(t, srv)
	a.expect(ok, "NSNEW", "ns1")
	a.expect(errReply("This namespace is not available"), "NSNEW", "ns1")
	a.expect(errReply("Namespace too long"), "NSNEW", strings.Repeat("n", 129))
	a.expect(errReply("This name is not allowed"), "NSNEW", "a/b")
	a.expect("*2\r\n"+bulk("default")+bulk("ns1"), "NSLIST")
	a.expect(errReply("Namespace not found"), "NSINFO", "nope")
	a.expect(errReply("Namespace not found"), "SELECT", "nope")
	a.expect(errReply("Cannot update default namespace"), "NSSET", "default", "maxsize", "10")
	a.expect(errReply("Invalid property"), "NSSET", "ns1", "color", "blue")
	a.expect(errReply("Namespace not found"), "NSSET", "nope", "maxsize", "1")

	// maxsize: writes beyond the limit fail, overwrites may reuse space
	a.expect(ok, "NSSET", "ns1", "maxsize", "10")
	a.expect(ok, "SELECT", "ns1")
	a.expect(bulk("k"), "SET", "k", "12345678")
	a.expect(errReply("No space left on this namespace"), "SET", "k2", "123")
	a.expect(bulk("k"), "SET", "k", "1234567890")
	a.expect(ok, "NSSET", "ns1", "maxsize", "0")

	// password and public: read-only without password, denied when private
	a.expect(ok, "NSSET", "ns1", "password", "secret")
	b.expect(ok, "SELECT", "ns1")
	b.expect(bulk("1234567890"), "GET", "k")
	b.expect(errReply("Namespace is in read-only mode"), "SET", "k", "x")
	b.expect(errReply("Namespace is in read-only mode"), "DEL", "k")
	b.expect(errReply("Access denied"), "SELECT", "ns1", "wrong")
	b.expect(ok, "SELECT", "ns1", "secret")
	b.expect(bulk("k"), "SET", "k", "x")
	a.expect(ok, "NSSET", "ns1", "public", "0")
	b.expect(errReply("Namespace protected and private"), "SELECT", "ns1")
	b.expect(errReply("No CHALLENGE requested, secure authentication not available"), "SELECT", "ns1", "SECURE", strings.Repeat("0", 40))
	a.expect(errReply("Authentication disabled"), "AUTH", "x")

	// worm: no overwrite, no delete, new keys fine
	a.expect(ok, "NSSET", "ns1", "worm", "1")
	a.expect(errReply("Namespace is protected by worm mode"), "SET", "k", "other")
	a.expect(errReply("Cannot delete a key when namespace is in worm mode"), "DEL", "k")
	a.expect(bulk("new"), "SET", "new", "v")
	a.expect(ok, "NSSET", "ns1", "worm", "0")

	// lock: read-only; freeze: nothing
	a.expect(ok, "NSSET", "ns1", "lock", "1")
	a.expect(errReply("Namespace is temporarily locked (read-only)"), "SET", "k", "y")
	a.expect(bulk("x"), "GET", "k")
	a.expect(ok, "NSSET", "ns1", "lock", "0")
	a.expect(ok, "NSSET", "ns1", "freeze", "1")
	a.expect(errReply("Namespace is temporarily frozen (read-write disabled)"), "GET", "k")
	a.expect(ok, "NSSET", "ns1", "freeze", "0")
	a.expect(errReply("This server instance is configured to use a single runtime mode"), "NSSET", "ns1", "mode", "seq")

	info := bulkValue(t, a.do("NSINFO", "ns1"))
	for _, f := range []string{"name: ns1", "entries: 2", "public: no", "password: yes", "mode: userkey", "data_limits_bytes: 0"} {
		if !strings.Contains(info, f+"\n") {
			t.Fatalf("NSINFO lacks %q:\n%s", f, info)
		}
	}

	// FLUSH: private password-protected namespace only
	a.expect(ok, "FLUSH")
	a.expect(null, "GET", "k")
	a.expect(":0\r\n", "DBSIZE")

	// NSDEL: not the current one; clients left in it are told and dropped
	a.expect(errReply("Cannot remove namespace you're currently using."), "NSDEL", "ns1")
	a.expect(errReply("Cannot remove default namespace"), "NSDEL", "default")
	c := dialTCP(t, srv)
	c.expect(ok, "NSDEL", "ns1")
	a.expect(errReply("Your active namespace is not available anymore (probably removed)."), "PING")
	c.expect(errReply("This namespace doesn't exists"), "NSDEL", "ns1")
	c.expect("*1\r\n"+bulk("default"), "NSLIST")
}

// TestMixedMode: without --mode each namespace picks its mode while empty.
func TestMixedMode(t *testing.T) {
	srv := zdbtest.Start(t, zdbtest.Options{})
	c := dialTCP(t, srv)
	c.expect(ok, "NSNEW", "s")
	c.expect(ok, "NSSET", "s", "mode", "seq")
	c.expect(errReply("Invalid property value (expected: user, seq)"), "NSSET", "s", "mode", "direct")
	c.expect(ok, "SELECT", "s")
	c.expect(bulk(string(make([]byte, 8))), "SET", "", "v")
	c.expect(errReply("Cannot change mode of used namespace"), "NSSET", "s", "mode", "user")
	srv.Restart(t)
	c = dialTCP(t, srv)
	if info := bulkValue(t, c.do("NSINFO", "s")); !strings.Contains(info, "mode: sequential") {
		t.Fatalf("mode lost on restart: %s", info)
	}
}

// TestAdmin checks the admin password, AUTH SECURE and --protect.
func TestAdmin(t *testing.T) {
	srv := zdbtest.Start(t, zdbtest.Options{Mode: "user", Admin: "adm", Protect: true})
	c := dialTCP(t, srv)
	c.expect(errReply("Permission denied"), "NSNEW", "x")
	c.expect(errReply("Namespace is in read-only mode"), "SET", "k", "v")
	c.expect(errReply("Permission denied"), "SET", "k", "v", "1234")
	c.expect(errReply("Access denied"), "AUTH", "bad")
	nonce := strings.TrimSuffix(strings.TrimPrefix(c.do("AUTH", "SECURE", "CHALLENGE"), "+"), "\r\n")
	if len(nonce) != 16 {
		t.Fatalf("challenge %q", nonce)
	}
	sum := sha1.Sum([]byte(nonce + ":adm"))
	c.expect(ok, "AUTH", "SECURE", hex.EncodeToString(sum[:]))
	c.expect(ok, "NSNEW", "x")
	c.expect(errReply("Namespace is in read-only mode"), "SET", "k", "v")
	c.expect(ok, "SELECT", "default", "adm")
	c.expect(bulk("k"), "SET", "k", "v", "1234")
	c.expect(":1234\r\n", "KEYTIME", "k")

	d := dialUnix(t, srv)
	d.expect(ok, "AUTH", "adm")
	d.expect(ok, "NSSET", "x", "password", "pw")
	nonce = strings.TrimSuffix(strings.TrimPrefix(d.do("AUTH", "SECURE", "CHALLENGE"), "+"), "\r\n")
	sum = sha1.Sum([]byte(nonce + ":pw"))
	d.expect(errReply("Access denied"), "SELECT", "x", "SECURE", strings.Repeat("0", 40))
	d.expect(ok, "SELECT", "x", "SECURE", hex.EncodeToString(sum[:]))
	d.expect(bulk("in-x"), "SET", "in-x", "1")
}

// TestRedisClients: go-redis (which opens with HELLO and CLIENT SETINFO)
// and redis-cli work against the server.
func TestRedisClients(t *testing.T) {
	srv := zdbtest.Start(t, zdbtest.Options{Mode: "user"})
	ctx := context.Background()
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(srv.Port)})
	defer rc.Close()
	if err := rc.Set(ctx, "gk", "gv", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := rc.Get(ctx, "gk").Result(); err != nil || v != "gv" {
		t.Fatalf("go-redis GET = %q, %v", v, err)
	}
	if err := rc.Get(ctx, "missing").Err(); err != redis.Nil {
		t.Fatalf("go-redis GET missing: %v", err)
	}
	pipe := rc.Pipeline()
	for i := 0; i < 100; i++ {
		pipe.Set(ctx, "p"+strconv.Itoa(i), i, 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := rc.DBSize(ctx).Result(); err != nil || n != 101 {
		t.Fatalf("DBSIZE = %d, %v", n, err)
	}

	testutil.RequireTools(t, "redis-cli")
	out, err := exec.Command("redis-cli", "-s", srv.Socket, "GET", "gk").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "gv" {
		t.Fatalf("redis-cli GET: %q, %v", out, err)
	}
	out, err = exec.Command("redis-cli", "-p", strconv.Itoa(srv.Port), "NSLIST").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "default" {
		t.Fatalf("redis-cli NSLIST: %q, %v", out, err)
	}
}
