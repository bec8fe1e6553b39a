// Package types holds the small value types that the seed API (package
// github.com/zos-go/zos/pkg) puts on the wire:
//
//   - IPNet, an IP network that encodes as CIDR text ("10.1.0.0/16"), the
//     form used by network resources, peers and the explorer;
//   - Version, a semantic version ("2.0.0") used to tag cached network
//     objects and to report the node's software version.
//
// Both types are plain values, safe to copy and to use from several
// goroutines at once as long as nobody mutates them.
package types
