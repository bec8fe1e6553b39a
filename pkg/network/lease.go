package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/zos-go/zos/internal/atomicfile"
	"github.com/zos-go/zos/pkg"
)

// ndmz addressing: network resources get an IPv4 of 100.127.0.0/16 on
// br-ndmz; the ndmz itself is 100.127.0.1.
var (
	ndmzNet  = netip.MustParsePrefix("100.127.0.0/16")
	ndmzGW4  = netip.MustParseAddr("100.127.0.1")
	ndmzGW6  = netip.MustParseAddr("fe80::1")
	ndmzTop  = netip.MustParseAddr("100.127.255.254")
	ndmzLow  = netip.MustParseAddr("100.127.0.2")
	ndmzULA  = netip.MustParsePrefix("fd00::1/64")
	ndmzLL   = netip.MustParsePrefix("fe80::1/64")
	ndmzTon4 = netip.MustParsePrefix("100.127.0.1/16")
)

// leaseStore keeps ndmz IPv4 leases as files <dir>/<ip> holding the net id
// (the layout of CNI's host-local store), so a lease survives restarts and is
// reused by the same network resource.
type leaseStore struct{ dir string }

// Acquire returns the lease of id, allocating the lowest free address when
// it has none.
func (s leaseStore) Acquire(id pkg.NetID) (netip.Addr, error) {
	held, err := s.all()
	if err != nil {
		return netip.Addr{}, err
	}
	for ip, owner := range held {
		if owner == id {
			return ip, nil
		}
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return netip.Addr{}, fmt.Errorf("ndmz lease: %w", err)
	}
	for ip := ndmzLow; ip.Compare(ndmzTop) <= 0; ip = ip.Next() {
		if _, used := held[ip]; used {
			continue
		}
		f, err := os.OpenFile(filepath.Join(s.dir, ip.String()), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return netip.Addr{}, fmt.Errorf("ndmz lease: %w", err)
		}
		_, werr := f.WriteString(string(id))
		serr := f.Sync()
		cerr := f.Close()
		if err := errors.Join(werr, serr, cerr); err != nil {
			_ = os.Remove(f.Name())
			return netip.Addr{}, fmt.Errorf("ndmz lease: %w", err)
		}
		return ip, atomicfile.SyncDir(s.dir)
	}
	return netip.Addr{}, fmt.Errorf("ndmz lease for %s: no free address", id)
}

// Release frees the leases of id.
func (s leaseStore) Release(id pkg.NetID) error {
	held, err := s.all()
	if err != nil {
		return err
	}
	for ip, owner := range held {
		if owner == id {
			if err := os.Remove(filepath.Join(s.dir, ip.String())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("ndmz lease: %w", err)
			}
		}
	}
	return nil
}

// all returns every lease (an empty or unreadable file holds nothing and is
// removed: a crash between create and write).
func (s leaseStore) all() (map[netip.Addr]pkg.NetID, error) {
	out := map[netip.Addr]pkg.NetID{}
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ndmz leases: %w", err)
	}
	for _, e := range entries {
		ip, err := netip.ParseAddr(e.Name())
		if err != nil || !ndmzNet.Contains(ip) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		owner := strings.TrimSpace(string(b))
		if err != nil || owner == "" {
			_ = os.Remove(filepath.Join(s.dir, e.Name()))
			continue
		}
		out[ip] = pkg.NetID(owner)
	}
	return out, nil
}
