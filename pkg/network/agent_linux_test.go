package network_test

import (
	"github.com/vishvananda/netlink"

	"github.com/zos-go/zos/internal/netns"
)

// linkExists reports whether link name exists in namespace ns.
func linkExists(ns, name string) (bool, error) {
	var ok bool
	err := netns.Do(ns, func() error {
		_, err := netlink.LinkByName(name)
		ok = err == nil
		return nil
	})
	return ok, err
}

func agentMain(args []string) int { return 2 }
