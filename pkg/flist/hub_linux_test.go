package flist

import (
	"context"
	"crypto/ed25519"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/flist/build"
	"github.com/zos-go/zos/pkg/flist/format"
	"github.com/zos-go/zos/pkg/flist/store"
	"github.com/zos-go/zos/pkg/hub"
	"github.com/zos-go/zos/pkg/zdb/zdbtest"
)

// TestMountFromHub is the grid path: blocks in a 0-db behind the hub,
// flists uploaded to the hub with a signature, a node mounting them by hub
// URL (through an alias), and the hash the node reports matching the hub's.
func TestMountFromHub(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t)
	ctx := context.Background()
	zdb := zdbtest.Start(t, zdbtest.Options{})
	admin := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(zdb.Port), Protocol: 2, DisableIdentity: true})
	defer admin.Close()
	for _, c := range [][]any{{"NSNEW", "hub"}, {"NSSET", "hub", "password", "s3cret"}, {"NSSET", "hub", "public", "1"}} {
		if err := admin.Do(ctx, c...).Err(); err != nil {
			t.Fatalf("%v: %v", c, err)
		}
	}
	zdbURL := "zdb://:s3cret@127.0.0.1:" + strconv.Itoa(zdb.Port) + "/hub"
	blocks, err := store.Open(zdbURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer blocks.Close()
	_, key, _ := ed25519.GenerateKey(nil)
	cfg := hub.DefaultConfig()
	cfg.Dir, cfg.Blocks = testutil.TempDir(t), blocks
	cfg.Keys = hub.KeyMap{"alice": key.Public().(ed25519.PublicKey)}
	h, err := hub.New(cfg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	alice := &hub.Client{URL: srv.URL, User: "alice", Key: key}

	src := testutil.TempDir(t)
	makeTree(t, src, false)
	up, err := store.Open(alice.BlockStoreURL(), store.Options{Authorize: alice.Authorize})
	if err != nil {
		t.Fatal(err)
	}
	// one flist reads its blocks through the hub, one straight from the
	// (public) 0-db namespace
	for i, route := range []string{alice.BlockStoreURL(), store.StripPassword(zdbURL)} {
		fl := filepath.Join(testutil.TempDir(t), "app.fl")
		if _, err := build.Build(ctx, src, fl, up, build.Config{Kind: format.KindRFS, StoreURL: route}, testLog(t)); err != nil {
			t.Fatal(err)
		}
		name := "app-" + strconv.Itoa(i) + ".fl"
		info, err := alice.Upload(ctx, fl, name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := alice.Link(ctx, "latest-"+strconv.Itoa(i)+".fl", name); err != nil {
			t.Fatal(err)
		}
		url := alice.FlistURL("alice", "latest-"+strconv.Itoa(i)+".fl")

		runner := processRunner(t)
		m := newModule(t, testConfig(t), nil, runner)
		hash, err := m.FlistHash(url)
		if err != nil || hash != info.MD5 {
			t.Fatalf("FlistHash: %q %v, want %s", hash, err, info.MD5)
		}
		path, err := m.NamedMount(testutil.Name(t, "hub"), url, "", pkg.ReadOnlyMountOptions)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"etc/hosts", "var/lib/data/big.bin", "bin/tool"} {
			want, _ := os.ReadFile(filepath.Join(src, p))
			got, err := os.ReadFile(filepath.Join(path, p))
			if err != nil || string(got) != string(want) {
				t.Errorf("route %s: %s: %d bytes, %v", route, p, len(got), err)
			}
		}
		if got, err := m.HashFromRootPath(path); err != nil || got != info.MD5 {
			t.Errorf("HashFromRootPath %q %v, want %s", got, err, info.MD5)
		}
		if strings.Contains(route, "s3cret") {
			t.Errorf("password written into the flist")
		}
	}
}
