package devgrid

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/zos-go/zos/internal/netns"
)

// PowerCut simulates a power loss of node i: every process of the node
// (zinit, zosd, containerd and its shims, workloads, QEMU, 0-db, WireGuard,
// FUSE servers) is killed with SIGKILL, every mount below its root is
// dropped, its disks are detached and every network namespace it had,
// its host namespace included, vanishes. Its files stay, as on disks.
func (g *Grid) PowerCut(i int) error {
	n := g.nodes[i]
	if n.zinit != nil { // first, so nothing is restarted
		_ = n.zinit.cmd.Process.Kill()
		<-n.zinit.done
	}
	for range 3 { // processes forked while we kill are caught next round
		killInNamespaces(n.NS)
		killInNamespaces(n.Prefix)
	}
	time.Sleep(200 * time.Millisecond)
	if err := unmountUnder(n.Root); err != nil {
		return err
	}
	detachLoopsUnder(n.Root)
	names, _ := netns.List(n.Prefix)
	for _, ns := range append(names, n.NS) {
		if err := netns.Delete(ns); err != nil {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
	}
	_ = os.RemoveAll(filepath.Join("/run/zos", n.Prefix))
	_ = os.RemoveAll(filepath.Join(n.Root, "run"))
	removeCgroups(n.Prefix)
	return nil
}

// Boot starts node i again after PowerCut, on the same disks and state, and
// waits for its agent to be ready.
func (g *Grid) Boot(ctx context.Context, i int) error {
	n, err := g.startNode(ctx, i+1, g.farmID)
	if err != nil {
		return err
	}
	g.nodes[i] = n
	return nil
}
