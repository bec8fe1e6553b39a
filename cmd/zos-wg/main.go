// Command zos-wg serves one userspace WireGuard device of a zos network
// resource (see package wgdev). zosd starts it under its supervisor as
// wg@<netid> when the kernel has no WireGuard:
//
//	zos-wg --name w-<netid> --netns /run/netns/n-<netid> --socket-netns <path> \
//	       --uapi w-<netid> --config <file> --address 100.64.3.1/16 --route 10.3.0.0/16
//
// --verbose adds wireguard-go's debug messages (handshakes, keepalives,
// timer expiries) to its log.
package main

import (
	"os"

	"github.com/zos-go/zos/pkg/network/wgdev"
)

func main() {
	os.Exit(wgdev.Main(os.Args[1:], os.Stderr))
}
