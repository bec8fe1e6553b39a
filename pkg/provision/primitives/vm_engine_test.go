package primitives

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mr-tron/base58"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/provision"
)

// clearSecrets hands secrets over as they are (the test's reservations
// carry them in clear hex).
type clearSecrets struct{}

func (clearSecrets) Open(_ context.Context, _ *gridtypes.Reservation, _ gridtypes.SecretKind, v string) (string, error) {
	return v, nil
}

type nopReporter struct{}

func (nopReporter) Report(context.Context, *gridtypes.Result) error { return nil }

// TestVMThroughEngine runs the vm provisioner under the real engine: a VM
// delivered before its network and its public IP waits (retried, never
// failed) and is deployed once they are; its delete leaves nothing.
func TestVMThroughEngine(t *testing.T) {
	e := newVMEnv(t, nil)
	pk, sk, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	nodeID := base58.Encode(pk)
	cfg := provision.DefaultConfig()
	cfg.NodeID, cfg.Key, cfg.VerifySignatures = nodeID, sk, false
	cfg.RetryMin, cfg.RetryMax = 5*time.Millisecond, 20*time.Millisecond
	filter := &fakeFilter{rules: map[string]PubIPRules{}}
	prov := map[gridtypes.WorkloadType]provision.Provisioner{
		gridtypes.TypeVM:       e.vm,
		gridtypes.TypePublicIP: PublicIP{Networker: e.net, Filter: filter},
	}
	eng, err := provision.New(cfg, e.store, prov, nil, clearSecrets{}, nopReporter{}, e.log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	testutil.WaitFor(t, 5*time.Second, "engine running", func() error {
		if !eng.Ready() {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	res := func(id uint64, w gridtypes.Workload, action gridtypes.NextAction) *gridtypes.Reservation {
		r, err := gridtypes.NewReservation(nodeID, testUser, w, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		r.ID, r.NextAction = id, action
		return r
	}
	state := func(id uint64) provision.State {
		s, _ := eng.State(id)
		return s
	}
	w := guestVM()
	w.Network = gridtypes.VMNetwork{NetworkID: "net2", IPAddress: "10.2.1.5", PublicIP: 2}
	eng.Handle(ctx, provision.Delivery{Reservation: res(3, w, gridtypes.ActionDeploy)})
	time.Sleep(100 * time.Millisecond)
	if s := state(3); s != provision.StateDeploying || e.vms.Exists("3-1") {
		t.Fatalf("vm without network is %s (running %v); want deploying", s, e.vms.Exists("3-1"))
	}
	e.addNetwork(t, "net2", "10.2.0.0/16", "10.2.1.0/24")
	time.Sleep(100 * time.Millisecond)
	if s := state(3); s != provision.StateDeploying {
		t.Fatalf("vm without its public ip is %s; want deploying", s)
	}
	eng.Handle(ctx, provision.Delivery{Reservation: res(2, &gridtypes.PublicIP{IPAddress: "185.69.166.7/24"}, gridtypes.ActionDeploy)})
	testutil.WaitFor(t, 10*time.Second, "vm deployed", func() error {
		if s := state(3); s != provision.StateDeployed {
			return fmt.Errorf("vm is %s", s)
		}
		return nil
	})
	rec, err := e.store.Get(3)
	if err != nil || rec.Result == nil || rec.Result.State != gridtypes.StateOK ||
		!strings.Contains(string(rec.Result.Data), `"public_ip":"185.69.166.7"`) {
		t.Fatalf("result %+v %v", rec.Result, err)
	}
	if spec, _ := e.vms.Spec("3-1"); len(spec.Network.Ifaces) != 2 || spec.Network.Ifaces[1].Tap != "p-2-1" {
		t.Fatalf("vm network %+v", spec.Network)
	}

	eng.Handle(ctx, provision.Delivery{Reservation: res(3, w, gridtypes.ActionDelete)})
	eng.Handle(ctx, provision.Delivery{Reservation: res(2, &gridtypes.PublicIP{IPAddress: "185.69.166.7/24"}, gridtypes.ActionDelete)})
	testutil.WaitFor(t, 10*time.Second, "deleted", func() error {
		if s2, s3 := state(2), state(3); s2 != provision.StateDeleted || s3 != provision.StateDeleted {
			return fmt.Errorf("public ip %s, vm %s", s2, s3)
		}
		return nil
	})
	e.empty(t)
	if ok, _ := e.net.PubTapExists("2-1"); ok {
		t.Error("public tap p-2-1 left")
	}
	if len(filter.rules) != 0 {
		t.Errorf("filters left: %v", filter.rules)
	}
}
