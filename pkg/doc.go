// Package pkg is the seed API of the node: the types, interfaces, constants,
// variables and error types of the original Zero-OS v0.4 root package, with
// the same names, fields and method signatures, so that every capability
// package (storage, network, container, vm, flist, identity, monitor,
// provision) and every client speaks the same vocabulary.
//
// The package holds no logic beyond a few small methods of the seed:
// RaidProfile.Validate, NetResource.Valid, the Error methods of
// ErrNotEnoughSpace and ErrInvalidDeviceType, StrIdentifier.Identity and
// the String methods of DiskIOCountersStat and TimesStat. Implementations
// live in the sub-packages; they are reached through the interfaces here.
//
// The seed's interfaces are frozen as they were (no context on most
// methods, error structs named ErrXxx). Everything new follows STYLE.md.
//
// # Deviations from the original
//
//   - ProvisionCounters keeps the original's misspelled struct tag
//     `jons:"volume"` on Volume, so that field encodes to JSON under the key
//     "Volume" exactly as the original node sent it (zui and other readers
//     of the counters stream expect that); the other fields use lower-case
//     keys. Changing it would silently change the wire format.
//   - The original depended on third-party types we replace with our own or
//     with their maintained successors: types.IPNet and types.Version
//     (package github.com/zos-go/zos/pkg/types) stand in for
//     network/types.IPNet, versioned.Version and blang/semver.Version (the
//     latter in VersionMonitor); gopsutil v4 replaces gopsutil v2 in the
//     statistics types, so their embedded fields follow gopsutil v4.
//   - RaidProfile.Validate wraps errors.ErrUnsupported and NetResource.Valid
//     returns a *FieldError naming the faulty field (the original returned
//     plain strings). FieldError and ErrFieldRequired are the only exported
//     names not in the seed.
//   - Usage counts bytes as uint64 (the v0.4 wire form).
//   - RaidProfile.Validate accepts Raid0; the original declared it but
//     refused it.
package pkg
