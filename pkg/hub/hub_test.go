package hub

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zos-go/zos/pkg/flist/block"
	"github.com/zos-go/zos/pkg/flist/format"
	"github.com/zos-go/zos/pkg/flist/store"
)

type fixture struct {
	srv   *httptest.Server
	dir   string
	alice *Client
	bob   *Client
	anon  *Client
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	_, aliceKey, _ := ed25519.GenerateKey(nil)
	_, bobKey, _ := ed25519.GenerateKey(nil)
	blocks, err := store.Open("dir://"+t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Dir = t.TempDir()
	cfg.Blocks = blocks
	cfg.Keys = KeyMap{"alice": aliceKey.Public().(ed25519.PublicKey), "bob": bobKey.Public().(ed25519.PublicKey)}
	h, err := New(cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &fixture{
		srv: srv, dir: cfg.Dir,
		alice: &Client{URL: srv.URL, User: "alice", Key: aliceKey},
		bob:   &Client{URL: srv.URL, User: "bob", Key: bobKey},
		anon:  &Client{URL: srv.URL},
	}
}

// makeFlist writes a small flist of the given kind and returns its path.
func makeFlist(t *testing.T, kind format.Kind, content string) string {
	t.Helper()
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "x")
	create := format.CreateRFS
	if kind == format.KindZero {
		create = format.CreateZero
	}
	w, err := create(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	root, err := w.Add(ctx, format.Entry{Mode: syscall.S_IFDIR | 0o755})
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := kind.Codec().Encode([]byte(content))
	if _, err := w.Add(ctx, format.Entry{Parent: root, Name: "etc-" + content, Mode: syscall.S_IFREG | 0o644, Size: uint64(len(content)), Blocks: []block.Block{b}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return p
}

func status(err error) int {
	var e *APIError
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestUploadDownloadList(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, kind := range []format.Kind{format.KindRFS, format.KindZero} {
		p := makeFlist(t, kind, kind.String())
		name := "img-" + strings.ReplaceAll(kind.String(), "-", "") + ".flist"
		info, err := f.alice.Upload(ctx, p, name)
		if err != nil {
			t.Fatalf("upload %s: %v", kind, err)
		}
		data, _ := os.ReadFile(p)
		sum := md5.Sum(data)
		if info.MD5 != hex.EncodeToString(sum[:]) || info.Size != int64(len(data)) || info.Type != "regular" {
			t.Errorf("info %+v", info)
		}
		code, got := get(t, f.alice.FlistURL("alice", name))
		if code != 200 || !bytes.Equal(got, data) {
			t.Fatalf("download %s: %d, %d bytes", kind, code, len(got))
		}
		code, got = get(t, f.alice.FlistURL("alice", name)+".md5")
		if code != 200 || strings.TrimSpace(string(got)) != info.MD5 {
			t.Fatalf("md5: %d %q", code, got)
		}
		full, err := f.anon.Info(ctx, "alice", name, true)
		if err != nil || len(full.Contents) != 1 || full.Contents[0].Path != "/etc-"+kind.String() {
			t.Fatalf("contents: %+v %v", full, err)
		}
	}
	list, err := f.anon.List(ctx, "alice")
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %+v %v", list, err)
	}
	users, err := f.anon.Users(ctx)
	if err != nil || len(users) != 1 || users[0] != "alice" {
		t.Fatalf("users: %v %v", users, err)
	}
	if code, _ := get(t, f.alice.FlistURL("alice", "nothing.flist")); code != 404 {
		t.Errorf("missing flist: %d", code)
	}
	if code, _ := get(t, f.alice.FlistURL("alice", "nothing.flist")+".md5"); code != 404 {
		t.Errorf("missing md5: %d", code)
	}
}

func TestUploadRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := makeFlist(t, format.KindRFS, "a")
	garbage := filepath.Join(t.TempDir(), "g")
	os.WriteFile(garbage, []byte("not an flist at all"), 0o644)
	if _, err := f.alice.Upload(ctx, garbage, "bad.flist"); status(err) != 400 {
		t.Errorf("garbage: %v", err)
	}
	if _, err := f.alice.Upload(ctx, p, "../escape.flist"); err == nil {
		t.Errorf("path name accepted")
	}
	if _, err := f.alice.Upload(ctx, p, "noext"); status(err) != 400 {
		t.Errorf("name without .flist: %v", err)
	}
	// bob cannot write alice's flists
	bobAsAlice := &Client{URL: f.srv.URL, User: "alice", Key: f.bob.Key}
	if _, err := bobAsAlice.Upload(ctx, p, "x.flist"); status(err) != 401 {
		t.Errorf("wrong key: %v", err)
	}
	req, _ := http.NewRequest(http.MethodPut, f.srv.URL+"/api/flist/alice/x.flist", bytes.NewReader([]byte("x")))
	Sign(req, "bob", f.bob.Key, Digest([]byte("x")), time.Now())
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 403 {
		t.Errorf("bob on alice: %v %v", resp.StatusCode, err)
	}
	// an old signature
	data, _ := os.ReadFile(p)
	req, _ = http.NewRequest(http.MethodPut, f.srv.URL+"/api/flist/alice/x.flist", bytes.NewReader(data))
	Sign(req, "alice", f.alice.Key, Digest(data), time.Now().Add(-time.Hour))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("old signature: %v %v", resp.StatusCode, err)
	}
	// a body that is not the signed one
	req, _ = http.NewRequest(http.MethodPut, f.srv.URL+"/api/flist/alice/x.flist", bytes.NewReader(data))
	Sign(req, "alice", f.alice.Key, Digest([]byte("other")), time.Now())
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("swapped body: %v %v", resp.StatusCode, err)
	}
	// unknown user, unsigned
	if _, err := (&Client{URL: f.srv.URL, User: "carol", Key: f.bob.Key}).Upload(ctx, p, "x.flist"); status(err) != 401 {
		t.Errorf("unknown user: %v", err)
	}
	req, _ = http.NewRequest(http.MethodPut, f.srv.URL+"/api/flist/alice/x.flist", bytes.NewReader(data))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("unsigned: %v %v", resp.StatusCode, err)
	}
	if list, _ := f.anon.List(ctx, "alice"); len(list) != 0 {
		t.Errorf("refused uploads left %v", list)
	}
}

func TestAliasAndDelete(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	v1, err := f.alice.Upload(ctx, makeFlist(t, format.KindRFS, "v1"), "app-v1.flist")
	if err != nil {
		t.Fatal(err)
	}
	v2, err := f.alice.Upload(ctx, makeFlist(t, format.KindRFS, "v2"), "app-v2.flist")
	if err != nil {
		t.Fatal(err)
	}
	latest, err := f.alice.Link(ctx, "app-latest.flist", "app-v1.flist")
	if err != nil || latest.Type != "symlink" || latest.Target != "app-v1.flist" || latest.MD5 != v1.MD5 {
		t.Fatalf("link: %+v %v", latest, err)
	}
	if _, err := f.alice.Link(ctx, "app-latest.flist", "app-v2.flist"); err != nil {
		t.Fatal(err)
	}
	if _, got := get(t, f.alice.FlistURL("alice", "app-latest.flist")+".md5"); strings.TrimSpace(string(got)) != v2.MD5 {
		t.Errorf("latest md5 %q, want %s", got, v2.MD5)
	}
	// cross-user alias, loops refused
	if _, err := f.bob.Link(ctx, "mine.flist", "alice/app-latest.flist"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.alice.Link(ctx, "app-v1.flist", "app-latest.flist"); err != nil {
		t.Fatal(err) // v1 -> latest -> v2: no loop
	}
	if _, err := f.alice.Link(ctx, "app-v2.flist", "bob/mine.flist"); status(err) != 400 {
		t.Errorf("alias loop: %v", err)
	}
	if _, err := f.alice.Link(ctx, "x.flist", "missing.flist"); status(err) != 404 {
		t.Errorf("alias to nothing: %v", err)
	}
	if err := f.alice.Delete(ctx, "app-v2.flist"); status(err) != 0 {
		t.Fatal(err)
	}
	if code, _ := get(t, f.alice.FlistURL("alice", "app-latest.flist")); code != 404 {
		t.Errorf("alias to a deleted flist: %d", code)
	}
	objs, _ := os.ReadDir(filepath.Join(f.dir, objectsDir))
	if len(objs) != 0 {
		t.Errorf("objects left after deleting every regular flist: %v", objs)
	}
	if err := f.bob.Delete(ctx, "app-latest.flist"); status(err) != 404 {
		t.Errorf("bob deletes a name of his own that does not exist: %v", err)
	}
}

func TestBlocks(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	up, err := store.Open(f.alice.BlockStoreURL(), store.Options{Authorize: f.alice.Authorize})
	if err != nil {
		t.Fatal(err)
	}
	for _, codec := range []block.Codec{block.RFS, block.Zero} {
		b, data, _ := codec.Encode([]byte("block of " + codec.Name()))
		if err := up.Set(ctx, b.ID, data); err != nil {
			t.Fatalf("%s: %v", codec.Name(), err)
		}
		got, err := up.Get(ctx, b.ID)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("get: %v", err)
		}
		if ok, err := up.Exists(ctx, b.ID); err != nil || !ok {
			t.Fatalf("exists: %v %v", ok, err)
		}
		// a block whose id is not its hash is refused
		if err := up.Set(ctx, b.Key, data); err == nil {
			t.Errorf("%s: poisoned block accepted", codec.Name())
		}
	}
	anon, _ := store.Open(f.alice.BlockStoreURL(), store.Options{Authorize: (&Client{URL: f.srv.URL}).Authorize})
	b, data, _ := block.RFS.Encode([]byte("anon"))
	if err := anon.Set(ctx, b.ID, data); err == nil {
		t.Error("unsigned block upload accepted")
	}
	if _, err := up.Get(ctx, b.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing block: %v", err)
	}
}

func FuzzParseSignature(f *testing.F) {
	f.Add(`Signature keyId="alice",algorithm="ed25519",created=1,headers="(request-target) (created) digest",signature="AAAA"`)
	f.Add(`Signature keyId=,created=`)
	f.Fuzz(func(t *testing.T, h string) {
		s, err := parseSignature(h)
		if err == nil && len(s.signature) != ed25519.SignatureSize {
			t.Fatalf("accepted a signature of %d bytes", len(s.signature))
		}
	})
}

func TestRunCleansDeadUploads(t *testing.T) {
	f := newFixture(t)
	os.MkdirAll(filepath.Join(f.dir, objectsDir), 0o755)
	stale := filepath.Join(f.dir, objectsDir, ".tmp-123")
	fresh := filepath.Join(f.dir, objectsDir, ".tmp-456")
	orphan := filepath.Join(f.dir, objectsDir, "0123456789abcdef0123456789abcdef")
	for _, p := range []string{stale, fresh, orphan} {
		os.WriteFile(p, []byte("x"), 0o644)
	}
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(stale, old, old)
	h, _ := New(Config{Dir: f.dir, Blocks: &nopStore{}, Keys: KeyMap{}, MaxFlistBytes: 1, MaxSkew: time.Second, MaxContents: 1}, slog.New(slog.NewTextHandler(t.Output(), nil)))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.Run(ctx); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{stale: false, fresh: true, orphan: false} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s kept=%v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}

type nopStore struct{ store.Store }
