package format

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/zos-go/zos/pkg/flist/block"
)

// exercise reads everything a mount would read, bounded.
func exercise(r Reader) {
	ctx := context.Background()
	n := 0
	_ = Walk(ctx, r, func(p string, in Inode) error {
		if n++; n > 2000 {
			return context.Canceled
		}
		_, _ = r.Xattrs(ctx, in.Ino)
		if in.IsRegular() {
			_, _ = r.Blocks(ctx, in.Ino)
		}
		return nil
	})
	_, _ = r.Tags(ctx)
	_, _ = r.Routes(ctx)
}

func FuzzOpen(f *testing.F) {
	dir := f.TempDir()
	for i, create := range []func(context.Context, string) (Writer, error){CreateRFS, CreateZero} {
		p := filepath.Join(dir, "seed"+string(rune('0'+i)))
		w, err := create(context.Background(), p)
		if err != nil {
			f.Fatal(err)
		}
		writeSample(f, w, []block.Codec{block.RFS, block.Zero}[i])
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("SQLite format 3\x00"))
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "flist")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Open(context.Background(), p, Options{})
		if err != nil {
			return
		}
		exercise(r)
		r.Close()
	})
}

func FuzzZeroDirEntry(f *testing.F) {
	f.Add(zeroDirMessage(f, "", []zeroChild{{name: "a", target: "b"}, {name: "s", subdir: ZeroDirKey("s")}}))
	f.Add([]byte{0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		p := zeroDB(t, map[string][]byte{ZeroDirKey(""): data, ZeroDirKey("s"): data})
		r, err := Open(context.Background(), p, Options{})
		if err != nil {
			return
		}
		exercise(r)
		r.Close()
	})
}

func FuzzParseZeroRouter(f *testing.F) {
	f.Add([]byte("pools:\n  hub:\n    00:FF: zdb://hub:9900\nlookup:\n  - hub\n"))
	f.Add([]byte("pools:\n  a:\n    0a: redis://x\n    10:2f: zdb://y\nlookup: [a, a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		routes, err := ParseZeroRouter(data)
		if err != nil {
			return
		}
		for _, r := range routes {
			if r.Start > r.End || r.URL == "" {
				t.Fatalf("invalid route %+v", r)
			}
		}
	})
}
