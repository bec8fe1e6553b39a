//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/devgrid"
	"github.com/zos-go/zos/internal/netns"
	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/internal/zosd"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/vm/vmtest"
	"github.com/zos-go/zos/pkg/zinit"
)

// webContainer is a busybox httpd on network "demo" serving the volume vol
// (when set) at 10.42.1.<host>.
func webContainer(fl string, host int, vol uint64) *gridtypes.Container {
	c := &gridtypes.Container{
		Flist:             fl,
		Entrypoint:        "/bin/httpd -f -p 80 -h /www",
		NetworkConnection: []gridtypes.NetworkConnection{{NetworkID: "demo", IPAddress: fmt.Sprintf("10.42.1.%d", host)}},
		Capacity:          gridtypes.ContainerCapacity{CPU: 1, Memory: 64},
	}
	if vol != 0 {
		c.Entrypoint = "/bin/httpd -f -p 80 -h /data"
		c.Volumes = []gridtypes.ContainerMount{{VolumeID: gwid(vol), Mountpoint: "/data"}}
	}
	return c
}

func demoNetwork(t testing.TB) *gridtypes.Network {
	k := wgKey(t)
	return &gridtypes.Network{
		Name: "demo", NetworkIPRange: "10.42.0.0/16", IPRange: "10.42.1.0/24",
		WireguardPrivateKeyEncrypted: k.String(), WireguardPublicKey: k.PublicKey().String(), WireguardListenPort: 51820,
	}
}

// TestPowerCut deploys a network, a volume written by its container, a 0-db
// namespace with data and a second container, cuts the node's power (every
// process killed, mounts and namespaces gone), boots it again and checks
// every workload is back with its data, without redeploying anything.
func TestPowerCut(t *testing.T) {
	testutil.RequireRoot(t, "wget")
	testutil.CheckLeaks(t)
	g := startGrid(t, 1)
	alice := g.newUser("alice")
	n1 := g.nodeID(0)
	fl := uploadBusybox(t, g, alice)

	netw := alice.deploy(n1, demoNetwork(t))
	vol := alice.deploy(n1, &gridtypes.Volume{Size: 1, Type: gridtypes.DiskSSD})
	zdb := alice.deploy(n1, &gridtypes.ZDB{Size: 1, Mode: gridtypes.ZDBModeUser, Password: "pw", DiskType: gridtypes.DiskHDD})
	for _, id := range []uint64{netw, vol} {
		alice.result(id, 2*time.Minute, gridtypes.StateOK)
	}
	ns := zdbNamespace(t, string(alice.result(zdb, 2*time.Minute, gridtypes.StateOK).Data))
	redisIn(t, g, "SELECT "+ns+" pw\nSET k before-the-cut\n")
	ct1 := alice.deploy(n1, webContainer(fl, 10, vol))
	ct2 := alice.deploy(n1, webContainer(fl, 11, 0))
	alice.result(ct1, 3*time.Minute, gridtypes.StateOK)
	alice.result(ct2, 3*time.Minute, gridtypes.StateOK)
	node := g.Nodes()[0]
	nrNS := node.Prefix + "n-" + gridtypes.NetworkID(alice.id, "demo")
	// Write into the volume from the host side of the node.
	writeIntoVolume(t, node.API, vol, "index.html", "kept-on-the-volume\n")
	waitCmd(t, time.Minute, "volume served before", func() (string, error) {
		return inNS(nrNS, "wget", "-q", "-O-", "-T", "2", "http://10.42.1.10/")
	})

	if err := g.PowerCut(0); err != nil {
		t.Fatalf("power cut: %v", err)
	}
	if out, err := inNS(g.InetNS(), "redis-cli", "-h", "10.99.1.2", "-p", "9900", "PING"); err == nil && strings.Contains(out, "PONG") {
		t.Fatal("0-db still answers after the power cut")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	if err := g.Boot(ctx, 0); err != nil {
		t.Fatalf("boot: %v", err)
	}
	node = g.Nodes()[0]

	waitCmd(t, 2*time.Minute, "container with the volume back", func() (string, error) {
		out, err := inNS(nrNS, "wget", "-q", "-O-", "-T", "2", "http://10.42.1.10/")
		if err == nil && !strings.Contains(out, "kept-on-the-volume") {
			err = os.ErrNotExist
		}
		return out, err
	})
	waitCmd(t, time.Minute, "second container back", func() (string, error) {
		return inNS(nrNS, "wget", "-q", "-O-", "-T", "2", "http://10.42.1.11/")
	})
	waitCmd(t, time.Minute, "0-db data back", func() (string, error) {
		out := redisIn(t, g, "SELECT "+ns+" pw\nGET k\n")
		if !strings.Contains(out, "before-the-cut") {
			return out, os.ErrNotExist
		}
		return out, nil
	})
	// Nothing was redeployed: each reservation has its original result.
	for _, id := range []uint64{netw, vol, zdb, ct1, ct2} {
		var w zosd.Workload
		if _, err := zosd.Get(t.Context(), node.API, "/workloads/"+itoa(id), &w); err != nil || w.State != "deployed" {
			t.Errorf("workload %d after boot: %+v %v", id, w, err)
		}
	}
	for _, id := range []uint64{ct1, ct2, zdb, vol, netw} {
		alice.remove(id)
	}
}

func redisIn(t testing.TB, g *grid, script string) string {
	t.Helper()
	cmd := exec.Command("nsenter", "--net="+netns.Path(g.InetNS()), "--", "redis-cli", "-h", "10.99.1.2", "-p", "9900")
	cmd.Stdin = strings.NewReader(script)
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// writeIntoVolume writes a file into a volume through the storage pool's
// mount on the node (as the container would).
func writeIntoVolume(t testing.TB, api string, vol uint64, name, content string) {
	t.Helper()
	matches, _ := globVolume(api, vol)
	if len(matches) != 1 {
		t.Fatalf("volume %d: found %v", vol, matches)
	}
	if err := os.WriteFile(matches[0]+"/"+name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func globVolume(api string, vol uint64) ([]string, error) {
	root := strings.TrimSuffix(api, "/run/zosd.sock")
	out, err := exec.Command("sh", "-c", "ls -d "+root+"/root/mnt/*/"+gwid(vol)).Output()
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(out)), nil
}

// TestChaosKillAgent runs 50 random deploy, update and delete operations
// (ZOS_CHAOS_OPS) while zosd is killed with SIGKILL at random moments. In
// the end every live reservation is deployed exactly once, every deleted
// one is gone, and the container and the VM that were never touched kept
// their processes.
func TestChaosKillAgent(t *testing.T) {
	testutil.RequireRoot(t, "wget", "qemu-system-x86_64")
	testutil.CheckLeaks(t)
	kernel := vmtest.Kernel(t)
	ops := 50
	if s := os.Getenv("ZOS_CHAOS_OPS"); s != "" {
		ops, _ = strconv.Atoi(s)
	}
	g := startGrid(t, 1)
	alice := g.newUser("alice")
	n1 := g.nodeID(0)
	node := g.Nodes()[0]
	fl := uploadBusybox(t, g, alice)
	netw := alice.deploy(n1, demoNetwork(t))
	alice.result(netw, 2*time.Minute, gridtypes.StateOK)
	// A container deployed first and never touched: its process must
	// survive every kill of the agent.
	keep := alice.deploy(n1, webContainer(fl, 2, 0))
	// And a VM: its QEMU must survive too.
	keepVM := alice.deploy(n1, &gridtypes.VM{CPU: 1, Memory: 512, Flist: uploadVMImage(t, g, alice, kernel), InitrdImage: "/initrd.gz",
		Network: gridtypes.VMNetwork{NetworkID: "demo", IPAddress: "10.42.1.250"}})
	alice.result(keep, 3*time.Minute, gridtypes.StateOK)
	alice.result(keepVM, 3*time.Minute, gridtypes.StateOK)
	keepPid := containerPid(t, node, alice.id, keep)

	zc, err := zinit.New(node.Zinit)
	if err != nil {
		t.Fatal(err)
	}
	defer zc.Close()
	qemu := node.Prefix + "qemu@" + gwid(keepVM)
	qemuPid := func() int {
		st, err := zc.Status(qemu)
		if err != nil || st.Pid <= 0 {
			t.Fatalf("QEMU service %s: %+v %v", qemu, st, err)
		}
		return st.Pid
	}
	keepQEMU := qemuPid()
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	t.Logf("chaos seed time %v", time.Now())
	type live struct {
		id   uint64
		kind gridtypes.WorkloadType
	}
	var alive []live
	var deleted []uint64
	host := 10
	kills, lastKilled := 0, 0
	for op := range ops {
		// At most maxAlive live workloads (2 GiB volumes each at most),
		// so long runs stay within the node's SSD while deleted
		// ones wait for their results.
		const maxAlive = 6
		switch x := rnd.IntN(10); {
		case len(alive) == 0 || (x < 4 && len(alive) < maxAlive):
			if rnd.IntN(2) == 0 {
				alive = append(alive, live{alice.deploy(n1, &gridtypes.Volume{Size: 1, Type: gridtypes.DiskSSD}), gridtypes.TypeVolume})
			} else {
				host++
				// A shell that exits on SIGTERM: deletions do not wait for
				// the 10 s stop timeout (httpd as PID 1 ignores SIGTERM).
				c := webContainer(fl, host, 0)
				c.Entrypoint = `/bin/sh -c "trap 'exit 0' TERM; /bin/httpd -f -p 80 -h /www & wait"`
				alive = append(alive, live{alice.deploy(n1, c), gridtypes.TypeContainer})
			}
			t.Logf("op %d: deploy %s %d", op, alive[len(alive)-1].kind, alive[len(alive)-1].id)
		case x < 7:
			i := rnd.IntN(len(alive))
			alice.requestDelete(alive[i].id)
			deleted = append(deleted, alive[i].id)
			t.Logf("op %d: delete %s %d", op, alive[i].kind, alive[i].id)
			alive = append(alive[:i], alive[i+1:]...)
		default:
			// Update a volume in place (grow it).
			for i, l := range alive {
				if l.kind == gridtypes.TypeVolume {
					alive[i].id = alice.update(n1, l.id, &gridtypes.Volume{Size: 2, Type: gridtypes.DiskSSD})
					t.Logf("op %d: update volume %d → %d", op, l.id, alive[i].id)
					break
				}
			}
		}
		if rnd.IntN(2) == 0 {
			// Wait for zinit to have restarted the agent killed last time.
			var st zinit.ServiceStatus
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				if st, err = zc.Status("zosd"); err == nil && st.Pid > 0 && st.Pid != lastKilled {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err == nil && st.Pid > 0 && st.Pid != lastKilled {
				lastKilled = st.Pid
				time.Sleep(time.Duration(rnd.IntN(500)) * time.Millisecond)
				_ = syscall.Kill(st.Pid, syscall.SIGKILL)
				kills++
				t.Logf("op %d: zosd (pid %d) killed", op, st.Pid)
			}
		}
	}
	t.Logf("%d operations, %d kills of zosd", ops, kills)

	for _, l := range alive {
		alice.result(l.id, 3*time.Minute, gridtypes.StateOK)
	}
	for _, id := range deleted {
		alice.result(id, 3*time.Minute, gridtypes.StateDeleted)
	}
	if pid := containerPid(t, node, alice.id, keep); pid != keepPid {
		t.Errorf("untouched container's process changed: %d → %d", keepPid, pid)
	}
	if pid := qemuPid(); pid != keepQEMU {
		t.Errorf("untouched VM's QEMU changed: %d → %d", keepQEMU, pid)
	}
	// Exactly the live containers run, once each; exactly the live volumes exist.
	var wantCt, wantVol int
	for _, l := range alive {
		if l.kind == gridtypes.TypeContainer {
			wantCt++
		} else {
			wantVol++
		}
	}
	if got := len(tasks(t, node, alice.id)); got != wantCt+1 {
		t.Errorf("%d container tasks run, want %d", got, wantCt+1)
	}
	// Containers' writable layers are volumes named after them too. An
	// update keeps the name of the reservation it replaced, so names are
	// compared by count and listed for the failure message.
	vols, _ := exec.Command("sh", "-c", "ls -d "+node.Root+"/root/mnt/*/[0-9]*-1 2>/dev/null").Output()
	var names []string
	for _, v := range strings.Fields(string(vols)) {
		names = append(names, filepath.Base(v))
	}
	if got := len(names); got != wantVol+wantCt+1 {
		t.Errorf("%d volumes on the pools %v, want %d (%d volumes + %d container layers); live %v, deleted %v",
			got, names, wantVol+wantCt+1, wantVol, wantCt+1, alive, deleted)
	}
	for _, l := range alive {
		alice.remove(l.id)
	}
	alice.remove(keep)
	alice.remove(keepVM)
	alice.remove(netw)
}

// containerPid returns the pid of the task of container reservation id.
func containerPid(t testing.TB, node *devgrid.Node, user, id uint64) int {
	t.Helper()
	for name, pid := range tasks(t, node, user) {
		if name == gwid(id) {
			return pid
		}
	}
	t.Fatalf("container %s not running", gwid(id))
	return 0
}

// tasks lists the containerd tasks of user's containers on node, by name.
func tasks(t testing.TB, node *devgrid.Node, user uint64) map[string]int {
	t.Helper()
	sock := node.Root + "/root/containerd/containerd.sock"
	out, err := exec.Command("ctr", "-a", sock, "-n", "ns"+strconv.FormatUint(user, 10), "tasks", "ls").CombinedOutput()
	if err != nil {
		t.Fatalf("ctr tasks ls: %v: %s", err, out)
	}
	res := map[string]int{}
	for _, line := range strings.Split(string(out), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) >= 3 && f[2] == "RUNNING" {
			pid, _ := strconv.Atoi(f[1])
			res[f[0]] = pid
		}
	}
	return res
}
