package network_test

import (
	"os"
	"testing"

	"github.com/zos-go/zos/pkg/network/wgdev"
)

// TestMain lets the test binary play zos-wg ("<test binary> zos-wg flags…"),
// so root tests run real userspace WireGuard device processes without
// building cmd/zos-wg.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "zos-wg" {
		os.Exit(wgdev.Main(os.Args[2:], os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "zosd" {
		os.Exit(agentMain(os.Args[2:]))
	}
	os.Exit(m.Run())
}
