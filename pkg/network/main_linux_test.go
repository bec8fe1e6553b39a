package network_test

import (
	"io"
	"net"
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
	if len(os.Args) > 3 && os.Args[1] == "uapi-proxy" {
		os.Exit(uapiProxy(os.Args[2], os.Args[3]))
	}
	if len(os.Args) > 1 && os.Args[1] == "zosd" {
		os.Exit(agentMain(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// uapiProxy serves the unix socket listen by forwarding each connection to
// the socket target (the benchmark's Debian wireguard-go names its control
// socket after its interface; the module expects another name).
func uapiProxy(listen, target string) int {
	_ = os.Remove(listen)
	l, err := net.Listen("unix", listen)
	if err != nil {
		return 1
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return 1
		}
		go func() {
			defer c.Close()
			u, err := net.Dial("unix", target)
			if err != nil {
				return
			}
			defer u.Close()
			go func() { _, _ = io.Copy(u, c); u.(*net.UnixConn).CloseWrite() }()
			_, _ = io.Copy(c, u)
		}()
	}
}
