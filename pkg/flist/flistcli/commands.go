package flistcli

import (
	"context"
	"encoding/hex"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/zos-go/zos/pkg/flist/block"
	"github.com/zos-go/zos/pkg/flist/format"
)

func inspectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect <flist>",
		Short: "Show an flist's format, tags, routes and content statistics",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			bad := 0
			r, done, err := openFlist(ctx, args[0], func(uint64, string, error) { bad++ })
			if err != nil {
				return err
			}
			defer done()
			counts := map[byte]int{}
			var size uint64
			blocks, unique := 0, map[string]bool{}
			err = format.Walk(ctx, r, func(_ string, in format.Inode) error {
				counts[typeChar(in)]++
				if in.IsRegular() {
					size += in.Size
					bs, err := r.Blocks(ctx, in.Ino)
					if err != nil {
						return err
					}
					blocks += len(bs)
					for _, b := range bs {
						unique[hex.EncodeToString(b.ID)] = true
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			tags, err := r.Tags(ctx)
			if err != nil {
				return err
			}
			routes, err := r.Routes(ctx)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "format:      %s\n", r.Kind())
			fmt.Fprintf(w, "directories: %d\nfiles:       %d\nsymlinks:    %d\nspecial:     %d\n",
				counts['d'], counts['-'], counts['l'], counts['c']+counts['b']+counts['p']+counts['s'])
			fmt.Fprintf(w, "size:        %d bytes\nblocks:      %d (%d unique)\n", size, blocks, len(unique))
			if bad > 0 {
				fmt.Fprintf(w, "invalid:     %d entries skipped\n", bad)
			}
			keys := make([]string, 0, len(tags))
			for k := range tags {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(w, "tag:         %s=%s\n", k, tags[k])
			}
			for _, rt := range routes {
				fmt.Fprintf(w, "route:       %02x-%02x %s\n", rt.Start, rt.End, rt.URL)
			}
			return nil
		},
	}
}

func lsCmd() *cobra.Command {
	var long, recursive bool
	cmd := &cobra.Command{
		Use:   "ls <flist> [path]",
		Short: "List the entries of an flist",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, done, err := openFlist(ctx, args[0], nil)
			if err != nil {
				return err
			}
			defer done()
			start := "/"
			if len(args) == 2 {
				start = path.Clean("/" + args[1])
			}
			dir, err := format.Lookup(ctx, r, start)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			print := func(p string, in format.Inode) {
				if !long {
					fmt.Fprintln(w, p)
					return
				}
				line := fmt.Sprintf("%s %5d %5d %12d %s %s", modeString(in), in.UID, in.GID, in.Size,
					time.Unix(in.Mtime, 0).UTC().Format("2006-01-02 15:04"), p)
				if in.Target != "" {
					line += " -> " + in.Target
				}
				fmt.Fprintln(w, line)
			}
			if !dir.IsDir() {
				print(start, dir)
				return nil
			}
			var list func(p string, d format.Inode) error
			list = func(p string, d format.Inode) error {
				children, err := r.Children(ctx, d.Ino)
				if err != nil {
					return err
				}
				for _, c := range children {
					cp := path.Join(p, c.Name)
					print(cp, c)
					if recursive && c.IsDir() {
						if err := list(cp, c); err != nil {
							return err
						}
					}
				}
				return nil
			}
			return list(start, dir)
		},
	}
	cmd.Flags().BoolVarP(&long, "long", "l", false, "long format")
	cmd.Flags().BoolVarP(&recursive, "recursive", "R", false, "list subdirectories")
	return cmd
}

func catCmd() *cobra.Command {
	var storeURL string
	cmd := &cobra.Command{
		Use:   "cat <flist> <path>",
		Short: "Write a file of an flist to stdout, fetching its blocks",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, done, err := openFlist(ctx, args[0], nil)
			if err != nil {
				return err
			}
			defer done()
			in, err := format.Lookup(ctx, r, args[1])
			if err != nil {
				return err
			}
			if !in.IsRegular() {
				return fmt.Errorf("%s: not a regular file", args[1])
			}
			st, err := openStore(ctx, r, storeURL)
			if err != nil {
				return err
			}
			defer st.Close()
			return readFile(ctx, r, st, in, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&storeURL, "store", "", "block store (default: the flist's routes)")
	return cmd
}

func verifyCmd() *cobra.Command {
	var (
		storeURL string
		metaOnly bool
		workers  int
	)
	cmd := &cobra.Command{
		Use:   "verify <flist>",
		Short: "Check an flist's entries and that every block is in the store and intact",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			w := cmd.OutOrStdout()
			var mu sync.Mutex
			problems := 0
			report := func(format string, a ...any) {
				mu.Lock()
				defer mu.Unlock()
				problems++
				fmt.Fprintf(w, format+"\n", a...)
			}
			dirs := map[uint64]string{format.RootIno: "/"}
			r, done, err := openFlist(ctx, args[0], func(dir uint64, name string, err error) {
				report("invalid entry %q in %s: %v", name, dirs[dir], err)
			})
			if err != nil {
				return err
			}
			defer done()
			type fileBlock struct {
				path  string
				index int
				b     block.Block
			}
			var all []fileBlock
			seen := map[string]bool{}
			err = format.Walk(ctx, r, func(p string, in format.Inode) error {
				if in.IsDir() {
					dirs[in.Ino] = "/" + p
				}
				if !in.IsRegular() {
					return nil
				}
				bs, err := r.Blocks(ctx, in.Ino)
				if err != nil {
					report("/%s: %v", p, err)
					return nil
				}
				chunk := uint64(max(in.ChunkSize, 1))
				if need := (in.Size + chunk - 1) / chunk; uint64(len(bs)) < need {
					report("/%s: %d blocks for %d bytes", p, len(bs), in.Size)
				}
				for i, b := range bs {
					if k := hex.EncodeToString(b.ID); !seen[k] {
						seen[k] = true
						all = append(all, fileBlock{path: "/" + p, index: i, b: b})
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			if !metaOnly {
				st, err := openStore(ctx, r, storeURL)
				if err != nil {
					return err
				}
				defer st.Close()
				codec := r.Kind().Codec()
				g, gctx := errgroup.WithContext(ctx)
				g.SetLimit(max(workers, 1))
				for _, fb := range all {
					g.Go(func() error {
						data, err := st.Get(gctx, fb.b.ID)
						if err == nil {
							_, err = codec.Decode(fb.b, data)
						}
						if err != nil {
							report("%s block %d (%x): %v", fb.path, fb.index, fb.b.ID, err)
						}
						return nil
					})
				}
				_ = g.Wait()
			}
			if problems > 0 {
				return fmt.Errorf("%s: %d problems: %w", args[0], problems, ErrVerify)
			}
			what := fmt.Sprintf("%d blocks checked", len(all))
			if metaOnly {
				what = "metadata only"
			}
			fmt.Fprintf(w, "%s: ok (%s)\n", args[0], what)
			return nil
		},
	}
	cmd.Flags().StringVar(&storeURL, "store", "", "block store (default: the flist's routes)")
	cmd.Flags().BoolVar(&metaOnly, "metadata-only", false, "do not check blocks")
	cmd.Flags().IntVar(&workers, "workers", 8, "parallel block checks")
	return cmd
}

func uploadCmd() *cobra.Command {
	var hf hubFlags
	var name string
	cmd := &cobra.Command{
		Use:   "upload <file>",
		Short: "Upload an flist to a hub",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := hf.client(true)
			if err != nil {
				return err
			}
			if name == "" {
				name = path.Base(args[0])
			}
			info, err := c.Upload(cmd.Context(), args[0], name)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s md5 %s (%d bytes)\n", c.FlistURL(c.User, info.Name), info.MD5, info.Size)
			return nil
		},
	}
	hf.register(cmd, true)
	cmd.Flags().StringVar(&name, "name", "", "name on the hub (default: the file name)")
	return cmd
}

func linkCmd() *cobra.Command {
	var hf hubFlags
	cmd := &cobra.Command{
		Use:   "link <name> <target>",
		Short: "Point an alias (e.g. app-latest.flist) at another flist (name or user/name)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := hf.client(true)
			if err != nil {
				return err
			}
			info, err := c.Link(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s -> %s (md5 %s)\n", c.FlistURL(c.User, info.Name), info.Target, info.MD5)
			return nil
		},
	}
	hf.register(cmd, true)
	return cmd
}

func deleteCmd() *cobra.Command {
	var hf hubFlags
	cmd := &cobra.Command{
		Use:   "delete <name>",
		Short: "Delete one of your flists or aliases from a hub",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := hf.client(true)
			if err != nil {
				return err
			}
			return c.Delete(cmd.Context(), args[0])
		},
	}
	hf.register(cmd, true)
	return cmd
}

func listCmd() *cobra.Command {
	var hf hubFlags
	cmd := &cobra.Command{
		Use:   "list [user]",
		Short: "List the users of a hub, or a user's flists",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _ := hf.client(false)
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			w := cmd.OutOrStdout()
			if len(args) == 0 {
				users, err := c.Users(ctx)
				if err != nil {
					return err
				}
				fmt.Fprintln(w, strings.Join(users, "\n"))
				return nil
			}
			list, err := c.List(ctx, args[0])
			if err != nil {
				return err
			}
			for _, in := range list {
				line := fmt.Sprintf("%-40s %-8s %s %10d", in.Name, in.Type, in.MD5, in.Size)
				if in.Target != "" {
					line += " -> " + in.Target
				}
				fmt.Fprintln(w, line)
			}
			return nil
		},
	}
	hf.register(cmd, true)
	return cmd
}
