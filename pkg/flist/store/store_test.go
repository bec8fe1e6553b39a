package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/flist/format"
	"github.com/zos-go/zos/pkg/zdb/zdbtest"
)

func randomKey(t *testing.T, first byte) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	k[0] = first
	return k
}

// suite is what every writable Store must do.
func suite(t *testing.T, s Store) {
	t.Helper()
	ctx := context.Background()
	k := randomKey(t, 0x42)
	if _, err := s.Get(ctx, k); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing: %v, want ErrNotFound", err)
	}
	if ok, err := s.Exists(ctx, k); err != nil || ok {
		t.Fatalf("exists missing: %v %v", ok, err)
	}
	data := []byte("encoded block \x00\xff binary")
	if err := s.Set(ctx, k, data); err != nil {
		t.Fatalf("set: %v", err)
	}
	if err := s.Set(ctx, k, data); err != nil {
		t.Fatalf("set again: %v", err)
	}
	got, err := s.Get(ctx, k)
	if err != nil || string(got) != string(data) {
		t.Fatalf("get: %q %v", got, err)
	}
	if ok, err := s.Exists(ctx, k); err != nil || !ok {
		t.Fatalf("exists: %v %v", ok, err)
	}
	if strings.Contains(s.String(), "secret") {
		t.Errorf("String() shows the password: %s", s)
	}
}

func TestDirStore(t *testing.T) {
	dir := t.TempDir()
	s, err := Open("dir://"+dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	suite(t, s)
	// rfs layout, and the flat fallback
	k := randomKey(t, 0xab)
	if err := s.Set(context.Background(), k, []byte("x")); err != nil {
		t.Fatal(err)
	}
	hx := strings.ToLower(strings.TrimSpace(func() string { b, _ := os.ReadDir(filepath.Join(dir, "ab")); return b[0].Name() }()))
	if len(hx) != 64 {
		t.Fatalf("file %q in ab/", hx)
	}
	flat := randomKey(t, 0xcd)
	if err := os.WriteFile(filepath.Join(dir, hexOf(flat)), []byte("flat"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(context.Background(), flat); err != nil || string(got) != "flat" {
		t.Fatalf("flat fallback: %q %v", got, err)
	}
	if _, err := Open("dir://relative/path", Options{}); !errors.Is(err, ErrInvalidURL) {
		t.Errorf("relative dir: %v", err)
	}
}

func hexOf(k []byte) string { h, _ := hexKey(k); return h }

func TestZDBStoreOnRedis(t *testing.T) {
	addr := testutil.RedisServer(t)
	s, err := Open("redis://"+addr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	suite(t, s)
	s2, err := Open("zdb://"+addr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	suite(t, s2)
}

func TestZDBStoreOnZDBNamespace(t *testing.T) {
	srv := zdbtest.Start(t, zdbtest.Options{})
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(srv.Port), Protocol: 2, DisableIdentity: true})
	defer admin.Close()
	for _, cmd := range [][]any{{"NSNEW", "blocks"}, {"NSSET", "blocks", "password", "secret"}, {"NSSET", "blocks", "public", "0"}} {
		if err := admin.Do(ctx, cmd...).Err(); err != nil {
			t.Fatalf("%v: %v", cmd, err)
		}
	}
	s, err := Open("zdb://:secret@127.0.0.1:"+strconv.Itoa(srv.Port)+"/blocks", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	suite(t, s)
	// the block is in the namespace, not in default
	k := randomKey(t, 9)
	if err := s.Set(ctx, k, []byte("ns")); err != nil {
		t.Fatal(err)
	}
	if n, err := admin.Exists(ctx, string(k)).Result(); err != nil || n != 0 {
		t.Errorf("block visible in the default namespace: %d %v", n, err)
	}
	wrong, _ := Open("zdb://:nope@127.0.0.1:"+strconv.Itoa(srv.Port)+"/blocks", Options{})
	defer wrong.Close()
	if _, err := wrong.Get(ctx, k); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("get with a wrong password: %v", err)
	}
}

func TestZDBStoreDown(t *testing.T) {
	port := testutil.FreePort(t)
	s, err := Open("zdb://127.0.0.1:"+strconv.Itoa(port)+"/ns", Options{DialTimeout: 200e6})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Get(context.Background(), randomKey(t, 1))
	if err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("get from a store that is down: %v", err)
	}
}

// blockServer is a minimal hub-like block endpoint over a dir store.
func blockServer(t *testing.T, token string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	backing, err := Open("dir://"+t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := filepath.Base(r.URL.Path)
		key, err := hex.DecodeString(name)
		if err != nil || len(key) < 2 {
			http.Error(w, "bad key", http.StatusBadRequest)
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			gets.Add(1)
			data, err := backing.Get(r.Context(), key)
			if err != nil {
				http.NotFound(w, r)
				return
			}
			w.Write(data)
		case http.MethodPut:
			if r.Header.Get("Authorization") != token {
				http.Error(w, "no", http.StatusUnauthorized)
				return
			}
			data, _ := io.ReadAll(r.Body)
			if err := backing.Set(r.Context(), key, data); err != nil {
				http.Error(w, err.Error(), 500)
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &gets
}

func TestHTTPStore(t *testing.T) {
	srv, _ := blockServer(t, "Bearer ok")
	s, err := Open(srv.URL+"/blocks", Options{Authorize: func(r *http.Request) error {
		r.Header.Set("Authorization", "Bearer ok")
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	suite(t, s)
	ro, err := Open(srv.URL+"/blocks", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ro.Set(context.Background(), randomKey(t, 3), []byte("x")); !errors.Is(err, ErrReadOnly) {
		t.Errorf("set without credentials: %v", err)
	}
	bad, _ := Open(srv.URL+"/blocks", Options{Authorize: func(r *http.Request) error {
		r.Header.Set("Authorization", "Bearer wrong")
		return nil
	}})
	if err := bad.Set(context.Background(), randomKey(t, 3), []byte("x")); err == nil {
		t.Errorf("set with wrong credentials succeeded")
	}
}

func TestRouter(t *testing.T) {
	ctx := context.Background()
	a, _ := Open("dir://"+t.TempDir(), Options{})
	b, _ := Open("dir://"+t.TempDir(), Options{})
	r := NewRouter([]Route{{0, 0x7f, a}, {0x80, 0xff, b}})
	lo, hi := randomKey(t, 0x10), randomKey(t, 0x90)
	for _, k := range [][]byte{lo, hi} {
		if err := r.Set(ctx, k, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if ok, _ := a.Exists(ctx, hi); ok {
		t.Error("high key routed to the low store")
	}
	if ok, _ := b.Exists(ctx, hi); !ok {
		t.Error("high key not in the high store")
	}
	if got, err := r.Get(ctx, lo); err != nil || string(got) != "v" {
		t.Errorf("get lo: %q %v", got, err)
	}
	if _, err := r.Get(ctx, randomKey(t, 0x20)); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
	partial := NewRouter([]Route{{0, 0x7f, a}})
	if _, err := partial.Get(ctx, hi); !errors.Is(err, ErrNoRoute) {
		t.Errorf("unrouted: %v", err)
	}
	fr, err := FromRoutes(nil, "dir://"+t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	suite(t, fr)
	if _, err := FromRoutes([]format.Route{{Start: 0, End: 255, URL: "ftp://x"}}, "", Options{}); !errors.Is(err, ErrInvalidURL) {
		t.Errorf("bad route url: %v", err)
	}
}

func TestStripPassword(t *testing.T) {
	for in, want := range map[string]string{
		"zdb://user:secret@hub:9900/ns": "zdb://user@hub:9900/ns",
		"zdb://secret@hub:9900":         "zdb://hub:9900",
		"dir:///tmp/x":                  "dir:///tmp/x",
		"https://hub/blocks":            "https://hub/blocks",
	} {
		if got := StripPassword(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

func TestHTTPStoreStringHidesPassword(t *testing.T) {
	s, err := Open("http://user:s3cret@127.0.0.1:1/blocks", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if strings.Contains(s.String(), "s3cret") {
		t.Fatalf("String() = %q shows the password", s.String())
	}
}
