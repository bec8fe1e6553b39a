package build

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/zos-go/zos/pkg/flist/block"
	"github.com/zos-go/zos/pkg/flist/format"
	"github.com/zos-go/zos/pkg/flist/store"
)

func TestBuildCountsAndDedup(t *testing.T) {
	src := t.TempDir()
	chunk := bytes.Repeat([]byte{9}, block.ChunkSize)
	os.WriteFile(filepath.Join(src, "a"), append(chunk, chunk...), 0o644) // two identical chunks
	os.WriteFile(filepath.Join(src, "b"), chunk, 0o644)
	os.Link(filepath.Join(src, "a"), filepath.Join(src, "c"))
	os.Mkdir(filepath.Join(src, "d"), 0o700)
	st, _ := store.Open("dir://"+t.TempDir(), store.Options{})
	var last, total int64
	out := filepath.Join(t.TempDir(), "x.fl")
	res, err := Build(context.Background(), src, out, st, Config{StoreURL: "dir:///somewhere", Workers: 3,
		Progress: func(done, tot int64) { last, total = done, tot }}, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Entries != 5 || res.Files != 3 || res.Blocks != 5 || res.UniqueBlocks != 1 || res.Bytes != 3*block.ChunkSize {
		t.Errorf("result %+v", res)
	}
	if last != total || total != 3*block.ChunkSize {
		t.Errorf("progress %d/%d", last, total)
	}
	r, err := format.Open(context.Background(), out, format.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	routes, _ := r.Routes(context.Background())
	if len(routes) != 1 || routes[0].URL != "dir:///somewhere" {
		t.Errorf("routes %v", routes)
	}
}

func TestBuildRefusesBadSources(t *testing.T) {
	st, _ := store.Open("dir://"+t.TempDir(), store.Options{})
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, []byte("x"), 0o644)
	out := filepath.Join(t.TempDir(), "x.fl")
	if _, err := Build(context.Background(), file, out, st, Config{StoreURL: "dir:///x"}, log); !errors.Is(err, ErrSource) {
		t.Errorf("file as source: %v", err)
	}
	if _, err := Build(context.Background(), t.TempDir(), out, st, Config{}, log); !errors.Is(err, ErrSource) {
		t.Errorf("no store url: %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed builds wrote %s", out)
	}
}
