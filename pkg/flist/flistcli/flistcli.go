// Package flistcli holds the `zos flist` commands: create flists from
// directories, inspect, list, read and verify them, and manage them on a
// hub. The zos CLI adds NewCommand to its root.
package flistcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/zos-go/zos/pkg/flist/block"
	"github.com/zos-go/zos/pkg/flist/build"
	"github.com/zos-go/zos/pkg/flist/format"
	"github.com/zos-go/zos/pkg/flist/store"
	"github.com/zos-go/zos/pkg/hub"
	"github.com/zos-go/zos/pkg/identity"
)

// ErrVerify is returned by verify when the flist has problems.
var ErrVerify = errors.New("flist verification failed")

// NewCommand returns the `flist` command and its subcommands.
func NewCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "flist",
		Short: "Create, inspect and publish flists",
	}
	cmd.AddCommand(createCmd(), inspectCmd(), lsCmd(), catCmd(), verifyCmd(),
		uploadCmd(), linkCmd(), deleteCmd(), listCmd())
	return cmd
}

func logger(cmd *cobra.Command, verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
}

// hubFlags are the flags of commands that sign requests to a hub.
type hubFlags struct {
	url, user, identity string
}

func (h *hubFlags) register(cmd *cobra.Command, needURL bool) {
	cmd.Flags().StringVar(&h.url, "hub", "", "hub URL")
	cmd.Flags().StringVar(&h.user, "user", "", "hub user name")
	cmd.Flags().StringVar(&h.identity, "identity", "", "identity (seed) file holding the user's key")
	if needURL {
		_ = cmd.MarkFlagRequired("hub")
	}
}

func (h *hubFlags) client(signed bool) (*hub.Client, error) {
	c := &hub.Client{URL: h.url, User: h.user}
	if !signed {
		return c, nil
	}
	if h.user == "" || h.identity == "" {
		return nil, fmt.Errorf("--user and --identity are required to sign hub requests")
	}
	seed, err := identity.ReadSeedFile(h.identity)
	if err != nil {
		return nil, err
	}
	c.Key = seed.KeyPair().PrivateKey()
	return c, nil
}

func createCmd() *cobra.Command {
	var (
		out, storeURL, kind string
		workers             int
		tags, routes        []string
		quiet, verbose      bool
		hf                  hubFlags
	)
	cmd := &cobra.Command{
		Use:   "create <dir> -o <file> --store <url>",
		Short: "Pack a directory into an flist, uploading its blocks to a store",
		Long: `Walks <dir> (files, directories, symlinks, hard links, devices, modes,
owners, times, xattrs), splits files in 512 KiB blocks, deduplicates, compresses
and encrypts them, uploads the new ones to the store in parallel and writes the
flist to -o. Stores: dir:///path, zdb://[:password@]host:port/namespace,
http(s)://hub/blocks (signed with --user and --identity).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := build.Config{Workers: workers, StoreURL: storeURL, Tags: map[string]string{}}
			switch kind {
			case "rfs", "fl":
				cfg.Kind = format.KindRFS
			case "0-flist", "zero", "flist":
				cfg.Kind = format.KindZero
			default:
				return fmt.Errorf("--format %q: rfs or 0-flist", kind)
			}
			for _, t := range tags {
				k, v, ok := strings.Cut(t, "=")
				if !ok || k == "" {
					return fmt.Errorf("--tag %q: want key=value", t)
				}
				cfg.Tags[k] = v
			}
			for _, r := range routes {
				route, err := parseRoute(r)
				if err != nil {
					return err
				}
				cfg.Routes = append(cfg.Routes, route)
			}
			opts := store.Options{}
			if hf.user != "" || hf.identity != "" {
				c, err := hf.client(true)
				if err != nil {
					return err
				}
				opts.Authorize = c.Authorize
			}
			st, err := store.Open(storeURL, opts)
			if err != nil {
				return err
			}
			defer st.Close()
			var bar *progressbar.ProgressBar
			if !quiet {
				bar = progressbar.NewOptions64(-1, progressbar.OptionSetWriter(cmd.ErrOrStderr()),
					progressbar.OptionShowBytes(true), progressbar.OptionSetDescription("uploading"),
					progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
				var mu sync.Mutex
				cfg.Progress = func(done, total int64) {
					mu.Lock()
					defer mu.Unlock()
					bar.ChangeMax64(total)
					_ = bar.Set64(done)
				}
			}
			res, err := build.Build(cmd.Context(), args[0], out, st, cfg, logger(cmd, verbose))
			if bar != nil {
				_ = bar.Finish()
			}
			if err != nil {
				return err
			}
			mib := float64(res.Bytes) / (1 << 20)
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d entries, %d files, %.1f MiB in %d blocks (%d unique, %.1f MiB uploaded) in %s (%.1f MiB/s)\n",
				out, res.Entries, res.Files, mib, res.Blocks, res.UniqueBlocks, float64(res.UploadedBytes)/(1<<20),
				res.Duration.Round(time.Millisecond), mib/max(res.Duration.Seconds(), 1e-9))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "flist file to write")
	cmd.Flags().StringVar(&storeURL, "store", "", "block store URL")
	cmd.Flags().StringVar(&kind, "format", "rfs", "flist format: rfs (.fl) or 0-flist")
	cmd.Flags().IntVar(&workers, "workers", 8, "parallel block encoders/uploaders")
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "tag key=value (repeatable)")
	cmd.Flags().StringArrayVar(&routes, "route", nil, "route start-end=url written into the flist instead of --store (hex bytes, repeatable)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log progress")
	hf.register(cmd, false)
	_ = cmd.MarkFlagRequired("output")
	_ = cmd.MarkFlagRequired("store")
	return cmd
}

func parseRoute(s string) (format.Route, error) {
	rng, u, ok := strings.Cut(s, "=")
	lo, hi, ok2 := strings.Cut(rng, "-")
	if !ok || !ok2 {
		return format.Route{}, fmt.Errorf("--route %q: want start-end=url", s)
	}
	a, err1 := strconv.ParseUint(lo, 16, 8)
	b, err2 := strconv.ParseUint(hi, 16, 8)
	if err1 != nil || err2 != nil || a > b || u == "" {
		return format.Route{}, fmt.Errorf("--route %q: want hex bytes start-end=url", s)
	}
	return format.Route{Start: uint8(a), End: uint8(b), URL: store.StripPassword(u)}, nil
}

// openFlist opens a local flist, or downloads one given by http(s) URL. A
// 0-flist archive is unpacked in a temporary directory, not next to the
// user's file.
func openFlist(ctx context.Context, arg string, bad format.BadEntryFunc) (format.Reader, func(), error) {
	tmp, err := os.MkdirTemp("", "zos-flist-*")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	path := arg
	if strings.HasPrefix(arg, "http://") || strings.HasPrefix(arg, "https://") {
		path = filepath.Join(tmp, "flist")
		if err := fetch(ctx, arg, path); err != nil {
			cleanup()
			return nil, nil, err
		}
	}
	r, err := format.Open(ctx, path, format.Options{OnBadEntry: bad, UnpackDir: filepath.Join(tmp, "unpacked")})
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return r, func() { r.Close(); cleanup() }, nil
}

func fetch(ctx context.Context, url, dst string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: status %d", url, resp.StatusCode)
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func typeChar(in format.Inode) byte {
	switch in.Type() {
	case syscall.S_IFDIR:
		return 'd'
	case syscall.S_IFLNK:
		return 'l'
	case syscall.S_IFCHR:
		return 'c'
	case syscall.S_IFBLK:
		return 'b'
	case syscall.S_IFIFO:
		return 'p'
	case syscall.S_IFSOCK:
		return 's'
	}
	return '-'
}

func modeString(in format.Inode) string {
	const rwx = "rwxrwxrwx"
	b := []byte{typeChar(in)}
	for i := range 9 {
		if in.Mode&(1<<(8-i)) != 0 {
			b = append(b, rwx[i])
		} else {
			b = append(b, '-')
		}
	}
	if in.Mode&syscall.S_ISUID != 0 {
		b[3] = 's'
	}
	if in.Mode&syscall.S_ISGID != 0 {
		b[6] = 's'
	}
	if in.Mode&syscall.S_ISVTX != 0 {
		b[9] = 't'
	}
	return string(b)
}

// openStore opens the store for an flist: --store if given, else its routes.
func openStore(ctx context.Context, r format.Reader, storeURL string) (store.Store, error) {
	if storeURL != "" {
		return store.Open(storeURL, store.Options{})
	}
	routes, err := r.Routes(ctx)
	if err != nil {
		return nil, err
	}
	return store.FromRoutes(routes, "", store.Options{})
}

func readFile(ctx context.Context, r format.Reader, st store.Store, in format.Inode, w io.Writer) error {
	blocks, err := r.Blocks(ctx, in.Ino)
	if err != nil {
		return err
	}
	codec := r.Kind().Codec()
	left := in.Size
	for i, b := range blocks {
		if left == 0 {
			break
		}
		data, err := st.Get(ctx, b.ID)
		if err != nil {
			return fmt.Errorf("block %d: %w", i, err)
		}
		plain, err := codec.Decode(b, data)
		if err != nil {
			return fmt.Errorf("block %d: %w", i, err)
		}
		n := min(uint64(len(plain)), left)
		if _, err := w.Write(plain[:n]); err != nil {
			return err
		}
		left -= n
	}
	if left != 0 {
		return fmt.Errorf("%d bytes missing at the end: %w", left, block.ErrCorrupt)
	}
	return nil
}
