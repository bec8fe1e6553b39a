package identity

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/zos-go/zos/internal/atomicfile"
)

// Seed file versions.
const (
	// VersionLegacy is the Version of a parsed legacy file: 32 raw bytes with
	// no header, or under the "1.1.0" header as zos v0.4.9 wrongly upgraded
	// legacy files. A node rewrites such files under "1.0.0".
	VersionLegacy = ""
	// VersionRaw is the version of a file holding "1.0.0" + the 32 raw seed bytes.
	VersionRaw = "1.0.0"
	// VersionMnemonic is the version of a file holding "1.1.0" + JSON
	// {"mnemonic": "<24 words>", "threebotid": <int>} (user identities).
	VersionMnemonic = "1.1.0"
)

// SeedFileMode is the permission of seed files written by this package.
const SeedFileMode fs.FileMode = 0o600

// maxVersionLen bounds the JSON-quoted version header that is looked for.
const maxVersionLen = 64

var semverRE = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

// SeedFile is the decoded content of a seed file.
type SeedFile struct {
	// Version is VersionLegacy, VersionRaw or VersionMnemonic.
	Version string
	// Seed is the seed the file holds.
	Seed Seed
	// ThreebotID is the user's id ("threebotid") of a VersionMnemonic file;
	// nodes ignore it.
	ThreebotID int64
}

// mnemonicPayload is the JSON payload of a VersionMnemonic file.
type mnemonicPayload struct {
	Mnemonic   *string `json:"mnemonic"`
	ThreebotID int64   `json:"threebotid"`
}

// ParseSeedFile decodes the bytes of a seed file (see the package doc for the
// formats). Every error matches ErrInvalidSeed and one of ErrSeedCorrupt,
// ErrSeedLength, ErrSeedVersion or ErrMnemonic; the error text never holds
// seed material.
func ParseSeedFile(data []byte) (SeedFile, error) {
	if ver, payload, ok := splitVersion(data); ok {
		switch ver {
		case VersionRaw:
			s, err := SeedFromBytes(payload)
			if err != nil {
				return SeedFile{}, fmt.Errorf("seed file version %s: %w", ver, err)
			}
			return SeedFile{Version: VersionRaw, Seed: s}, nil
		case VersionMnemonic:
			if len(payload) == SeedSize {
				// v0.4.9 upgraded legacy files to "1.1.0" + raw seed. No
				// JSON payload of a 24-word mnemonic is this short, so the
				// node's seed is recovered, as legacy to be rewritten.
				s, _ := SeedFromBytes(payload)
				return SeedFile{Version: VersionLegacy, Seed: s}, nil
			}
			var p mnemonicPayload
			if err := json.Unmarshal(payload, &p); err != nil {
				return SeedFile{}, fmt.Errorf("seed file version %s: json payload: %w", ver, ErrMnemonic)
			}
			if p.Mnemonic == nil {
				return SeedFile{}, fmt.Errorf("seed file version %s: no mnemonic: %w", ver, ErrMnemonic)
			}
			s, err := SeedFromMnemonic(*p.Mnemonic)
			if err != nil {
				return SeedFile{}, fmt.Errorf("seed file version %s: %w", ver, err)
			}
			return SeedFile{Version: VersionMnemonic, Seed: s, ThreebotID: p.ThreebotID}, nil
		default:
			return SeedFile{}, fmt.Errorf("seed file version %q: %w", ver, ErrSeedVersion)
		}
	}
	switch {
	case len(data) == SeedSize:
		s, _ := SeedFromBytes(data)
		return SeedFile{Version: VersionLegacy, Seed: s}, nil
	case len(data) < SeedSize:
		return SeedFile{}, fmt.Errorf("seed file of %d bytes without version: %w", len(data), ErrSeedLength)
	default:
		return SeedFile{}, fmt.Errorf("seed file of %d bytes without version: %w", len(data), ErrSeedCorrupt)
	}
}

// splitVersion returns the version of a file that starts with a JSON-quoted
// semantic version, and the bytes after it.
func splitVersion(data []byte) (version string, payload []byte, ok bool) {
	if len(data) == 0 || data[0] != '"' {
		return "", nil, false
	}
	head := data[1:min(len(data), maxVersionLen+2)]
	end := bytes.IndexByte(head, '"')
	if end < 0 || !semverRE.Match(head[:end]) {
		return "", nil, false
	}
	return string(head[:end]), data[end+2:], true
}

// Marshal encodes the file: VersionLegacy and VersionRaw both encode as
// "1.0.0" + raw seed (a legacy file is never written), VersionMnemonic as
// "1.1.0" + JSON with the seed's mnemonic. Another version is ErrSeedVersion.
func (f SeedFile) Marshal() ([]byte, error) {
	switch f.Version {
	case VersionLegacy, VersionRaw:
		out := make([]byte, 0, len(VersionRaw)+2+SeedSize)
		out = append(out, '"')
		out = append(out, VersionRaw...)
		out = append(out, '"')
		return append(out, f.Seed[:]...), nil
	case VersionMnemonic:
		m := f.Seed.Mnemonic()
		payload, err := json.Marshal(mnemonicPayload{Mnemonic: &m, ThreebotID: f.ThreebotID})
		if err != nil {
			return nil, fmt.Errorf("seed file payload: %w", err)
		}
		return append([]byte(`"`+VersionMnemonic+`"`), payload...), nil
	default:
		return nil, fmt.Errorf("seed file version %q: %w", f.Version, ErrSeedVersion)
	}
}

// ReadSeedFile reads and decodes the seed file at path. A missing file is an
// error matching fs.ErrNotExist; bad content matches ErrInvalidSeed.
func ReadSeedFile(path string) (SeedFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return SeedFile{}, fmt.Errorf("seed file %s: %w", path, err)
	}
	f, err := ParseSeedFile(data)
	if err != nil {
		return SeedFile{}, fmt.Errorf("seed file %s: %w", path, err)
	}
	return f, nil
}

// WriteSeedFile writes f to path atomically with mode 0600 (temp file, fsync,
// rename, fsync of the directory), replacing any file there. Missing parent
// directories are created with mode 0700.
func WriteSeedFile(path string, f SeedFile) error {
	data, err := f.Marshal()
	if err != nil {
		return fmt.Errorf("seed file %s: %w", path, err)
	}
	return writeFileAtomic(path, data, true)
}

// CreateSeedFile is WriteSeedFile that never replaces an existing file: it
// fails with an error matching fs.ErrExist instead (the file is linked into
// place, so two concurrent creators cannot both win).
func CreateSeedFile(path string, f SeedFile) error {
	data, err := f.Marshal()
	if err != nil {
		return fmt.Errorf("seed file %s: %w", path, err)
	}
	return writeFileAtomic(path, data, false)
}

// tempPrefix is the name prefix of the temp files written next to path.
func tempPrefix(path string) string { return "." + filepath.Base(path) + ".tmp-" }

// writeFileAtomic writes data to path with mode 0600, creating missing parent
// directories (0700). With replace it uses atomicfile.WriteFile (temp, fsync,
// rename, fsync dir); without, the fsynced temp file is linked to path, which
// fails with fs.ErrExist if path exists, and the directory is fsynced. On
// error path is unchanged and the temp file removed.
func writeFileAtomic(path string, data []byte, replace bool) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("seed file %s: %w", path, err)
	}
	if replace {
		if err := atomicfile.WriteFile(path, data, SeedFileMode); err != nil {
			return fmt.Errorf("seed file: %w", err)
		}
		return nil
	}
	tmp, err := os.CreateTemp(dir, tempPrefix(path)+"*")
	if err != nil {
		return fmt.Errorf("seed file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // the link, if made, keeps the data
	err = tmp.Chmod(SeedFileMode)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), path)
	}
	if err == nil {
		err = atomicfile.SyncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("seed file %s: %w", path, err)
	}
	return nil
}

// staleTempAge is how old a temp file must be before removeStaleTemps takes
// it for the leftover of a crash rather than a write in progress.
const staleTempAge = time.Minute

// removeStaleTemps removes temp files a crash left next to path and returns
// how many it removed.
func removeStaleTemps(path string, now time.Time) (int, error) {
	entries, err := os.ReadDir(filepath.Dir(path))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return 0, nil // nothing there; reading the copy reports the problem
	}
	if err != nil {
		return 0, fmt.Errorf("seed dir of %s: %w", path, err)
	}
	n, prefix := 0, tempPrefix(path)
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		if info, err := e.Info(); err != nil || now.Sub(info.ModTime()) < staleTempAge {
			continue
		}
		if err := os.Remove(filepath.Join(filepath.Dir(path), e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, fmt.Errorf("stale seed temp file: %w", err)
		}
		n++
	}
	return n, nil
}
