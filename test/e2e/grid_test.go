//go:build e2e

// Package e2e runs scenarios on the development grid: an explorer and zos
// nodes on this machine (internal/devgrid), driven as a user would, through
// the explorer's API with signed reservations, and checked from the outside
// (a ping, bytes through a 0-db, a page served by a container).
package e2e

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/devgrid"
	"github.com/zos-go/zos/internal/netns"
	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/explorer"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/identity"
)

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// binaries returns the directory of the zos binaries: $ZOS_BIN (make
// test-e2e sets it), else a fresh build.
func binaries(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("ZOS_BIN"); d != "" {
		abs, err := filepath.Abs(d)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	binOnce.Do(func() {
		binDir = filepath.Join(testutil.Root(t), "e2e-bin")
		cmd := exec.Command("go", "build", "-o", binDir+"/", "github.com/zos-go/zos/cmd/...")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

// grid is a running development grid for one test, torn down at its end
// with a check that it left nothing behind.
type grid struct {
	*devgrid.Grid
	t      testing.TB
	cfg    devgrid.Config
	client *explorer.Client
}

func startGrid(t testing.TB, nodes int) *grid {
	t.Helper()
	testutil.RequireRoot(t, "ip", "nsenter", "losetup", "mkfs.btrfs", "containerd", "runc", "redis-cli", "wg")
	cfg := devgrid.DefaultConfig()
	cfg.Root = testutil.TempDir(t)
	cfg.Nodes = nodes
	cfg.Bin = binaries(t)
	cfg.Prefix = "ze"
	cfg.APIAddr = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	cfg.SSDBytes, cfg.HDDBytes = 64<<30, 64<<30 // sparse files
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	// A run killed without cleanup (e.g. by a timeout) leaves its grid.
	if err := devgrid.CleanStale(cfg.Prefix); err != nil {
		t.Logf("stale grid: %v", err)
	}
	start := time.Now()
	g, err := devgrid.Up(ctx, cfg, log)
	t.Logf("grid up in %v", time.Since(start).Round(time.Millisecond))
	if err != nil {
		dumpLogs(t, cfg.Root)
		t.Fatalf("grid: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, cfg.Root)
		}
		start := time.Now()
		if err := g.Down(context.Background()); err != nil {
			t.Errorf("grid down: %v", err)
		}
		t.Logf("grid down in %v", time.Since(start).Round(time.Millisecond))
		if left, _ := netns.List(cfg.Prefix); len(left) > 0 {
			t.Errorf("namespaces left after down: %v", left)
		}
	})
	return &grid{Grid: g, t: t, cfg: cfg, client: explorer.NewClient(g.ExplorerURL(), nil)}
}

// dumpLogs prints the tail of every log of the grid; with ZOS_E2E_LOGS set
// to a directory, whole logs are kept there too.
func dumpLogs(t testing.TB, root string) {
	logs, _ := filepath.Glob(filepath.Join(root, "node*", "log", "zinit.log"))
	logs = append(logs, filepath.Join(root, "log", "explorer.log"))
	keep := os.Getenv("ZOS_E2E_LOGS")
	for i, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		if keep != "" {
			dst := filepath.Join(keep, fmt.Sprintf("%s-%d-%s", strings.ReplaceAll(t.Name(), "/", "_"), i, filepath.Base(l)))
			if err := os.MkdirAll(keep, 0o755); err == nil {
				_ = os.WriteFile(dst, b, 0o644)
				t.Logf("whole log kept in %s", dst)
			}
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > 60 {
			lines = lines[len(lines)-60:]
		}
		t.Logf("%s (tail):\n%s", l, strings.Join(lines, "\n"))
	}
}

// user is a grid user with a key registered on the explorer, kept in an
// identity file for the CLI.
type user struct {
	id       uint64
	name     string
	sk       ed25519.PrivateKey
	seedFile string
	g        *grid
}

func (g *grid) newUser(name string) *user {
	g.t.Helper()
	sf, err := identity.Generate()
	if err != nil {
		g.t.Fatal(err)
	}
	kp := sf.KeyPair()
	u := gridtypes.User{Name: name, PublicKey: hex.EncodeToString(kp.PublicKey()), Created: time.Now().Unix()}
	u.Sign(ed25519.PrivateKey(kp.PrivateKey()))
	id, err := g.client.CreateUser(g.t.Context(), u)
	if err != nil {
		g.t.Fatalf("user %s: %v", name, err)
	}
	sf.ThreebotID = int64(id)
	path := filepath.Join(testutil.TempDir(g.t), name+".seed")
	if err := identity.CreateSeedFile(path, sf); err != nil {
		g.t.Fatal(err)
	}
	return &user{id: id, name: name, sk: ed25519.PrivateKey(kp.PrivateKey()), seedFile: path, g: g}
}

func (g *grid) nodeID(i int) string {
	g.t.Helper()
	id, err := g.Nodes()[i].NodeID(g.t.Context())
	if err != nil {
		g.t.Fatal(err)
	}
	return id
}

// deploy signs w for node, seals its secrets to the node, submits it and
// returns the reservation id.
func (u *user) deploy(node string, w gridtypes.Workload) uint64 {
	u.g.t.Helper()
	return u.deployRef(node, w, "")
}

func (u *user) deployRef(node string, w gridtypes.Workload, ref string) uint64 {
	u.g.t.Helper()
	return u.submit(node, w, func(r *gridtypes.Reservation) { r.Reference = ref })
}

// submit signs and submits w for node after set changed the reservation.
func (u *user) submit(node string, w gridtypes.Workload, set func(*gridtypes.Reservation)) uint64 {
	t := u.g.t
	t.Helper()
	r, err := gridtypes.NewReservation(node, u.id, w, time.Now(), 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	set(r)
	r.Description = fmt.Sprintf("%s %d", w.WorkloadType(), time.Now().UnixNano())
	nodeKey, err := identity.KeyFromID(node)
	if err != nil {
		t.Fatal(err)
	}
	err = r.TransformSecrets(func(_ string, kind gridtypes.SecretKind, v string) (string, error) {
		var ct []byte
		var err error
		if kind == gridtypes.SecretSealed || r.Version == 0 {
			ct, err = identity.SealBox(nodeKey, []byte(v))
		} else {
			ct, err = identity.EncryptECDH(u.sk, nodeKey, []byte(v))
		}
		return hex.EncodeToString(ct), err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Sign(u.sk); err != nil {
		t.Fatal(err)
	}
	id, err := u.g.client.CreateReservation(t.Context(), r)
	if err != nil {
		t.Fatalf("deploy %s: %v", w.WorkloadType(), err)
	}
	return id
}

// result waits for the node's result of reservation id in one of states.
func (u *user) result(id uint64, timeout time.Duration, states ...gridtypes.ResultState) *gridtypes.Result {
	t := u.g.t
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r, err := u.g.client.Reservation(t.Context(), id)
		if err == nil && r.Result != nil {
			for _, s := range states {
				if r.Result.State == s {
					return r.Result
				}
			}
			if r.Result.State == gridtypes.StateError {
				t.Fatalf("reservation %d (%s) failed: %s", id, r.Type, r.Result.Message)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("reservation %d: no result %v after %v (last %+v, %v)", id, states, timeout, r, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// remove signs the deletion of id and waits for the node to confirm.
func (u *user) remove(id uint64) {
	u.g.t.Helper()
	u.requestDelete(id)
	u.result(id, 2*time.Minute, gridtypes.StateDeleted)
}

// requestDelete signs the deletion of id.
func (u *user) requestDelete(id uint64) {
	t := u.g.t
	t.Helper()
	r, err := u.g.client.Reservation(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := r.SignAction(gridtypes.SignDelete, u.id, u.sk, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.g.client.Delete(t.Context(), id, sig); err != nil && !errors.Is(err, explorer.ErrConflict) {
		t.Fatalf("delete %d: %v", id, err)
	}
}

// update deploys w as the replacement of reservation old (same working
// name on the node) and returns the new reservation id.
func (u *user) update(node string, old uint64, w gridtypes.Workload) uint64 {
	u.g.t.Helper()
	return u.deployRef(node, w, gwid(old))
}

// inNS runs a command in a network namespace and returns its output; it is
// killed after 20 s (wget's -T does not bound a connect to an address that
// vanished).
func inNS(ns string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + netns.Path(ns), "--", name}, args...)...).CombinedOutput()
	return string(out), err
}

func waitCmd(t testing.TB, timeout time.Duration, what string, fn func() (string, error)) string {
	t.Helper()
	var out string
	testutil.WaitFor(t, timeout, what, func() error {
		var err error
		out, err = fn()
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	})
	return out
}
