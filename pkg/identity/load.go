package identity

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"
)

// Load reads the node seed from cfg.SeedPath and its mirrors, creating it on
// first start, and returns the Manager of its key pair. In order:
//
//   - temp files a crash left next to any copy are removed;
//   - every existing copy is read; one that is not a valid seed file is an
//     error matching ErrInvalidSeed (never replaced by a new identity), and a
//     mirror that cannot be read (dead disk) is skipped with a warning, but
//     then a missing primary is ErrSeedUnavailable rather than a new seed;
//   - copies holding different seeds are ErrSeedMismatch;
//   - no copy at all: a new random seed is written under "1.0.0" (no-clobber,
//     so concurrent starts agree); primary missing but a mirror valid: the
//     primary is restored from it; a legacy primary is rewritten under "1.0.0";
//   - missing or legacy mirrors are (re)written; a failure to write a mirror
//     is only a warning;
//   - group/other permission bits on a copy are removed.
func Load(ctx context.Context, cfg Config, log *slog.Logger) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		return nil, fmt.Errorf("identity: nil logger: %w", ErrInvalidConfig)
	}
	l := loader{cfg: cfg, log: log}
	seed, err := l.load(ctx)
	if err != nil {
		return nil, err
	}
	m, err := New(cfg, NewKeyPair(seed), log)
	if err != nil {
		return nil, err
	}
	log.InfoContext(ctx, "identity loaded", "node_id", m.id, "mirrors", len(cfg.MirrorPaths))
	return m, nil
}

// seedCopy is one copy of the seed file as found on disk.
type seedCopy struct {
	path   string
	exists bool
	raw    []byte
	file   SeedFile
	mode   fs.FileMode
}

type loader struct {
	cfg Config
	log *slog.Logger
}

// load runs the steps Load documents; it retries once when another process
// created the primary between the read and the no-clobber create.
func (l loader) load(ctx context.Context) (Seed, error) {
	for attempt := 0; ; attempt++ {
		seed, err := l.loadOnce(ctx)
		if errors.Is(err, fs.ErrExist) && attempt == 0 {
			l.log.WarnContext(ctx, "seed file appeared while loading, reading it again", "path", l.cfg.SeedPath)
			continue
		}
		return seed, err
	}
}

func (l loader) loadOnce(ctx context.Context) (Seed, error) {
	if err := ctx.Err(); err != nil {
		return Seed{}, err
	}
	paths := append([]string{l.cfg.SeedPath}, l.cfg.MirrorPaths...)
	copies := make([]seedCopy, 0, len(paths))
	var unreadable []string
	for i, p := range paths {
		if n, err := removeStaleTemps(p, time.Now()); err != nil {
			l.log.WarnContext(ctx, "cannot remove stale seed temp files", "path", p, "err", err)
		} else if n > 0 {
			l.log.WarnContext(ctx, "removed stale seed temp files", "path", p, "count", n)
		}
		c, err := readCopy(p)
		if err != nil {
			if i == 0 || errors.Is(err, ErrInvalidSeed) {
				return Seed{}, err
			}
			// A mirror we cannot read (dead pool): do without it.
			l.log.WarnContext(ctx, "seed mirror unreadable, skipped", "path", p, "err", err)
			unreadable = append(unreadable, p)
			continue
		}
		copies = append(copies, c)
	}

	// All existing copies must hold the same seed.
	var ref *seedCopy
	for i := range copies {
		c := &copies[i]
		if !c.exists {
			continue
		}
		if ref == nil {
			ref = c
			continue
		}
		if c.file.Seed != ref.file.Seed {
			return Seed{}, fmt.Errorf("seed files %s and %s: %w", ref.path, c.path, ErrSeedMismatch)
		}
	}

	primary := &copies[0]
	switch {
	case ref == nil && len(unreadable) > 0:
		// The unreadable copy may hold this node's identity: do not replace it.
		return Seed{}, fmt.Errorf("no seed file and mirror %s unreadable: %w", unreadable[0], ErrSeedUnavailable)
	case ref == nil: // first start
		seed, err := GenerateSeed()
		if err != nil {
			return Seed{}, err
		}
		f := SeedFile{Version: VersionRaw, Seed: seed}
		raw, _ := f.Marshal()
		if err := writeFileAtomic(primary.path, raw, false); err != nil {
			return Seed{}, err
		}
		*primary = seedCopy{path: primary.path, exists: true, raw: raw, file: f, mode: SeedFileMode}
		l.log.InfoContext(ctx, "seed created", "path", primary.path, "node_id", NewKeyPair(seed).ID())
	case !primary.exists: // restore from a mirror
		raw := canonical(*ref)
		if err := writeFileAtomic(primary.path, raw, false); err != nil {
			return Seed{}, err
		}
		*primary = seedCopy{path: primary.path, exists: true, raw: raw, file: ref.file, mode: SeedFileMode}
		l.log.WarnContext(ctx, "seed file missing, restored from mirror", "path", primary.path, "mirror", ref.path)
	case primary.file.Version == VersionLegacy:
		raw := canonical(*primary)
		if err := writeFileAtomic(primary.path, raw, true); err != nil {
			return Seed{}, err
		}
		primary.raw, primary.file.Version, primary.mode = raw, VersionRaw, SeedFileMode
		l.log.InfoContext(ctx, "legacy seed file upgraded", "path", primary.path, "version", VersionRaw)
	}
	if err := fixMode(*primary); err != nil {
		return Seed{}, err
	}

	for _, c := range copies[1:] {
		l.syncMirror(ctx, c, primary.raw)
	}
	return primary.file.Seed, nil
}

// syncMirror writes a missing or legacy mirror and fixes its mode. A mirror
// is a convenience: failures are warnings.
func (l loader) syncMirror(ctx context.Context, c seedCopy, raw []byte) {
	var err error
	switch {
	case !c.exists:
		err = writeFileAtomic(c.path, raw, false)
		if err == nil {
			l.log.InfoContext(ctx, "seed mirror written", "path", c.path)
		}
	case c.file.Version == VersionLegacy:
		err = writeFileAtomic(c.path, canonical(c), true)
		if err == nil {
			l.log.InfoContext(ctx, "legacy seed mirror upgraded", "path", c.path)
		}
	default:
		err = fixMode(c)
	}
	if err != nil {
		l.log.WarnContext(ctx, "cannot update seed mirror", "path", c.path, "err", err)
	}
}

// readCopy reads one copy; a missing file is a copy that does not exist.
func readCopy(path string) (seedCopy, error) {
	c := seedCopy{path: path}
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("seed file %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return c, fmt.Errorf("seed file %s is not a regular file: %w", path, ErrSeedCorrupt)
	}
	c.raw, err = os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("seed file %s: %w", path, err)
	}
	c.file, err = ParseSeedFile(c.raw)
	if err != nil {
		return c, fmt.Errorf("seed file %s: %w", path, err)
	}
	c.exists, c.mode = true, info.Mode().Perm()
	return c, nil
}

// canonical returns the bytes to write for a copy: a legacy seed under
// "1.0.0", any other file as it is.
func canonical(c seedCopy) []byte {
	if c.file.Version == VersionLegacy {
		raw, _ := SeedFile{Version: VersionRaw, Seed: c.file.Seed}.Marshal()
		return raw
	}
	return c.raw
}

// fixMode removes group and other permission bits from an existing copy.
func fixMode(c seedCopy) error {
	if c.mode&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(c.path, c.mode&^0o077); err != nil {
		return fmt.Errorf("seed file %s: %w", c.path, err)
	}
	return nil
}
