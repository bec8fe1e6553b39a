package explorer

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/explorer"
	"github.com/zos-go/zos/pkg/gridtypes"
)

// TestNodeCannotTouchAnotherNode checks the NATS permissions the auth
// callout gives: node A sees nothing of node B and cannot write B's records.
func TestNodeCannotTouchAnotherNode(t *testing.T) {
	r := startExplorer(t, testutil.TempDir(t), 0, nil)
	g := newGrid(t, r, 2, bigNode)
	a, b := g.nodes[0], g.nodes[1]
	ctx := context.Background()

	// A listens wherever B's deliveries or answers could show up.
	asyncErrs := make(chan error, 16)
	spy, err := explorer.ConnectNode(ctx, []string{r.x.NATSURL()}, a.sk, testLog(t),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { asyncErrs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer spy.Close()
	nc := spy.Conn()
	stolen := make(chan *nats.Msg, 16)
	for _, subj := range []string{explorer.DeliverySubject(b.id()), "zos.deliver.>", explorer.InboxPrefix + b.id() + ".>", "_INBOX.>", ">"} {
		if _, err := nc.ChanSubscribe(subj, stolen); err != nil {
			t.Fatal(err)
		}
	}
	_ = nc.Flush()

	id := g.deploy(t, b.id(), volume(1))
	got := b.waitReceived(t, id, gridtypes.ActionDeploy)
	b.result(t, got, gridtypes.StateOK, gridtypes.VolumeResult{VolumeID: got.GWID()})

	// A cannot pull from B's consumer nor ask about its consumer.
	for _, subj := range []string{
		"$JS.API.CONSUMER.MSG.NEXT." + explorer.DeliveryStream + "." + explorer.ConsumerName(b.id()),
		"$JS.API.CONSUMER.INFO." + explorer.DeliveryStream + "." + explorer.ConsumerName(b.id()),
		"$JS.API.CONSUMER.CREATE." + explorer.DeliveryStream,
		"$JS.API.STREAM.MSG.GET." + explorer.DeliveryStream,
		"$KV.zos-reservations.>",
	} {
		if m, err := nc.Request(subj, []byte(`{"batch":1}`), 500*time.Millisecond); err == nil {
			t.Errorf("request on %s answered: %s", subj, m.Data)
		}
	}
	// A cannot write B's records through B's subjects...
	forged, _ := gridtypes.NewResult(got, gridtypes.StateDeleted, "", nil, time.Now().Add(time.Minute))
	forged.Sign(a.sk)
	body, _ := json.Marshal(forged)
	if m, err := nc.Request(explorer.NodeSubject(b.id(), explorer.NodeOpResult), body, 500*time.Millisecond); err == nil {
		t.Errorf("result on B's subject answered: %s", m.Data)
	}
	// ...nor through its own: the explorer takes the node from the subject.
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := spy.PostResult(rctx, forged); !errors.Is(err, explorer.ErrNotFound) {
		t.Errorf("result for B's reservation through A: %v", err)
	}
	forged.NodeID = b.id()
	body, _ = json.Marshal(forged)
	if m, err := nc.Request(explorer.NodeSubject(a.id(), explorer.NodeOpResult), body, 5*time.Second); err != nil || !json.Valid(m.Data) {
		t.Fatalf("own subject: %v", err)
	} else if code := replyCode(m.Data); code != "forbidden" {
		t.Errorf("result naming B sent by A: code %q", code)
	}
	if _, err := spy.Reservation(rctx, id); !errors.Is(err, explorer.ErrNotFound) {
		t.Errorf("A read B's reservation: %v", err)
	}
	if res, _ := r.client.Reservation(ctx, id); res.Result.State != gridtypes.StateOK || res.NextAction != gridtypes.ActionDeploy {
		t.Fatalf("B's reservation changed: %s %v", res.NextAction, res.Result.State)
	}

	select {
	case m := <-stolen:
		t.Fatalf("A received %s: %s", m.Subject, m.Data)
	case <-time.After(300 * time.Millisecond):
	}
	select {
	case err := <-asyncErrs:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Logf("async error: %v", err)
		}
	default:
		t.Error("no permission violation reported for A's subscriptions")
	}
}

func replyCode(b []byte) string {
	var rep explorer.Reply
	_ = json.Unmarshal(b, &rep)
	return rep.Code
}

// TestConnectionsNeedTheirKey checks the auth callout refuses clients that
// do not prove they hold an nkey.
func TestConnectionsNeedTheirKey(t *testing.T) {
	r := startExplorer(t, testutil.TempDir(t), 0, nil)
	url := r.x.NATSURL()
	if nc, err := nats.Connect(url, nats.Timeout(3*time.Second)); err == nil {
		nc.Close()
		t.Fatal("anonymous client connected")
	}
	if nc, err := nats.Connect(url, nats.UserInfo("explorer", "x"), nats.Timeout(3*time.Second)); err == nil {
		nc.Close()
		t.Fatal("password client connected")
	}
	// Claims one key, signs with another.
	sk := newKey(t)
	other, _ := nkeys.FromRawSeed(nkeys.PrefixByteUser, newKey(t).Seed())
	kp, _ := nkeys.FromRawSeed(nkeys.PrefixByteUser, sk.Seed())
	pub, _ := kp.PublicKey()
	if nc, err := nats.Connect(url, nats.Nkey(pub, other.Sign), nats.Timeout(3*time.Second)); err == nil {
		nc.Close()
		t.Fatal("client with a forged nonce signature connected")
	}
	// The real key connects, as the node of that key.
	c, err := explorer.ConnectNode(context.Background(), []string{url}, sk, testLog(t), nats.MaxReconnects(0))
	if err != nil {
		t.Fatalf("node with its key: %v", err)
	}
	defer c.Close()
	if c.NodeID() != gridtypes.NodeIDFromKey(sk.Public().(ed25519.PublicKey)) {
		t.Fatal("node id")
	}
	// Not registered yet: its own requests work and say so.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Node(ctx); !errors.Is(err, explorer.ErrNotFound) {
		t.Fatalf("unregistered node get: %v", err)
	}
	// Registration needs an existing farm.
	if _, err := c.Register(ctx, explorer.Registration{FarmID: 77}); !errors.Is(err, explorer.ErrNotFound) {
		t.Fatalf("register in unknown farm: %v", err)
	}
}
