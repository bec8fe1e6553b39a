package explorer

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/explorer"
	blockstore "github.com/zos-go/zos/pkg/flist/store"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/hub"
)

func TestReservationLifecycle(t *testing.T) {
	r := startExplorer(t, testutil.TempDir(t), 0, nil)
	g := newGrid(t, r, 1, bigNode)
	ctx := context.Background()
	node := g.nodes[0]

	c := &gridtypes.Container{Flist: "https://hub/x.flist", Capacity: gridtypes.ContainerCapacity{CPU: 2, Memory: 2048}}
	id := g.deploy(t, node.id(), c)
	got := node.waitReceived(t, id, gridtypes.ActionDeploy)
	if w, err := got.Workload(); err != nil || w.(*gridtypes.Container).Capacity.CPU != 2 {
		t.Fatalf("delivered workload %v %v", w, err)
	}
	if err := got.Verify(g.userSK.Public().(ed25519.PublicKey)); err != nil {
		t.Fatalf("delivered reservation lost its signature: %v", err)
	}
	n, err := r.client.Node(ctx, node.id())
	if err != nil {
		t.Fatal(err)
	}
	if want := c.Resources(); n.ReservedResources != want {
		t.Fatalf("reserved %v, want %v", n.ReservedResources, want)
	}

	node.result(t, got, gridtypes.StateOK, gridtypes.ContainerResult{ID: got.GWID(), IPv4: "10.1.3.5"})
	res, err := r.client.Reservation(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if res.Result == nil || res.Result.State != gridtypes.StateOK || res.NextAction != gridtypes.ActionDeploy {
		t.Fatalf("after ok result: %+v", res)
	}
	var cr gridtypes.ContainerResult
	if err := json.Unmarshal(res.Result.Data, &cr); err != nil || cr.IPv4 != "10.1.3.5" {
		t.Fatalf("result data %s: %v", res.Result.Data, err)
	}

	// Someone else cannot delete it.
	other, otherSK := createUser(t, r.client, "mallory")
	sig, _ := res.SignAction(gridtypes.SignDelete, other, otherSK, time.Now())
	if _, err := r.client.Delete(ctx, id, sig); !errors.Is(err, explorer.ErrForbidden) {
		t.Fatalf("foreign delete: %v", err)
	}
	// The owner can.
	del, err := r.client.Delete(ctx, id, g.deleteSig(t, res))
	if err != nil {
		t.Fatal(err)
	}
	if del.NextAction != gridtypes.ActionDelete {
		t.Fatalf("after delete: %s", del.NextAction)
	}
	if _, err := r.client.Delete(ctx, id, g.deleteSig(t, res)); !errors.Is(err, explorer.ErrConflict) {
		t.Fatalf("second delete: %v", err)
	}
	gone := node.waitReceived(t, id, gridtypes.ActionDelete)
	node.result(t, gone, gridtypes.StateDeleted, nil)
	res, _ = r.client.Reservation(ctx, id)
	if res.NextAction != gridtypes.ActionDeleted || res.Result.State != gridtypes.StateDeleted {
		t.Fatalf("after deleted result: %s %v", res.NextAction, res.Result.State)
	}
	if n, _ := r.client.Node(ctx, node.id()); !n.ReservedResources.IsZero() {
		t.Fatalf("capacity not released: %v", n.ReservedResources)
	}
}

// expectNothingStored checks that a refused request left no trace.
func expectNothingStored(t *testing.T, g *grid) {
	t.Helper()
	ctx := context.Background()
	rs, err := g.r.client.Reservations(ctx, explorer.ReservationQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 0 {
		t.Fatalf("refused reservation stored: %+v", rs[0])
	}
	n, err := g.r.client.Node(ctx, g.nodes[0].id())
	if err != nil {
		t.Fatal(err)
	}
	if !n.ReservedResources.IsZero() {
		t.Fatalf("refused reservation reserved %v", n.ReservedResources)
	}
}

func TestBadReservationsRejected(t *testing.T) {
	r := startExplorer(t, testutil.TempDir(t), 0, nil)
	small := gridtypes.Capacity{CRU: 4, MRU: 8 * gridtypes.GiB, SRU: 100 * gridtypes.GiB}
	g := newGrid(t, r, 1, small)
	ctx := context.Background()
	node := g.nodes[0].id()
	vol := volume(1)
	post := func(body []byte) error {
		_, err := r.client.CreateReservationJSON(ctx, body)
		return err
	}
	marshal := func(res *gridtypes.Reservation) []byte { b, _ := json.Marshal(res); return b }

	cases := []struct {
		name   string
		body   func() []byte
		want   error
		status int
	}{
		{"unsigned", func() []byte {
			res := g.reservation(t, node, vol)
			res.CustomerSignature = ""
			return marshal(res)
		}, gridtypes.ErrUnsigned, 401},
		{"wrongly signed", func() []byte {
			res := g.reservation(t, node, vol)
			_ = res.Sign(newKey(t))
			return marshal(res)
		}, gridtypes.ErrBadSignature, 401},
		{"tampered", func() []byte {
			res := g.reservation(t, node, vol)
			_ = res.SetWorkload(volume(2))
			return marshal(res)
		}, gridtypes.ErrBadSignature, 401},
		{"expired", func() []byte {
			res, _ := gridtypes.NewReservation(node, g.user, vol, time.Now().Add(-time.Hour), 10*time.Minute)
			_ = res.Sign(g.userSK)
			return marshal(res)
		}, gridtypes.ErrExpired, 400},
		{"from the future", func() []byte {
			res, _ := gridtypes.NewReservation(node, g.user, vol, time.Now().Add(time.Hour), 10*time.Minute)
			_ = res.Sign(g.userSK)
			return marshal(res)
		}, gridtypes.ErrNotYetValid, 400},
		{"oversized", func() []byte {
			res := g.reservation(t, node, vol)
			res.Description = strings.Repeat("x", gridtypes.MaxReservationSize)
			return marshal(res)
		}, gridtypes.ErrTooLarge, 413},
		{"malformed", func() []byte { return []byte(`{"type":"volume","data":{"size":`) }, gridtypes.ErrMalformed, 400},
		{"unknown field", func() []byte {
			return []byte(strings.Replace(string(marshal(g.reservation(t, node, vol))), `"size"`, `"evil":1,"size"`, 1))
		}, gridtypes.ErrMalformed, 400},
		{"invalid field", func() []byte {
			return marshal(g.reservation(t, node, &gridtypes.Volume{Size: 0, Type: gridtypes.DiskSSD}))
		}, gridtypes.ErrInvalid, 400},
		{"explorer fields", func() []byte {
			res := g.reservation(t, node, vol)
			res.NextAction = gridtypes.ActionDeploy
			return marshal(res)
		}, gridtypes.ErrInvalid, 400},
		{"impossible capacity", func() []byte {
			return marshal(g.reservation(t, node, &gridtypes.Container{Flist: "f", Capacity: gridtypes.ContainerCapacity{CPU: 64, Memory: 1024}}))
		}, explorer.ErrInsufficientCapacity, 409},
		{"unknown node", func() []byte {
			return marshal(g.reservation(t, gridtypes.NodeIDFromKey(newKey(t).Public().(ed25519.PublicKey)), vol))
		}, explorer.ErrNotFound, 404},
		{"unknown user", func() []byte {
			res, _ := gridtypes.NewReservation(node, 999999, vol, time.Now(), time.Minute)
			_ = res.Sign(g.userSK)
			return marshal(res)
		}, explorer.ErrNotFound, 404},
		{"public ip not in farm", func() []byte {
			return marshal(g.reservation(t, node, &gridtypes.PublicIP{IPAddress: "1.2.3.4/24"}))
		}, explorer.ErrNotFound, 404},
	}
	for _, c := range cases {
		err := post(c.body())
		var api *explorer.APIError
		if !errors.Is(err, c.want) || !errors.As(err, &api) || api.Status != c.status {
			t.Errorf("%s: %v, want %v with status %d", c.name, err, c.want, c.status)
		}
	}
	expectNothingStored(t, g)
	if got := g.nodes[0].received(); len(got) != 0 {
		t.Fatalf("node received refused reservations: %d", len(got))
	}

	// Capacity that fits in total but not in what is left.
	big := &gridtypes.Volume{Size: 60, Type: gridtypes.DiskSSD}
	first := g.deploy(t, node, big)
	if _, err := r.client.CreateReservation(ctx, g.reservation(t, node, big)); !errors.Is(err, explorer.ErrInsufficientCapacity) {
		t.Fatalf("overbooked: %v", err)
	}
	// Replay of an accepted request.
	res := g.reservation(t, node, volume(1))
	id, err := r.client.CreateReservation(ctx, res)
	if err != nil {
		t.Fatal(err)
	}
	again, err := r.client.CreateReservation(ctx, res)
	if !errors.Is(err, explorer.ErrReplay) || again != id {
		t.Fatalf("replay: id %d err %v (first %d)", again, err, id)
	}
	rs, _ := r.client.Reservations(ctx, explorer.ReservationQuery{})
	if len(rs) != 2 || rs[0].ID != first || rs[1].ID != id {
		t.Fatalf("stored %d reservations", len(rs))
	}
}

func TestMultiSignatureProvisionAndDelete(t *testing.T) {
	r := startExplorer(t, testutil.TempDir(t), 0, nil)
	g := newGrid(t, r, 1, bigNode)
	ctx := context.Background()
	bob, bobSK := createUser(t, r.client, "bob")
	carol, carolSK := createUser(t, r.client, "carol")
	node := g.nodes[0]

	res, _ := gridtypes.NewReservation(node.id(), g.user, volume(1), time.Now(), 10*time.Minute)
	res.SigningRequestProvision = gridtypes.SigningRequest{Signers: []uint64{bob, carol}, QuorumMin: 2}
	res.SigningRequestDelete = gridtypes.SigningRequest{Signers: []uint64{bob, carol}, QuorumMin: 1}
	_ = res.Sign(g.userSK)
	id, err := r.client.CreateReservation(ctx, res)
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := r.client.Reservation(ctx, id)
	if stored.NextAction != gridtypes.ActionSign {
		t.Fatalf("next action %s, want sign", stored.NextAction)
	}
	sign := func(action gridtypes.SignAction, user uint64, sk []byte) (*gridtypes.Reservation, error) {
		s, _ := stored.SignAction(action, user, sk, time.Now())
		return r.client.Sign(ctx, id, action, s)
	}
	if _, err := sign(gridtypes.SignProvision, g.user, g.userSK); !errors.Is(err, explorer.ErrForbidden) {
		t.Fatalf("unlisted signer: %v", err)
	}
	if out, err := sign(gridtypes.SignProvision, bob, bobSK); err != nil || out.NextAction != gridtypes.ActionSign {
		t.Fatalf("first signature: %v", err)
	}
	if _, err := sign(gridtypes.SignProvision, bob, bobSK); !errors.Is(err, explorer.ErrConflict) {
		t.Fatalf("double signature: %v", err)
	}
	// A signature made with the wrong key is refused.
	if _, err := sign(gridtypes.SignProvision, carol, bobSK); !errors.Is(err, gridtypes.ErrBadSignature) {
		t.Fatalf("wrong key: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	if len(node.received()) != 0 {
		t.Fatal("delivered before the quorum")
	}
	if out, err := sign(gridtypes.SignProvision, carol, carolSK); err != nil || out.NextAction != gridtypes.ActionDeploy {
		t.Fatalf("quorum: %v", err)
	}
	node.waitReceived(t, id, gridtypes.ActionDeploy)
	// The owner alone cannot delete when a delete quorum is set.
	if _, err := r.client.Delete(ctx, id, g.deleteSig(t, stored)); !errors.Is(err, explorer.ErrForbidden) {
		t.Fatalf("owner delete against quorum: %v", err)
	}
	if out, err := sign(gridtypes.SignDelete, carol, carolSK); err != nil || out.NextAction != gridtypes.ActionDelete {
		t.Fatalf("delete quorum: %v", err)
	}
	node.waitReceived(t, id, gridtypes.ActionDelete)
}

func TestPublicIPAndCapacitySearch(t *testing.T) {
	r := startExplorer(t, testutil.TempDir(t), 0, nil)
	g := newGrid(t, r, 2, bigNode)
	ctx := context.Background()
	n0, n1 := g.nodes[0], g.nodes[1]
	id := g.deploy(t, n0.id(), &gridtypes.PublicIP{IPAddress: "185.69.166.7/24"})
	if _, err := r.client.CreateReservation(ctx, g.reservation(t, n1.id(), &gridtypes.PublicIP{IPAddress: "185.69.166.7/24"})); !errors.Is(err, explorer.ErrConflict) {
		t.Fatalf("ip taken twice: %v", err)
	}
	f, _ := r.client.Farm(ctx, g.farm)
	if f.IPAddresses[0].ReservationID != id {
		t.Fatalf("farm ip not bound: %+v", f.IPAddresses)
	}
	// The node fails it: the address is free again.
	got := n0.waitReceived(t, id, gridtypes.ActionDeploy)
	n0.result(t, got, gridtypes.StateError, nil)
	if f, _ = r.client.Farm(ctx, g.farm); f.IPAddresses[0].ReservationID != 0 {
		t.Fatalf("ip not freed after error: %+v", f.IPAddresses)
	}
	if res, _ := r.client.Reservation(ctx, id); res.NextAction != gridtypes.ActionDelete {
		t.Fatalf("after error: %s", res.NextAction)
	}

	// Capacity search by free resources.
	g.deploy(t, n1.id(), &gridtypes.Volume{Size: 4000, Type: gridtypes.DiskSSD})
	nodes, err := r.client.Nodes(ctx, explorer.NodeQuery{Free: gridtypes.Capacity{SRU: 1000 * gridtypes.GiB}})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 1 || nodes[0].NodeID != n0.id() {
		t.Fatalf("search found %d nodes", len(nodes))
	}
	all, _ := r.client.Nodes(ctx, explorer.NodeQuery{FarmID: g.farm})
	if len(all) != 2 {
		t.Fatalf("farm search: %d", len(all))
	}
}

func TestExplorerRestartLosesNothing(t *testing.T) {
	dir := testutil.TempDir(t)
	port := testutil.FreePort(t)
	r := startExplorer(t, dir, port, nil)
	g := newGrid(t, r, 1, bigNode)
	node := g.nodes[0]
	ctx := context.Background()
	var ids []uint64
	for range 5 {
		ids = append(ids, g.deploy(t, node.id(), volume(1)))
	}
	for _, id := range ids {
		node.waitReceived(t, id, gridtypes.ActionDeploy)
	}
	// The node goes away; more reservations arrive while it is gone.
	node.cancel()
	<-node.done
	node.c.Close()
	for range 3 {
		ids = append(ids, g.deploy(t, node.id(), volume(1)))
	}
	r.stop(t)

	r2 := startExplorer(t, dir, port, nil)
	g.r = r2
	rs, err := r2.client.Reservations(ctx, explorer.ReservationQuery{UserID: g.user})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != len(ids) {
		t.Fatalf("%d reservations after restart, want %d", len(rs), len(ids))
	}
	n, _ := r2.client.Node(ctx, node.id())
	if want := (gridtypes.Capacity{SRU: 8 * gridtypes.GiB}); n.ReservedResources != want {
		t.Fatalf("reserved after restart %v, want %v", n.ReservedResources, want)
	}
	// The node comes back with the same key: it gets what it missed.
	back := g.addNode(t, node.sk, bigNode)
	for _, id := range ids[5:] {
		back.waitReceived(t, id, gridtypes.ActionDeploy)
	}
	if _, err := r2.client.UserByName(ctx, "alice"); err != nil {
		t.Fatalf("user lost: %v", err)
	}
}

func TestHubMountedWithExplorerUsers(t *testing.T) {
	dir := testutil.TempDir(t)
	var x *Explorer
	r := startExplorer(t, testutil.TempDir(t), 0, nil)
	x = r.x
	// Before Run, HubKeys answer unavailable; here it runs.
	bs, err := blockstore.Open("dir://"+filepath.Join(dir, "blocks"), blockstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hc := hub.DefaultConfig()
	hc.Dir, hc.Blocks, hc.Keys = filepath.Join(dir, "flists"), bs, x.HubKeys()
	h, err := hub.New(hc, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	x.SetHub(h)
	srv := httptest.NewServer(x.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/hub/api/flist")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("hub under /hub/: %s", resp.Status)
	}
	id, sk := createUser(t, r.client, "carol")
	k, err := x.HubKeys().UserKey(context.Background(), "carol")
	if err != nil || !k.Equal(sk.Public()) {
		t.Fatalf("hub key of user %d: %v", id, err)
	}
	if _, err := x.HubKeys().UserKey(context.Background(), "nobody"); !errors.Is(err, hub.ErrUnknownUser) {
		t.Fatalf("unknown hub user: %v", err)
	}
}

func TestFarmerSetsPublicConfig(t *testing.T) {
	r := startExplorer(t, testutil.TempDir(t), 0, nil)
	g := newGrid(t, r, 1, bigNode)
	ctx := context.Background()
	node := g.nodes[0]
	req := gridtypes.PublicConfigRequest{NodeID: node.id(), Created: time.Now().Unix(),
		Config: &gridtypes.PublicConfig{Master: "eth0", Type: "macvlan", IPv4: "185.69.166.10/24", GW4: "185.69.166.1"}}
	// Someone who does not own the farm.
	_, mallorySK := createUser(t, r.client, "mallory")
	forged := req
	forged.Sign(mallorySK)
	if _, err := r.client.SetPublicConfig(ctx, forged); !errors.Is(err, gridtypes.ErrBadSignature) {
		t.Fatalf("non-owner: %v", err)
	}
	req.Sign(g.userSK)
	if _, err := r.client.SetPublicConfig(ctx, req); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := node.c.Node(cctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.PublicConfig == nil || n.PublicConfig.IPv4 != "185.69.166.10/24" {
		t.Fatalf("node sees %+v", n.PublicConfig)
	}
	// An older signed request cannot be replayed over the newer one.
	older := gridtypes.PublicConfigRequest{NodeID: node.id(), Created: req.Created - 10}
	older.Sign(g.userSK)
	if _, err := r.client.SetPublicConfig(ctx, older); !errors.Is(err, explorer.ErrConflict) {
		t.Fatalf("older request: %v", err)
	}
	if n, _ := r.client.Node(ctx, node.id()); n.PublicConfig == nil {
		t.Fatal("older request removed the config")
	}
	// The node re-registering keeps it.
	if _, err := node.c.Register(cctx, explorer.Registration{FarmID: g.farm, OSVersion: "v2"}); err != nil {
		t.Fatal(err)
	}
	if n, _ := r.client.Node(ctx, node.id()); n.PublicConfig == nil || n.OSVersion != "v2" {
		t.Fatalf("after re-registration: %+v", n)
	}
}

// TestLostConsumerIsRecreated deletes a node's consumer (as a NATS restart
// loses in-memory consumer state): what is published meanwhile stays in the
// work queue, and the node's Watch gets its consumer re-created and
// receives it.
func TestLostConsumerIsRecreated(t *testing.T) {
	r := startExplorer(t, testutil.TempDir(t), 0, nil)
	g := newGrid(t, r, 1, bigNode)
	node := g.nodes[0]
	first := g.deploy(t, node.id(), volume(1))
	node.waitReceived(t, first, gridtypes.ActionDeploy)
	ctx := context.Background()
	// The node acknowledges after its handler returns: wait until the ack
	// has taken the message out of the work queue.
	testutil.WaitFor(t, 10*time.Second, "delivery acknowledged", func() error {
		st, err := r.x.js.Stream(ctx, explorer.DeliveryStream)
		if err != nil {
			return err
		}
		if n := st.CachedInfo().State.Msgs; n != 0 {
			return fmt.Errorf("%d messages still queued", n)
		}
		return nil
	})
	if err := r.x.js.DeleteConsumer(ctx, explorer.DeliveryStream, explorer.ConsumerName(node.id())); err != nil {
		t.Fatal(err)
	}
	second := g.deploy(t, node.id(), volume(1))
	node.waitReceived(t, second, gridtypes.ActionDeploy)
	// The acknowledged one left the work queue: it is not delivered again.
	n := 0
	for _, res := range node.received() {
		if res.ID == first {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("acknowledged reservation delivered %d times", n)
	}
}

// TestUpdateNeedsOnlyTheDifference: an update holds only what it needs
// beyond the reservation it replaces; when the node reports that one
// replaced, its capacity moves to the update; a failed update gives back
// only its difference.
func TestUpdateNeedsOnlyTheDifference(t *testing.T) {
	r := startExplorer(t, testutil.TempDir(t), 0, nil)
	g := newGrid(t, r, 1, gridtypes.Capacity{CRU: 4, MRU: 8 * gridtypes.GiB, SRU: 10 * gridtypes.GiB})
	ctx := context.Background()
	node := g.nodes[0]
	reserved := func() gridtypes.Capacity {
		t.Helper()
		n, err := r.client.Node(ctx, node.id())
		if err != nil {
			t.Fatal(err)
		}
		return n.ReservedResources
	}
	update := func(old uint64, gib uint64) (uint64, error) {
		u := g.reservation(t, node.id(), volume(gib))
		u.Reference = strconv.FormatUint(old, 10) + "-1"
		if err := u.Sign(g.userSK); err != nil {
			t.Fatal(err)
		}
		return r.client.CreateReservation(ctx, u)
	}

	v1 := g.deploy(t, node.id(), volume(6))
	node.result(t, node.waitReceived(t, v1, gridtypes.ActionDeploy), gridtypes.StateOK, nil)
	// 6 + 8 GiB do not fit in 10; the 2 GiB difference does.
	v2, err := update(v1, 8)
	if err != nil {
		t.Fatalf("update needing 2 GiB more on a node with 4 free: %v", err)
	}
	if got := reserved().SRU; got != 8*gridtypes.GiB {
		t.Fatalf("reserved %d GiB after the update, want 8", got/gridtypes.GiB)
	}
	// A second update of the same reservation gets no credit: 8 more do not fit.
	if _, err := update(v1, 8); !errors.Is(err, explorer.ErrInsufficientCapacity) {
		t.Fatalf("second update of a claimed reservation: %v, want insufficient capacity", err)
	}
	// The node deploys the update and reports the earlier one replaced.
	got2 := node.waitReceived(t, v2, gridtypes.ActionDeploy)
	node.result(t, got2, gridtypes.StateOK, nil)
	node.result(t, node.waitReceived(t, v1, gridtypes.ActionDeploy), gridtypes.StateDeleted, nil)
	if got := reserved().SRU; got != 8*gridtypes.GiB {
		t.Fatalf("reserved %d GiB once the earlier one is replaced, want 8", got/gridtypes.GiB)
	}

	// A failed update gives back only its difference.
	v3, err := update(v2, 9)
	if err != nil {
		t.Fatal(err)
	}
	node.result(t, node.waitReceived(t, v3, gridtypes.ActionDeploy), gridtypes.StateError, nil)
	if got := reserved().SRU; got != 8*gridtypes.GiB {
		t.Fatalf("reserved %d GiB after a failed update, want 8 (the one kept)", got/gridtypes.GiB)
	}
	// Deleting what remains frees everything.
	res, err := r.client.Reservation(ctx, v2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.client.Delete(ctx, v2, g.deleteSig(t, res)); err != nil {
		t.Fatal(err)
	}
	node.result(t, node.waitReceived(t, v2, gridtypes.ActionDelete), gridtypes.StateDeleted, nil)
	if got := reserved(); !got.IsZero() {
		t.Fatalf("reserved %v after deleting everything", got)
	}
}

// TestUnsignedReservationExpires: a reservation still waiting for its
// provision quorum when its request expires becomes invalid and releases
// its capacity; later signatures are refused.
func TestUnsignedReservationExpires(t *testing.T) {
	r := startExplorer(t, testutil.TempDir(t), 0, nil)
	g := newGrid(t, r, 1, bigNode)
	ctx := context.Background()
	bob, bobSK := createUser(t, r.client, "bob")
	node := g.nodes[0]

	res, _ := gridtypes.NewReservation(node.id(), g.user, volume(3), time.Now(), 10*time.Minute)
	res.SigningRequestProvision = gridtypes.SigningRequest{Signers: []uint64{bob}, QuorumMin: 1}
	_ = res.Sign(g.userSK)
	id, err := r.client.CreateReservation(ctx, res)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := r.client.Node(ctx, node.id()); n.ReservedResources.SRU != 3*gridtypes.GiB {
		t.Fatalf("reserved %v while waiting for signatures, want 3 GiB", n.ReservedResources)
	}
	// Not yet expired: nothing happens.
	if n, err := r.x.expireUnsigned(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("expire before the deadline: %d %v", n, err)
	}
	if n, err := r.x.expireUnsigned(ctx, time.Now().Add(11*time.Minute)); err != nil || n != 1 {
		t.Fatalf("expire after the deadline: %d %v", n, err)
	}
	stored, err := r.client.Reservation(ctx, id)
	if err != nil || stored.NextAction != gridtypes.ActionInvalid {
		t.Fatalf("after expiry: %+v %v", stored, err)
	}
	if n, _ := r.client.Node(ctx, node.id()); !n.ReservedResources.IsZero() {
		t.Fatalf("reserved %v after expiry, want nothing", n.ReservedResources)
	}
	s, _ := stored.SignAction(gridtypes.SignProvision, bob, bobSK, time.Now())
	if _, err := r.client.Sign(ctx, id, gridtypes.SignProvision, s); !errors.Is(err, explorer.ErrConflict) {
		t.Fatalf("signature after expiry: %v, want conflict", err)
	}
	time.Sleep(200 * time.Millisecond)
	if len(node.received()) != 0 {
		t.Fatal("an expired reservation was delivered")
	}
}
