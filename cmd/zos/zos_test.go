package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	iexplorer "github.com/zos-go/zos/internal/explorer"
	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/explorer"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/identity"
)

// cli runs one zos command line and returns stdout and the exit code.
func cli(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRoot(&app{})
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(strings.NewReader(""))
	err := cmd.Execute()
	if err != nil {
		t.Logf("zos %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), exitCode(err)
}

func startTestExplorer(t *testing.T) *iexplorer.Explorer {
	cfg := iexplorer.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.NATS.DataDir = testutil.TempDir(t)
	cfg.NATS.Listen = "127.0.0.1:0"
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	x, err := iexplorer.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = x.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-x.Ready():
	case <-done:
		t.Fatal("explorer stopped")
	}
	return x
}

// fakeNode is a node that answers deployments: ok, or an error for debug
// workloads; it opens every secret to check they were sealed to it.
type fakeNode struct {
	sk      ed25519.PrivateKey
	c       *explorer.NodeClient
	mu      sync.Mutex
	secrets map[string]string // guarded by mu; field → plaintext
}

func startNode(t *testing.T, x *iexplorer.Explorer, farm uint64, watch bool) *fakeNode {
	_, sk, _ := ed25519.GenerateKey(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := explorer.ConnectNode(ctx, []string{x.NATSURL()}, sk, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if _, err := c.Register(ctx, explorer.Registration{FarmID: farm}); err != nil {
		t.Fatal(err)
	}
	total := gridtypes.Capacity{CRU: 16, MRU: 64 * gridtypes.GiB, SRU: 1024 * gridtypes.GiB, HRU: 1024 * gridtypes.GiB}
	if err := c.ReportCapacity(ctx, explorer.CapacityReport{Total: total}); err != nil {
		t.Fatal(err)
	}
	n := &fakeNode{sk: sk, c: c, secrets: map[string]string{}}
	if watch {
		wctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = c.Watch(wctx, n.handle) }()
		t.Cleanup(func() { stop(); <-done })
	}
	return n
}

func (n *fakeNode) handle(ctx context.Context, r *gridtypes.Reservation) error {
	state, msg := gridtypes.StateOK, ""
	switch {
	case r.NextAction == gridtypes.ActionDelete:
		state = gridtypes.StateDeleted
	case r.Type == gridtypes.TypeDebug:
		state, msg = gridtypes.StateError, "debug is disabled on this node"
	default:
		u, err := n.c.User(ctx, r.UserID)
		if err != nil {
			return err
		}
		userKey, _ := u.Key()
		err = r.TransformSecrets(func(field string, kind gridtypes.SecretKind, v string) (string, error) {
			ct, err := hex.DecodeString(v)
			if err != nil {
				return "", err
			}
			var pt []byte
			if kind == gridtypes.SecretSealed {
				pt, err = identity.OpenBox(n.sk, ct)
			} else {
				pt, err = identity.DecryptECDH(n.sk, userKey, ct)
			}
			n.mu.Lock()
			n.secrets[string(r.Type)+"."+field] = string(pt)
			n.mu.Unlock()
			return string(pt), err
		})
		if err != nil {
			state, msg = gridtypes.StateError, err.Error()
		}
	}
	res, err := gridtypes.NewResult(r, state, msg, nil, time.Now())
	if err != nil {
		return err
	}
	return n.c.PostResult(ctx, res)
}

func TestCLIEndToEnd(t *testing.T) {
	x := startTestExplorer(t)
	url := "http://" + x.HTTPAddr()
	id := filepath.Join(testutil.TempDir(t), "identity.seed")
	base := []string{"--explorer", url, "--identity", id}
	run := func(args ...string) (string, int) { return cli(t, append(append([]string{}, base...), args...)...) }

	if _, code := run("get"); code != exitNotFound {
		t.Fatalf("get without identity: exit %d", code)
	}
	if _, code := run("identity", "new", "--name", "alice"); code != exitOK {
		t.Fatal("identity new")
	}
	if _, code := run("identity", "new", "--name", "alice2"); code != exitConflict {
		t.Fatalf("identity new over an existing one: exit %d", code)
	}
	out, code := run("identity", "show", "-o", "json")
	var u gridtypes.User
	if code != exitOK || json.Unmarshal([]byte(out), &u) != nil || u.Name != "alice" {
		t.Fatalf("identity show: %d %s", code, out)
	}
	if _, code := run("farm", "create", "farm1", "--ip", "185.69.166.7/24=185.69.166.1"); code != exitOK {
		t.Fatal("farm create")
	}
	out, _ = run("farm", "list", "--mine", "-o", "yaml")
	if !strings.Contains(out, "name: farm1") || !strings.Contains(out, "185.69.166.7/24") || strings.Contains(out, "e+09") {
		t.Fatalf("farm list yaml:\n%s", out)
	}
	var farms []gridtypes.Farm
	out, _ = run("farm", "list", "-o", "json")
	if err := json.Unmarshal([]byte(out), &farms); err != nil || len(farms) != 1 {
		t.Fatalf("farm list: %s", out)
	}
	node := startNode(t, x, farms[0].ID, true)
	out, _ = run("node", "list", "--sru", "100")
	if !strings.Contains(out, node.c.NodeID()) {
		t.Fatalf("node list:\n%s", out)
	}

	if _, code := run("node", "set-public", node.c.NodeID(), "--master", "eth0", "--ipv4", "185.69.166.10/24", "--gw4", "185.69.166.1"); code != exitOK {
		t.Fatalf("node set-public: exit %d", code)
	}
	out, _ = run("node", "show", node.c.NodeID(), "-o", "json")
	if !strings.Contains(out, `"ipv4": "185.69.166.10/24"`) {
		t.Fatalf("node show after set-public:\n%s", out)
	}
	if _, code := run("node", "set-public", node.c.NodeID(), "--master", "eth0"); code != exitRefused {
		t.Fatalf("node set-public without address: exit %d", code)
	}

	// Every example deploys; the node answers.
	examples, _ := filepath.Glob("../../examples/*.yaml")
	if len(examples) != len(gridtypes.WorkloadTypes()) {
		t.Fatalf("%d examples for %d types", len(examples), len(gridtypes.WorkloadTypes()))
	}
	ids := map[gridtypes.WorkloadType]uint64{}
	for _, ex := range examples {
		out, code := run("deploy", "-f", ex, "--watch", "--wait", "30s", "-o", "json")
		var rs []gridtypes.Reservation
		if err := json.Unmarshal([]byte(out), &rs); err != nil || len(rs) != 1 {
			t.Fatalf("%s: exit %d, output %s", ex, code, out)
		}
		r := rs[0]
		ids[r.Type] = r.ID
		want := exitOK
		if r.Type == gridtypes.TypeDebug {
			want = exitDeployError
		}
		if code != want || r.Result == nil {
			t.Fatalf("%s: exit %d (want %d), result %+v", ex, code, want, r.Result)
		}
	}
	node.mu.Lock()
	secrets := map[string]string{}
	for k, v := range node.secrets {
		secrets[k] = v
	}
	node.mu.Unlock()
	for field, want := range map[string]string{
		"container.secret_environment.DB_PASSWORD": "correct-horse-battery-staple",
		"zdb.password":                            "s3cret-password",
		"kubernetes.cluster_secret":               "my-cluster-token",
		"network.wireguard_private_key_encrypted": "cKKG/iLMDhgt2r5QgX9di2OM4XhAU7ihdwnKbUEA+Wc=",
	} {
		if secrets[field] != want {
			t.Errorf("node opened %s = %q, want %q", field, secrets[field], want)
		}
	}

	out, _ = run("get", "-o", "json")
	var mine []gridtypes.Reservation
	if err := json.Unmarshal([]byte(out), &mine); err != nil || len(mine) != len(examples) {
		t.Fatalf("get: %s", out)
	}
	vol := ids[gridtypes.TypeVolume]
	// An update in place: it lands on the volume's node and refers to it.
	out, code = run("deploy", "-f", "../../examples/volume.yaml", "--replaces", itoa(vol), "--watch", "--wait", "30s", "-o", "json")
	var upd []gridtypes.Reservation
	if err := json.Unmarshal([]byte(out), &upd); err != nil || code != exitOK || len(upd) != 1 {
		t.Fatalf("deploy --replaces: exit %d, output %s", code, out)
	}
	if upd[0].Reference != itoa(vol)+"-1" || upd[0].NodeID != node.c.NodeID() {
		t.Fatalf("update refers to %q on %s, want %d-1 on %s", upd[0].Reference, upd[0].NodeID, vol, node.c.NodeID())
	}
	if upd[0].Lifetime != 0 {
		t.Errorf("lifetime %d without --lifetime", upd[0].Lifetime)
	}
	out, code = run("deploy", "-f", "../../examples/volume.yaml", "--lifetime", "720h", "--node", node.c.NodeID(), "-o", "json")
	var created []explorer.CreatedResponse
	if err := json.Unmarshal([]byte(out), &created); err != nil || code != exitOK || len(created) != 1 {
		t.Fatalf("deploy --lifetime 720h: exit %d, output %s", code, out)
	}
	if out, _ = run("get", itoa(created[0].ID), "-o", "json"); !strings.Contains(out, `"lifetime": 2592000`) {
		t.Errorf("reservation deployed with --lifetime 720h:\n%s", out)
	}
	if _, code := run("deploy", "-f", "../../examples/volume.yaml", "--replaces", "99999"); code != exitNotFound {
		t.Errorf("--replaces of an unknown reservation: exit %d", code)
	}
	if _, code := run("deploy", "-f", "../../examples/volume.yaml", "--replaces", itoa(vol), "--node", silentID(t)); code != exitUsage {
		t.Errorf("--replaces onto another node: exit %d", code)
	}
	if _, code := run("delete", itoa(vol), "--watch", "--wait", "30s"); code != exitOK {
		t.Fatalf("delete: exit %d", code)
	}
	out, _ = run("get", itoa(vol), "-o", "json")
	if !strings.Contains(out, `"next_action": "deleted"`) {
		t.Fatalf("after delete: %s", out)
	}

	// Exit codes.
	if _, code := run("get", "99999"); code != exitNotFound {
		t.Errorf("unknown id: exit %d", code)
	}
	if _, code := run("get", "-o", "xml"); code != exitUsage {
		t.Errorf("bad output: exit %d", code)
	}
	bad := filepath.Join(testutil.TempDir(t), "bad.yaml")
	_ = os.WriteFile(bad, []byte("type: volume\ndata: {size: 0, type: ssd}\n"), 0o600)
	if _, code := run("deploy", "-f", bad, "--node", node.c.NodeID()); code != exitRefused {
		t.Errorf("invalid reservation: exit %d", code)
	}
	_ = os.WriteFile(bad, []byte("type: volume\ndata: {size: 100000, type: ssd}\n"), 0o600)
	if _, code := run("deploy", "-f", bad, "--node", node.c.NodeID()); code != exitConflict {
		t.Errorf("impossible capacity: exit %d", code)
	}
	silent := startNode(t, x, farms[0].ID, false)
	if _, code := run("deploy", "-f", "../../examples/volume.yaml", "--node", silent.c.NodeID(), "--watch", "--wait", "1s"); code != exitTimeout {
		t.Errorf("no answer: exit %d", code)
	}
	if _, code := cli(t, "--explorer", "http://127.0.0.1:1", "--identity", id, "get", "1"); code != exitUnavailable {
		t.Errorf("explorer down: exit %d", code)
	}
}

// silentID is a well-formed node id of no node.
func silentID(t *testing.T) string {
	t.Helper()
	seed, err := identity.GenerateSeed()
	if err != nil {
		t.Fatal(err)
	}
	return identity.NewKeyPair(seed).ID()
}

func itoa(v uint64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestExamplesAreValid parses every example as zos deploy does.
func TestExamplesAreValid(t *testing.T) {
	_, sk, _ := ed25519.GenerateKey(nil)
	_, nodeKey, _ := ed25519.GenerateKey(nil)
	nodeID := gridtypes.NodeIDFromKey(nodeKey.Public().(ed25519.PublicKey))
	examples, _ := filepath.Glob("../../examples/*.yaml")
	seen := map[gridtypes.WorkloadType]bool{}
	for _, ex := range examples {
		docs, err := readDocuments(ex, nil)
		if err != nil {
			t.Fatalf("%s: %v", ex, err)
		}
		for _, d := range docs {
			r, err := buildReservation(d, me{id: 1, sk: sk}, nodeID, "", 0, time.Now(), time.Minute, false)
			if err != nil {
				t.Fatalf("%s: %v", ex, err)
			}
			if err := r.Verify(sk.Public().(ed25519.PublicKey)); err != nil {
				t.Fatalf("%s: %v", ex, err)
			}
			seen[r.Type] = true
		}
	}
	for _, typ := range gridtypes.WorkloadTypes() {
		if !seen[typ] {
			t.Errorf("no example of %s", typ)
		}
	}
}
