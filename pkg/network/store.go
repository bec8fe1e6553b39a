package network

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/zos-go/zos/internal/atomicfile"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/types"
)

// ErrBadNetworkFile is wrapped when a cached network file cannot be read.
var ErrBadNetworkFile = errors.New("bad network file")

// EncodeNetResource returns the cache file form of nr: the JSON string of
// pkg.NetworkSchemaLatestVersion followed by the NetResource JSON.
func EncodeNetResource(nr pkg.NetResource) ([]byte, error) {
	v, err := json.Marshal(pkg.NetworkSchemaLatestVersion.String())
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(nr)
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", nr.NetID, err)
	}
	return append(append(v, '\n'), body...), nil
}

// DecodeNetResource reads a cache file (spec §1). A file starting with a
// JSON version string is versioned: 2.x holds a NetResource; 1.x holds a
// whole pkg.Network, of which the resource of nodeID is returned. A file
// without a version (0.0.0) holds a NetResource. Errors wrap
// ErrBadNetworkFile.
func DecodeNetResource(b []byte, nodeID string) (pkg.NetResource, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	version := types.Version{}
	var body io.Reader = bytes.NewReader(b)
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 && t[0] == '"' {
		var vs string
		if err := dec.Decode(&vs); err != nil {
			return pkg.NetResource{}, fmt.Errorf("version: %w", ErrBadNetworkFile)
		}
		v, err := types.ParseVersion(vs)
		if err != nil {
			return pkg.NetResource{}, fmt.Errorf("version %q: %w", vs, ErrBadNetworkFile)
		}
		version = v
		body = bytes.NewReader(b[dec.InputOffset():])
	}
	dec = json.NewDecoder(body)
	var nr pkg.NetResource
	switch {
	case version.Major == 1:
		var n pkg.Network
		if err := dec.Decode(&n); err != nil {
			return pkg.NetResource{}, fmt.Errorf("network v1: %v: %w", err, ErrBadNetworkFile)
		}
		i := slices.IndexFunc(n.NetResources, func(r pkg.NetResource) bool { return r.NodeID == nodeID })
		if i < 0 {
			return pkg.NetResource{}, fmt.Errorf("network v1 %s has no resource for node %s: %w", n.NetID, nodeID, ErrBadNetworkFile)
		}
		nr = n.NetResources[i]
		if nr.NetID == "" {
			nr.NetID = n.NetID
		}
		if nr.Name == "" {
			nr.Name = n.Name
		}
		if nr.NetworkIPRange.Nil() {
			nr.NetworkIPRange = n.IPRange
		}
	case version.Major == 0 || version.Major == 2:
		if err := dec.Decode(&nr); err != nil {
			return pkg.NetResource{}, fmt.Errorf("network resource: %v: %w", err, ErrBadNetworkFile)
		}
	default:
		return pkg.NetResource{}, fmt.Errorf("unknown version %s: %w", version, ErrBadNetworkFile)
	}
	if dec.More() {
		return pkg.NetResource{}, fmt.Errorf("trailing data: %w", ErrBadNetworkFile)
	}
	return nr, nil
}

// nrStore keeps network resources as files <dir>/<netid>.
type nrStore struct {
	dir    string
	nodeID string
}

func (s nrStore) path(id pkg.NetID) string { return filepath.Join(s.dir, string(id)) }

// Get returns the stored resource, or an error wrapping ErrUnknownNetwork.
func (s nrStore) Get(id pkg.NetID) (pkg.NetResource, error) {
	if checkName(string(id), "n-") != nil {
		return pkg.NetResource{}, fmt.Errorf("network %q: %w", id, ErrUnknownNetwork)
	}
	b, err := os.ReadFile(s.path(id))
	if errors.Is(err, os.ErrNotExist) {
		return pkg.NetResource{}, fmt.Errorf("network %s: %w", id, ErrUnknownNetwork)
	}
	if err != nil {
		return pkg.NetResource{}, fmt.Errorf("network %s: %w", id, err)
	}
	nr, err := DecodeNetResource(b, s.nodeID)
	if err != nil {
		return pkg.NetResource{}, fmt.Errorf("network %s: %w", id, err)
	}
	return nr, nil
}

// Put stores nr atomically (0600: it holds the encrypted private key).
func (s nrStore) Put(nr pkg.NetResource) error {
	b, err := EncodeNetResource(nr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("network store: %w", err)
	}
	return atomicfile.WriteFile(s.path(nr.NetID), b, 0o600)
}

// Delete removes the stored resource; a missing one is not an error.
func (s nrStore) Delete(id pkg.NetID) error {
	if err := os.Remove(s.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("network %s: %w", id, err)
	}
	return atomicfile.SyncDir(s.dir)
}

// List returns the ids of the stored resources (temporary files skipped).
func (s nrStore) List() ([]pkg.NetID, error) {
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("network store: %w", err)
	}
	var ids []pkg.NetID
	for _, e := range entries {
		if e.Type().IsRegular() && checkName(e.Name(), "n-") == nil {
			ids = append(ids, pkg.NetID(e.Name()))
		}
	}
	return ids, nil
}
