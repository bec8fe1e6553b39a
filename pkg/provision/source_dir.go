package provision

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/zos-go/zos/pkg/gridtypes"
)

// DirSource delivers the reservations found as *.json files in a directory,
// for development and for nodes fed by hand. A file is read when it appears
// or changes; an unparsable file is logged and skipped. Deleting a
// workload = rewriting its file with "next_action": "delete". Nothing is
// ever removed from the directory by the node.
type DirSource struct {
	Dir      string
	Interval time.Duration
	Log      *slog.Logger
}

// Run implements Source.
func (s DirSource) Run(ctx context.Context, out chan<- Delivery) error {
	if s.Interval <= 0 {
		s.Interval = time.Second
	}
	seen := map[string]time.Time{}
	t := time.NewTicker(s.Interval)
	defer t.Stop()
	for {
		if err := s.scan(ctx, seen, out); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (s DirSource) scan(ctx context.Context, seen map[string]time.Time, out chan<- Delivery) error {
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("reservation dir %s: %w", s.Dir, err)
	}
	var batch []*gridtypes.Reservation
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		info, err := e.Info()
		if err != nil || seen[e.Name()].Equal(info.ModTime()) {
			continue
		}
		path := filepath.Join(s.Dir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		seen[e.Name()] = info.ModTime()
		r, err := gridtypes.Decode(b)
		if err != nil {
			if s.Log != nil {
				s.Log.WarnContext(ctx, "reservation file skipped", "file", path, "err", err)
			}
			continue
		}
		batch = append(batch, r)
	}
	// Provision order first (networks before what joins them), then id.
	slices.SortStableFunc(batch, func(a, b *gridtypes.Reservation) int {
		if d := a.Type.Order() - b.Type.Order(); d != 0 {
			return d
		}
		return cmp.Compare(a.ID, b.ID)
	})
	for _, r := range batch {
		select {
		case <-ctx.Done():
			return nil
		case out <- Delivery{Reservation: r}:
		}
	}
	return nil
}
