package gridtypes

import (
	"fmt"
	"strconv"
)

// WorkloadType names the kind of a reservation's workload. Its JSON form is
// the string constant.
type WorkloadType string

// The workload types a node provisions.
const (
	// TypeContainer is a container started from an flist.
	TypeContainer WorkloadType = "container"
	// TypeVolume is a btrfs volume that containers mount.
	TypeVolume WorkloadType = "volume"
	// TypeZDB is a 0-db namespace.
	TypeZDB WorkloadType = "zdb"
	// TypeNetwork is a network resource: this node's part of a user's
	// private WireGuard network (the original's "network_resource").
	TypeNetwork WorkloadType = "network"
	// TypeKubernetes is a k3os virtual machine.
	TypeKubernetes WorkloadType = "kubernetes"
	// TypePublicIP reserves one of the farm's public IPv4 addresses.
	TypePublicIP WorkloadType = "public_ip"
	// TypeDebug ships the node's logs to a redis channel.
	TypeDebug WorkloadType = "debug"
	// TypeVM is a generic virtual machine booted from an flist.
	TypeVM WorkloadType = "vm"
)

// WorkloadTypes lists every workload type in provision order: the order in
// which a node provisions independent workloads that arrive together
// (networks before what joins them, volumes before containers that mount
// them).
func WorkloadTypes() []WorkloadType {
	return []WorkloadType{TypeDebug, TypeNetwork, TypeZDB, TypeVolume, TypeContainer, TypeKubernetes, TypeVM, TypePublicIP}
}

// Order is the position of t in WorkloadTypes, or len(WorkloadTypes()) for
// an unknown type.
func (t WorkloadType) Order() int {
	all := WorkloadTypes()
	for i, x := range all {
		if x == t {
			return i
		}
	}
	return len(all)
}

// Valid returns nil for a known type, else an error wrapping
// ErrUnknownWorkloadType.
func (t WorkloadType) Valid() error {
	if t.Order() == len(WorkloadTypes()) {
		return fmt.Errorf("workload type %q: %w", string(t), ErrUnknownWorkloadType)
	}
	return nil
}

// NextAction is the lifecycle step of a reservation on the explorer. JSON
// encodes it as its name ("deploy"); the original used integers.
type NextAction uint8

// The lifecycle steps, in the original's numbering.
const (
	// ActionCreate: submitted, not yet checked.
	ActionCreate NextAction = iota
	// ActionSign: waiting for the provision signature quorum.
	ActionSign
	// ActionPay: waiting for payment (unused: zos has no payments).
	ActionPay
	// ActionDeploy: delivered to the node, which deploys it.
	ActionDeploy
	// ActionDelete: delivered to the node, which removes it.
	ActionDelete
	// ActionInvalid: refused after submission.
	ActionInvalid
	// ActionDeleted: the node confirmed removal.
	ActionDeleted
	// ActionMigrated: replaced by another reservation.
	ActionMigrated
)

var actionNames = [...]string{"create", "sign", "pay", "deploy", "delete", "invalid", "deleted", "migrated"}

// String returns the action's name, or "action(N)" when unknown.
func (a NextAction) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// MarshalText encodes the action's name; unknown values are an error.
func (a NextAction) MarshalText() ([]byte, error) {
	if int(a) >= len(actionNames) {
		return nil, fmt.Errorf("next action %d: %w", a, ErrInvalidEnum)
	}
	return []byte(actionNames[a]), nil
}

// UnmarshalText parses an action name.
func (a *NextAction) UnmarshalText(b []byte) error {
	for i, n := range actionNames {
		if n == string(b) {
			*a = NextAction(i)
			return nil
		}
	}
	return fmt.Errorf("next action %q: %w", b, ErrInvalidEnum)
}

// ParseNextAction parses an action name.
func ParseNextAction(s string) (NextAction, error) {
	var a NextAction
	err := a.UnmarshalText([]byte(s))
	return a, err
}

// ResultState is the outcome a node reports for a reservation. JSON encodes
// it as its name ("ok").
type ResultState uint8

// Result states, in the original's numbering.
const (
	// StateError: the node failed to deploy the workload.
	StateError ResultState = iota
	// StateOK: the workload is deployed.
	StateOK
	// StateDeleted: the workload is removed from the node.
	StateDeleted
)

var stateNames = [...]string{"error", "ok", "deleted"}

// String returns the state's name.
func (s ResultState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText encodes the state's name; unknown values are an error.
func (s ResultState) MarshalText() ([]byte, error) {
	if int(s) >= len(stateNames) {
		return nil, fmt.Errorf("result state %d: %w", s, ErrInvalidEnum)
	}
	return []byte(stateNames[s]), nil
}

// UnmarshalText parses a state name.
func (s *ResultState) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = ResultState(i)
			return nil
		}
	}
	return fmt.Errorf("result state %q: %w", b, ErrInvalidEnum)
}

// DiskType is the kind of disk a workload's storage comes from; its values
// are those of pkg.DeviceType, so pkg.DeviceType(d) converts it.
type DiskType string

// Disk types.
const (
	// DiskSSD is solid-state storage (SRU).
	DiskSSD DiskType = "ssd"
	// DiskHDD is spinning-disk storage (HRU).
	DiskHDD DiskType = "hdd"
)

// valid reports whether d is a known disk type; empty is allowed only when
// allowEmpty (the workload then uses its documented default).
func (d DiskType) valid(allowEmpty bool) bool {
	return d == DiskSSD || d == DiskHDD || (allowEmpty && d == "")
}

// ZDBMode is the mode of a 0-db namespace; its values are those of
// pkg.ZDBMode.
type ZDBMode string

// 0-db modes.
const (
	// ZDBModeSeq is the sequential (append-only, key = position) mode.
	ZDBModeSeq ZDBMode = "seq"
	// ZDBModeUser is the key-value mode.
	ZDBModeUser ZDBMode = "user"
)

// SignAction names what a multi-signature signer approves.
type SignAction string

// The two signature requests of a reservation.
const (
	// SignProvision approves deploying the reservation.
	SignProvision SignAction = "provision"
	// SignDelete approves deleting the reservation.
	SignDelete SignAction = "delete"
)
