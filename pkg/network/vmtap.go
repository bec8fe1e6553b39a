package network

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/zos-go/zos/internal/atomicfile"
	"github.com/zos-go/zos/pkg"
)

// VMTaps gives every VM its own tap on a user network, so a node runs any
// number of VMs per network (QEMU cannot share a tap, and the seed's
// SetupTap makes one per network). It is not part of pkg.Networker; Module
// and networktest.Fake implement it.
type VMTaps interface {
	// SetupVMTap makes the tap of VM vm on network id, hooked to the
	// network's bridge and up, and returns its name (VMTapName). It is
	// idempotent: the tap of the same VM that exists already (or was left
	// half made by a crash) is attached, brought up and returned.
	SetupVMTap(id pkg.NetID, vm string) (string, error)
	// VMTapExists reports whether the tap of VM vm on network id exists.
	VMTapExists(id pkg.NetID, vm string) (bool, error)
	// RemoveVMTap removes the tap of VM vm on network id; nil when it does
	// not exist.
	RemoveVMTap(id pkg.NetID, vm string) error
}

var _ VMTaps = (*Module)(nil)

// vmTapPrefix starts every VM tap name. Seed taps are "t-<netid>" and net
// ids hold only letters and digits, so no VM tap is ever named like one.
const vmTapPrefix = "tv-"

// maxVMNameLen bounds the VM name given to the VM tap methods.
const maxVMNameLen = 64

var vmTapEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// VMTapName returns the name of the tap of VM vm on network id: "tv-" and
// the first 12 characters of the lowercase base32 SHA-256 of the net id, a
// NUL byte and the VM name (60 bits: 15 characters, the kernel's limit).
// Anyone knowing the network and the VM derives it.
func VMTapName(id pkg.NetID, vm string) string {
	h := sha256.Sum256([]byte(string(id) + "\x00" + vm))
	return vmTapPrefix + vmTapEncoding.EncodeToString(h[:])[:maxIfaceLen-len(vmTapPrefix)]
}

// CheckVMTap checks the arguments of the VM tap methods: a net id of
// letters and digits that fits interface names, and a VM name as the VM
// module accepts it: 1 to 64 letters, digits, '_', '.' and '-', the last
// two not first. Errors wrap ErrInvalidName or ErrNameTooLong.
func CheckVMTap(id pkg.NetID, vm string) error {
	if err := checkName(string(id), "n-"); err != nil {
		return fmt.Errorf("vm tap: network %q: %w", id, err)
	}
	if vm == "" {
		return fmt.Errorf("vm tap: empty vm name: %w", ErrInvalidName)
	}
	for i, r := range vm {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '_' || i > 0 && (r == '.' || r == '-')
		if !ok {
			return fmt.Errorf("vm tap: vm name %q: character %q: %w", vm, r, ErrInvalidName)
		}
	}
	if len(vm) > maxVMNameLen {
		return fmt.Errorf("vm tap: vm name %q is over %d characters: %w", vm, maxVMNameLen, ErrNameTooLong)
	}
	return nil
}

// vmTapRecord says which VM of which network owns a VM tap. The record is
// written before the tap is made and removed after it is gone, so a crash
// at any moment leaves a record for every tap that may exist: deletion of
// the network and the start-up reconcile find them all.
type vmTapRecord struct {
	NetID pkg.NetID `json:"net_id"`
	VM    string    `json:"vm"`
}

// ErrBadVMTapRecord is wrapped when a VM tap record cannot be read.
var ErrBadVMTapRecord = errors.New("bad vm tap record")

// decodeVMTapRecord parses the record stored under the tap name tap.
func decodeVMTapRecord(tap string, b []byte) (vmTapRecord, error) {
	var r vmTapRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return vmTapRecord{}, fmt.Errorf("vm tap %s: %v: %w", tap, err, ErrBadVMTapRecord)
	}
	if err := CheckVMTap(r.NetID, r.VM); err != nil {
		return vmTapRecord{}, fmt.Errorf("vm tap %s: %v: %w", tap, err, ErrBadVMTapRecord)
	}
	if VMTapName(r.NetID, r.VM) != tap {
		return vmTapRecord{}, fmt.Errorf("vm tap %s: record of %s: %w", tap, VMTapName(r.NetID, r.VM), ErrBadVMTapRecord)
	}
	return r, nil
}

// vmTapStore keeps the records as files <dir>/<tap name>.
type vmTapStore struct{ dir string }

func (s vmTapStore) path(tap string) string { return filepath.Join(s.dir, tap) }

// Get returns the record of tap; found is false when there is none.
func (s vmTapStore) Get(tap string) (r vmTapRecord, found bool, err error) {
	b, err := os.ReadFile(s.path(tap))
	if errors.Is(err, os.ErrNotExist) {
		return vmTapRecord{}, false, nil
	}
	if err != nil {
		return vmTapRecord{}, false, fmt.Errorf("vm tap %s: %w", tap, err)
	}
	r, err = decodeVMTapRecord(tap, b)
	return r, err == nil, err
}

// Put stores the record of r's tap atomically.
func (s vmTapStore) Put(r vmTapRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("vm tap store: %w", err)
	}
	return atomicfile.WriteFile(s.path(VMTapName(r.NetID, r.VM)), b, 0o600)
}

// Delete removes the record of tap; a missing one is not an error.
func (s vmTapStore) Delete(tap string) error {
	if err := os.Remove(s.path(tap)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("vm tap %s: %w", tap, err)
	}
	return atomicfile.SyncDir(s.dir)
}

// All returns every record by tap name. Unreadable records are returned
// as errors (joined) and left alone.
func (s vmTapStore) All() (map[string]vmTapRecord, error) {
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vm tap store: %w", err)
	}
	out := map[string]vmTapRecord{}
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), vmTapPrefix) {
			continue // temporary files of atomicfile
		}
		r, found, err := s.Get(e.Name())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if found {
			out[e.Name()] = r
		}
	}
	return out, errors.Join(errs...)
}
