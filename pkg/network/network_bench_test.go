//go:build linux

package network_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg"
)

// debianWG is a zos-wg stand-in that serves the device with Debian's
// wireguard-go binary instead of our library: the TUN and UDP socket are
// made in the socket namespace, the TUN is then moved into the network
// resource's namespace (the tun fd keeps working), and the UAPI socket is
// linked under the name the module expects. Same topology, other engine.
const debianWG = `#!/bin/bash
set -e
proxy=$1
shift
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name=$2;; --netns) nrns=$2;; --socket-netns) sockns=$2;; --uapi) uapi=$2;;
  esac
  shift 2
done
dir=/var/run/wireguard
nsenter --net="$sockns" wireguard-go -f "$name" &
pid=$!
trap 'kill $pid $ppid 2>/dev/null; rm -f "$dir/$uapi.sock"; wait' TERM INT
for i in $(seq 200); do [ -S "$dir/$name.sock" ] && break; sleep 0.05; done
nsenter --net="$sockns" ip link set dev "$name" netns "$(basename "$nrns")"
"$proxy" uapi-proxy "$dir/$uapi.sock" "$dir/$name.sock" &
ppid=$!
wait $pid
`

// iperf measures TCP throughput from namespace client to server (an
// address in namespace srvNS) for d, in Gbit/s.
func iperf(b *testing.B, srvNS, server, client string, d time.Duration) float64 {
	b.Helper()
	port := fmt.Sprint(testutil.FreePort(b))
	srv := testutil.StartProcess(b, nil, "ip", "netns", "exec", srvNS, "iperf3", "-s", "-p", port)
	var r struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	// iperf3 -J exits 0 on errors: retry until the server answers.
	testutil.WaitFor(b, 15*time.Second, "iperf3 client", func() error {
		out, err := exec.Command("ip", "netns", "exec", client, "iperf3", "-c", server, "-p", port,
			"-t", fmt.Sprint(int(d.Seconds())), "-J").Output()
		if err != nil && len(out) == 0 {
			return err
		}
		r.Error = ""
		if err := json.Unmarshal(out, &r); err != nil {
			return fmt.Errorf("iperf3 output: %v: %s", err, out)
		}
		if r.Error != "" || r.End.SumReceived.BitsPerSecond == 0 {
			return fmt.Errorf("iperf3: %s", r.Error)
		}
		return nil
	})
	srv.Stop(time.Second)
	return r.End.SumReceived.BitsPerSecond / 1e9
}

// wgPair runs a two-node network with the given WireGuard command and
// returns the two container namespaces (server address 10.20.2.5).
func wgPair(b *testing.B, cmd []string, tag string) (string, string) {
	g := newGrid(b, 2)
	a, c := g.nodes[0], g.nodes[1]
	for _, nd := range g.nodes {
		if cmd != nil {
			nd.cfg.WGCommand = cmd
		}
		nd.start()
	}
	ra, rc := pair(a, c, pkg.NetID(tag+"A"))
	rc.NetID = pkg.NetID(tag + "B")
	if _, err := a.mod.CreateNR(ra); err != nil {
		b.Fatal(err)
	}
	if _, err := c.mod.CreateNR(rc); err != nil {
		b.Fatal(err)
	}
	m1, err := a.mod.Join(ra.NetID, "ca", pkg.ContainerNetworkConfig{IPs: []string{"10.20.1.5"}})
	if err != nil {
		b.Fatal(err)
	}
	m2, err := c.mod.Join(rc.NetID, "cb", pkg.ContainerNetworkConfig{IPs: []string{"10.20.2.5"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = a.mod.Leave(ra.NetID, "ca"); _ = c.mod.Leave(rc.NetID, "cb") })
	testutil.WaitFor(b, 20*time.Second, "ping over wireguard", func() error { return ping(m1.Namespace, "10.20.2.5", 1, time.Second) })
	return m1.Namespace, m2.Namespace
}

// BenchmarkRowIperfWireGuard: TCP throughput between containers on two
// simulated nodes through a network resource (userspace WireGuard, our
// wireguard-go library with TUN offloads), against the same topology driven
// by Debian's wireguard-go binary (baseline), and against a plain veth pair.
func BenchmarkRowIperfWireGuard(b *testing.B) {
	testutil.RequireRoot(b, "ip", "nft", "ping", "iperf3", "wireguard-go", "nsenter")
	const d = 5 * time.Second
	var ours, debian, veth float64
	for b.Loop() {
		func() {
			cli, srv := wgPair(b, nil, "Ours")
			ours = iperf(b, srv, "10.20.2.5", cli, d)
		}()
		func() {
			script := filepath.Join(testutil.TempDir(b), "debian-wg")
			if err := os.WriteFile(script, []byte(debianWG), 0o755); err != nil {
				b.Fatal(err)
			}
			exe, _ := os.Executable()
			cli, srv := wgPair(b, []string{script, exe}, "Deb")
			debian = iperf(b, srv, "10.20.2.5", cli, d)
		}()
		func() {
			x, y := testutil.NetNS(b), testutil.NetNS(b)
			run(b, "ip", "-n", x, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", y)
			run(b, "ip", "-n", x, "addr", "add", "10.99.0.1/24", "dev", "eth0")
			run(b, "ip", "-n", y, "addr", "add", "10.99.0.2/24", "dev", "eth0")
			run(b, "ip", "-n", x, "link", "set", "eth0", "up")
			run(b, "ip", "-n", y, "link", "set", "eth0", "up")
			veth = iperf(b, y, "10.99.0.2", x, d)
		}()
	}
	b.ReportMetric(ours, "Gbit/s")
	b.ReportMetric(debian, "baseline-Gbit/s")
	b.ReportMetric(veth, "veth-Gbit/s")
	b.ReportMetric(ours/veth, "ratio-to-veth")
}
