package explorer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zos-go/zos/internal/revert"
	"github.com/zos-go/zos/pkg/explorer"
	"github.com/zos-go/zos/pkg/gridtypes"
)

// retakeAge is how old a replay entry without its reservation must be
// before the same signed request may take it over (its first submission
// died half-way, e.g. a NATS server was lost).
const retakeAge = 10 * time.Second

// record is how the explorer stores a reservation, with the bookkeeping
// needed to release what it holds exactly once.
type record struct {
	Reservation *gridtypes.Reservation `json:"reservation"`
	Hash        string                 `json:"hash"`
	// Held is the capacity counted in the node's reserved capacity for
	// this reservation; zero once released.
	Held gridtypes.Capacity `json:"held,omitzero"`
	// FarmIP is the farm address a public_ip reservation holds.
	FarmIP string `json:"farm_ip,omitempty"`
	FarmID uint64 `json:"farm_id,omitempty"`
	// Update accounting: an update (Replaces set) holds only what it
	// needs beyond the reservation it replaces (ReplacedBy set on that
	// one). When the node reports the earlier one deleted as replaced, its
	// capacity moves to the update (Inherited) instead of being released,
	// so an update needs only the difference free, as users expect.
	Replaces   uint64 `json:"replaces,omitempty"`
	ReplacedBy uint64 `json:"replaced_by,omitempty"`
	Inherited  bool   `json:"inherited,omitempty"`
}

func resKey(nodeID string, id uint64) string { return nodeID + "." + strconv.FormatUint(id, 10) }

// release takes what rec holds out of it and returns it.
func (rec *record) release() (held gridtypes.Capacity, farmID uint64, ip string) {
	held, farmID, ip = rec.Held, rec.FarmID, rec.FarmIP
	rec.Held, rec.FarmIP = gridtypes.Capacity{}, ""
	return held, farmID, ip
}

// CreateReservation checks and stores a signed reservation, then queues it
// for its node. Nothing is stored when it fails. A request whose first
// submission was accepted gets ErrReplay (with the id it was given).
func (x *Explorer) CreateReservation(ctx context.Context, body []byte) (uint64, error) {
	r, err := gridtypes.Decode(body)
	if err != nil {
		return 0, err
	}
	if r.ID != 0 || r.NextAction != gridtypes.ActionCreate || r.Accepted != 0 || r.Result != nil ||
		len(r.SignaturesProvision) > 0 || len(r.SignaturesDelete) > 0 {
		return 0, fmt.Errorf("reservation: id, next_action, accepted, signatures and result are set by the explorer: %w", gridtypes.ErrInvalid)
	}
	if err := r.Validate(); err != nil {
		return 0, fmt.Errorf("reservation: %w", err)
	}
	now := x.now()
	if err := r.CheckTime(now); err != nil {
		return 0, err
	}
	key, err := x.userKey(ctx, r.UserID)
	if err != nil {
		return 0, err
	}
	if err := r.Verify(key); err != nil {
		return 0, err
	}
	node, err := x.nodeRecord(ctx, r.NodeID)
	if err != nil {
		return 0, err
	}
	if node.Deleted {
		return 0, fmt.Errorf("node %s is deleted: %w", r.NodeID, explorer.ErrNotFound)
	}
	w, err := r.Workload()
	if err != nil {
		return 0, err
	}
	need := w.Resources()
	if max := node.TotalResources.Sub(node.SystemResources); !max.Fits(onNode(need)) {
		return 0, fmt.Errorf("reservation needs %s, node %s has %s in total: %w", need, r.NodeID, max, explorer.ErrInsufficientCapacity)
	}
	hash, err := r.HashHex()
	if err != nil {
		return 0, err
	}

	var undo revert.Stack
	defer undo.Unwind()
	var (
		id       uint64
		claimErr error
		replaces uint64
	)
	if r.Reference == "" {
		// The replay guard (which gives the id) and the capacity
		// reservation are independent: do both at once, undo whichever
		// succeeded if the other failed.
		reserved := make(chan error, 1)
		go func() { reserved <- x.reserve(ctx, node, need) }()
		id, claimErr = x.claimHash(ctx, hash, r.NodeID)
		if reserveErr := <-reserved; reserveErr == nil {
			undo.Push(func() { x.releaseCapacity(context.WithoutCancel(ctx), r.NodeID, need) })
		} else if claimErr == nil {
			claimErr = reserveErr
			id = 0
			undo.Push(func() { _ = x.st.replays.Delete(context.WithoutCancel(ctx), hash) })
		} else if !errors.Is(claimErr, explorer.ErrReplay) {
			claimErr = reserveErr
		}
		if claimErr != nil {
			return id, claimErr
		}
	} else {
		// An update: the id first, then the credit of the reservation it
		// replaces, then what is needed beyond it.
		if id, claimErr = x.claimHash(ctx, hash, r.NodeID); claimErr != nil {
			return id, claimErr
		}
		undo.Push(func() { _ = x.st.replays.Delete(context.WithoutCancel(ctx), hash) })
		var credit gridtypes.Capacity
		replaces, credit = x.claimCredit(ctx, r, id)
		if replaces != 0 {
			undo.Push(func() { x.dropCredit(context.WithoutCancel(ctx), r.NodeID, replaces, id) })
		}
		extra := need.Sub(credit)
		if err := x.reserve(ctx, node, extra); err != nil {
			return 0, err
		}
		undo.Push(func() { x.releaseCapacity(context.WithoutCancel(ctx), r.NodeID, extra) })
		need = extra
	}
	if r.Reference == "" {
		undo.Push(func() { _ = x.st.replays.Delete(context.WithoutCancel(ctx), hash) })
	}
	r.ID, r.Accepted = id, now.Unix()
	rec := record{Reservation: r, Hash: hash, Held: need, Replaces: replaces}
	if ip, ok := w.(*gridtypes.PublicIP); ok {
		if err := x.takeFarmIP(ctx, node.FarmID, ip.IPAddress, id); err != nil {
			return 0, err
		}
		rec.FarmID, rec.FarmIP = node.FarmID, ip.IPAddress
		undo.Push(func() { x.freeFarmIP(context.WithoutCancel(ctx), node.FarmID, ip.IPAddress, id) })
	}
	r.NextAction = gridtypes.ActionDeploy
	if !r.SigningRequestProvision.Met(nil) {
		r.NextAction = gridtypes.ActionSign
	}
	if _, err := createJSON(ctx, x.st.res, resKey(r.NodeID, id), rec); err != nil {
		// The write may have happened with its answer lost (a server
		// failed): then the reservation is accepted and must not be undone.
		if _, gerr := x.st.res.Get(context.WithoutCancel(ctx), resKey(r.NodeID, id)); gerr != nil {
			return 0, err
		}
	}
	undo.Done()
	if r.NextAction == gridtypes.ActionDeploy {
		x.deliver(ctx, r)
	} else {
		x.unsigned.add(resKey(r.NodeID, id), r.Expires)
	}
	x.log.DebugContext(ctx, "reservation accepted", "id", id, "node", r.NodeID, "type", r.Type, "user", r.UserID)
	return id, nil
}

// claimHash records the hash of a new request; the revision of the entry
// is the reservation id (unique and increasing, with no counter to
// contend on). An existing entry is a replay, unless its reservation was
// never stored and the entry is older than retakeAge.
func (x *Explorer) claimHash(ctx context.Context, hash, nodeID string) (uint64, error) {
	id, err := x.st.replays.Create(ctx, hash, nil)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return 0, natsErr("replay guard", err)
	}
	e, err := x.st.replays.Get(ctx, hash)
	if err != nil {
		return 0, natsErr("replay guard", err)
	}
	_, err = x.st.res.Get(ctx, resKey(nodeID, e.Revision()))
	switch {
	case err == nil:
		return e.Revision(), fmt.Errorf("reservation already accepted as %d: %w", e.Revision(), explorer.ErrReplay)
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return 0, natsErr("replay guard", err)
	case time.Since(e.Created()) < retakeAge:
		return 0, fmt.Errorf("the same request is being processed: %w", explorer.ErrReplay)
	}
	return e.Revision(), nil
}

// reserve adds need to the node's reserved capacity if it fits.
func (x *Explorer) reserve(ctx context.Context, n gridtypes.Node, need gridtypes.Capacity) error {
	if need.IsZero() {
		return nil
	}
	return x.ledger.update(ctx, n.NodeID, func(c *gridtypes.Capacity) error {
		n.ReservedResources = *c
		if free := n.Free(); !free.Fits(onNode(need)) {
			return fmt.Errorf("reservation needs %s, node %s has %s free: %w", need, n.NodeID, free, explorer.ErrInsufficientCapacity)
		}
		*c = c.Add(need)
		return nil
	})
}

// onNode is the part of c a node must have free: public IPv4 addresses
// come from the farm's pool, not from the node.
func onNode(c gridtypes.Capacity) gridtypes.Capacity {
	c.IPV4U = 0
	return c
}

// releaseCapacity gives back capacity; failures are logged (the next
// reconcile repairs them).
func (x *Explorer) releaseCapacity(ctx context.Context, nodeID string, c gridtypes.Capacity) {
	if c.IsZero() {
		return
	}
	err := x.ledger.update(ctx, nodeID, func(r *gridtypes.Capacity) error {
		*r = r.Sub(c)
		return nil
	})
	if err != nil {
		x.log.WarnContext(ctx, "capacity release failed", "node", nodeID, "error", err)
	}
}

func sameAddress(a, b string) bool {
	pa, err1 := netip.ParsePrefix(a)
	pb, err2 := netip.ParsePrefix(b)
	return err1 == nil && err2 == nil && pa.Addr() == pb.Addr()
}

func (x *Explorer) takeFarmIP(ctx context.Context, farmID uint64, addr string, id uint64) error {
	_, err := updateJSON(ctx, x.st.farms, farmKey(farmID), false, func(f *gridtypes.Farm) error {
		for i, ip := range f.IPAddresses {
			if !sameAddress(ip.Address, addr) {
				continue
			}
			if ip.ReservationID != 0 && ip.ReservationID != id {
				return fmt.Errorf("public ip %s is used by reservation %d: %w", addr, ip.ReservationID, explorer.ErrConflict)
			}
			f.IPAddresses[i].ReservationID = id
			return nil
		}
		return fmt.Errorf("public ip %s is not in farm %d: %w", addr, farmID, explorer.ErrNotFound)
	})
	return err
}

func (x *Explorer) freeFarmIP(ctx context.Context, farmID uint64, addr string, id uint64) {
	if addr == "" {
		return
	}
	_, err := updateJSON(ctx, x.st.farms, farmKey(farmID), false, func(f *gridtypes.Farm) error {
		for i, ip := range f.IPAddresses {
			if sameAddress(ip.Address, addr) && ip.ReservationID == id {
				f.IPAddresses[i].ReservationID = 0
			}
		}
		return nil
	})
	if err != nil {
		x.log.WarnContext(ctx, "public ip release failed", "farm", farmID, "ip", addr, "error", err)
	}
}

// liveRecord reports whether rec still holds what it reserved: not failed,
// not deleted.
func liveRecord(rec *record) bool {
	r := rec.Reservation
	if r.NextAction != gridtypes.ActionDeploy && r.NextAction != gridtypes.ActionSign {
		return false
	}
	return r.Result == nil || r.Result.State == gridtypes.StateOK
}

// claimCredit marks the reservation that update r (id) refers to as
// replaced by it and returns that reservation's id and what it holds. The
// credit is zero (and nothing is marked) unless the reference is a live
// reservation of the same user, node and type that no other live update
// has claimed.
func (x *Explorer) claimCredit(ctx context.Context, r *gridtypes.Reservation, id uint64) (uint64, gridtypes.Capacity) {
	refID, err := gridtypes.ParseGWID(r.Reference)
	if err != nil {
		return 0, gridtypes.Capacity{}
	}
	var credit gridtypes.Capacity
	_, err = updateJSON(ctx, x.st.res, resKey(r.NodeID, refID), false, func(old *record) error {
		o := old.Reservation
		if o.UserID != r.UserID || o.Type != r.Type || !liveRecord(old) || old.Held.IsZero() {
			return errNoCredit
		}
		if old.ReplacedBy != 0 && old.ReplacedBy != id {
			other, _, err := getJSON[record](ctx, x.st.res, resKey(r.NodeID, old.ReplacedBy))
			if err == nil && liveRecord(&other) {
				return errNoCredit
			}
		}
		old.ReplacedBy = id
		credit = old.Held
		return nil
	})
	if err != nil {
		if !errors.Is(err, errNoCredit) && !errors.Is(err, explorer.ErrNotFound) {
			x.log.WarnContext(ctx, "update credit", "id", id, "reference", refID, "error", err)
		}
		return 0, gridtypes.Capacity{}
	}
	return refID, credit
}

var errNoCredit = errors.New("no credit")

// dropCredit undoes claimCredit.
func (x *Explorer) dropCredit(ctx context.Context, nodeID string, refID, id uint64) {
	_, _ = updateJSON(ctx, x.st.res, resKey(nodeID, refID), false, func(old *record) error {
		if old.ReplacedBy != id {
			return errNoCredit
		}
		old.ReplacedBy = 0
		return nil
	})
}

// inherit moves what replaced reservation refID holds to the update that
// replaced it, if that update is live. It reports whether the update holds
// it now (moved by this call or an earlier one): the caller then zeroes
// the replaced one's hold without releasing it.
func (x *Explorer) inherit(ctx context.Context, nodeID string, refID uint64) bool {
	old, _, err := getJSON[record](ctx, x.st.res, resKey(nodeID, refID))
	if err != nil || old.ReplacedBy == 0 || old.Held.IsZero() {
		return false
	}
	moved := false
	_, err = updateJSON(ctx, x.st.res, resKey(nodeID, old.ReplacedBy), false, func(upd *record) error {
		moved = false
		if upd.Replaces != refID {
			return errNoCredit
		}
		if upd.Inherited {
			moved = true
			return errNoCredit // already done, nothing to write
		}
		if !liveRecord(upd) {
			return errNoCredit
		}
		upd.Held = upd.Held.Add(old.Held)
		upd.Inherited = true
		moved = true
		return nil
	})
	if err != nil && !errors.Is(err, errNoCredit) {
		x.log.WarnContext(ctx, "update inherits capacity", "id", old.ReplacedBy, "from", refID, "error", err)
		return false
	}
	return moved
}

// releaseRecord gives back what a record held.
func (x *Explorer) releaseRecord(ctx context.Context, nodeID string, id uint64, held gridtypes.Capacity, farmID uint64, ip string) {
	x.releaseCapacity(ctx, nodeID, held)
	x.freeFarmIP(ctx, farmID, ip, id)
}

// findRecord returns the key of reservation id.
func (x *Explorer) findKey(ctx context.Context, id uint64) (string, error) {
	ks, err := keys(ctx, x.st.res, "*."+strconv.FormatUint(id, 10))
	if err != nil {
		return "", err
	}
	if len(ks) == 0 {
		return "", fmt.Errorf("reservation %d: %w", id, explorer.ErrNotFound)
	}
	return ks[0], nil
}

// Reservation returns reservation id.
func (x *Explorer) Reservation(ctx context.Context, id uint64) (*gridtypes.Reservation, error) {
	k, err := x.findKey(ctx, id)
	if err != nil {
		return nil, err
	}
	rec, _, err := getJSON[record](ctx, x.st.res, k)
	if err != nil {
		return nil, fmt.Errorf("reservation %d: %w", id, err)
	}
	return rec.Reservation, nil
}

// Sign adds a provision or delete signature to reservation id; a met
// quorum deploys or deletes it.
func (x *Explorer) Sign(ctx context.Context, id uint64, action gridtypes.SignAction, sig gridtypes.Signature) (*gridtypes.Reservation, error) {
	if action != gridtypes.SignProvision && action != gridtypes.SignDelete {
		return nil, fmt.Errorf("sign action %q: %w", action, gridtypes.ErrInvalid)
	}
	k, err := x.findKey(ctx, id)
	if err != nil {
		return nil, err
	}
	pk, err := x.userKey(ctx, sig.UserID)
	if err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	var (
		deliver bool
		held    gridtypes.Capacity
		farmID  uint64
		ip      string
	)
	rec, err := updateJSON(ctx, x.st.res, k, false, func(rec *record) error {
		deliver, held, farmID, ip = false, gridtypes.Capacity{}, 0, ""
		r := rec.Reservation
		if err := r.VerifyAction(action, sig, pk); err != nil {
			return err
		}
		if action == gridtypes.SignProvision {
			if r.NextAction == gridtypes.ActionSign && x.now().Unix() > r.Expires {
				return fmt.Errorf("reservation %d: the provision quorum was not met before %d: %w", r.ID, r.Expires, gridtypes.ErrExpired)
			}
			return signProvision(r, sig, &deliver)
		}
		if err := signDelete(r, sig); err != nil {
			return err
		}
		sr := r.SigningRequestDelete
		if sr.QuorumMin > 0 && !sr.Met(r.SignaturesDelete) {
			return nil
		}
		if r.NextAction == gridtypes.ActionSign {
			// Never delivered: nothing to remove on the node.
			r.NextAction = gridtypes.ActionDeleted
			held, farmID, ip = rec.release()
			return nil
		}
		r.NextAction, deliver = gridtypes.ActionDelete, true
		return nil
	})
	if err != nil {
		return nil, err
	}
	r := rec.Reservation
	x.releaseRecord(ctx, r.NodeID, r.ID, held, farmID, ip)
	if deliver {
		x.deliver(ctx, r)
	}
	return r, nil
}

func signProvision(r *gridtypes.Reservation, sig gridtypes.Signature, deliver *bool) error {
	switch r.NextAction {
	case gridtypes.ActionInvalid, gridtypes.ActionDelete, gridtypes.ActionDeleted:
		return fmt.Errorf("reservation %d is %s: %w", r.ID, r.NextAction, explorer.ErrConflict)
	}
	if !r.SigningRequestProvision.Lists(sig.UserID) {
		return fmt.Errorf("user %d may not sign provision of %d: %w", sig.UserID, r.ID, explorer.ErrForbidden)
	}
	if signedBy(r.SignaturesProvision, sig.UserID) {
		return fmt.Errorf("user %d already signed provision of %d: %w", sig.UserID, r.ID, explorer.ErrConflict)
	}
	r.SignaturesProvision = append(r.SignaturesProvision, sig)
	if r.NextAction == gridtypes.ActionSign && r.SigningRequestProvision.Met(r.SignaturesProvision) {
		r.NextAction, *deliver = gridtypes.ActionDeploy, true
	}
	return nil
}

func signDelete(r *gridtypes.Reservation, sig gridtypes.Signature) error {
	sr := r.SigningRequestDelete
	if !sr.Lists(sig.UserID) && !(sr.QuorumMin == 0 && sig.UserID == r.UserID) {
		return fmt.Errorf("user %d may not delete %d: %w", sig.UserID, r.ID, explorer.ErrForbidden)
	}
	switch r.NextAction {
	case gridtypes.ActionDelete, gridtypes.ActionDeleted, gridtypes.ActionInvalid:
		return fmt.Errorf("reservation %d is already %s: %w", r.ID, r.NextAction, explorer.ErrConflict)
	}
	if signedBy(r.SignaturesDelete, sig.UserID) {
		return fmt.Errorf("user %d already signed delete of %d: %w", sig.UserID, r.ID, explorer.ErrConflict)
	}
	r.SignaturesDelete = append(r.SignaturesDelete, sig)
	return nil
}

func signedBy(sigs []gridtypes.Signature, user uint64) bool {
	return slices.ContainsFunc(sigs, func(s gridtypes.Signature) bool { return s.UserID == user })
}

// PostResult stores a result signed by node nodeID about one of its own
// reservations. An error result or a deletion releases the capacity.
func (x *Explorer) PostResult(ctx context.Context, nodeID string, res gridtypes.Result) error {
	if res.NodeID != nodeID {
		return fmt.Errorf("node %s posted a result of node %s: %w", nodeID, res.NodeID, explorer.ErrForbidden)
	}
	if err := res.Validate(); err != nil {
		return fmt.Errorf("result: %w", err)
	}
	if err := res.Verify(); err != nil {
		return err
	}
	var (
		held   gridtypes.Capacity
		farmID uint64
		ip     string
	)
	// A reservation deleted because an update replaced it hands what it
	// holds to that update.
	inherited := res.State == gridtypes.StateDeleted && x.inherit(ctx, nodeID, res.ReservationID)
	rec, err := updateJSON(ctx, x.st.res, resKey(nodeID, res.ReservationID), false, func(rec *record) error {
		held, farmID, ip = gridtypes.Capacity{}, 0, ""
		r := rec.Reservation
		if r.Type != res.Type {
			return fmt.Errorf("result of type %s for a %s: %w", res.Type, r.Type, gridtypes.ErrInvalid)
		}
		if r.Result != nil && r.Result.State == gridtypes.StateDeleted && res.State != gridtypes.StateDeleted {
			return fmt.Errorf("reservation %d is deleted: %w", r.ID, explorer.ErrConflict)
		}
		r.Result = &res
		switch res.State {
		case gridtypes.StateError:
			if r.NextAction == gridtypes.ActionDeploy || r.NextAction == gridtypes.ActionSign {
				r.NextAction = gridtypes.ActionDelete
			}
			held, farmID, ip = rec.release()
		case gridtypes.StateDeleted:
			r.NextAction = gridtypes.ActionDeleted
			held, farmID, ip = rec.release()
			if inherited {
				held = gridtypes.Capacity{} // now the update's
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("result of reservation %d: %w", res.ReservationID, err)
	}
	x.releaseRecord(ctx, nodeID, res.ReservationID, held, farmID, ip)
	x.log.DebugContext(ctx, "result stored", "id", res.ReservationID, "node", nodeID, "state", res.State)
	_ = rec
	return nil
}

// ResFilter selects reservations in a listing.
type ResFilter struct {
	UserID uint64
	NodeID string
	// Actions keeps reservations in one of these next actions (all if empty).
	Actions []gridtypes.NextAction
}

// Reservations lists reservations matching f, by id.
func (x *Explorer) Reservations(ctx context.Context, f ResFilter) ([]*gridtypes.Reservation, error) {
	filter := ">"
	if f.NodeID != "" {
		if !isKeyToken(f.NodeID) {
			return nil, nil
		}
		filter = f.NodeID + ".*"
	}
	var out []*gridtypes.Reservation
	err := scan(ctx, x.st.res, func(_ string, v []byte) error {
		rec, err := decodeStored[record](v)
		if err != nil {
			return err
		}
		r := rec.Reservation
		if (f.UserID == 0 || r.UserID == f.UserID) && (len(f.Actions) == 0 || slices.Contains(f.Actions, r.NextAction)) {
			out = append(out, r)
		}
		return nil
	}, filter)
	slices.SortFunc(out, func(a, b *gridtypes.Reservation) int { return cmpU64(a.ID, b.ID) })
	return out, err
}

func decodeStored[T any](b []byte) (T, error) {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("stored value: %w: %w", explorer.ErrInternal, err)
	}
	return v, nil
}

// deliver publishes r on its node's subject without waiting: the
// reservation is already accepted, so a failed publish is retried in the
// background (and at start). The message id makes republishing idempotent
// within the stream's duplicate window, and a node de-duplicates by id.
func (x *Explorer) deliver(ctx context.Context, r *gridtypes.Reservation) {
	m, err := deliveryMsg(r)
	if err == nil {
		var f jetstream.PubAckFuture
		if f, err = x.js.PublishMsgAsync(m); err == nil {
			go func() {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					x.log.WarnContext(ctx, "delivery failed, retrying", "id", r.ID, "node", r.NodeID, "error", err)
					x.retry.add(r)
				}
			}()
			return
		}
	}
	x.log.WarnContext(ctx, "delivery failed, retrying", "id", r.ID, "node", r.NodeID, "error", err)
	x.retry.add(r)
}

func deliveryMsg(r *gridtypes.Reservation) (*nats.Msg, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("reservation %d: %w", r.ID, err)
	}
	m := nats.NewMsg(explorer.DeliverySubject(r.NodeID))
	m.Data = b
	m.Header.Set(explorer.MsgIDHeader, strconv.FormatUint(r.ID, 10)+"-"+r.NextAction.String())
	return m, nil
}

// publish publishes r and waits for the stream's acknowledgement.
func (x *Explorer) publish(ctx context.Context, r *gridtypes.Reservation) error {
	m, err := deliveryMsg(r)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = x.js.PublishMsg(ctx, m, jetstream.WithRetryAttempts(5), jetstream.WithRetryWait(200*time.Millisecond))
	return err
}

// reconcile repairs what a crash between two steps can leave: it
// re-creates the nodes' consumers, re-delivers reservations the node may
// not have received and recomputes each node's reserved capacity from the
// records.
func (x *Explorer) reconcile(ctx context.Context) error {
	if err := x.ensureConsumers(ctx); err != nil {
		return err
	}
	held := map[string]gridtypes.Capacity{}
	var redeliver []*gridtypes.Reservation
	err := scan(ctx, x.st.res, func(k string, v []byte) error {
		rec, err := decodeStored[record](v)
		if err != nil {
			return err
		}
		r := rec.Reservation
		held[r.NodeID] = held[r.NodeID].Add(rec.Held)
		switch {
		case r.NextAction == gridtypes.ActionDeploy && r.Result == nil,
			r.NextAction == gridtypes.ActionDelete && (r.Result == nil || r.Result.State != gridtypes.StateDeleted):
			redeliver = append(redeliver, r)
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = scan(ctx, x.st.capacity, func(k string, _ []byte) error {
		if _, ok := held[k]; !ok && !strings.Contains(k, ".") {
			held[k] = gridtypes.Capacity{}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for node, c := range held {
		if _, err := putJSON(ctx, x.st.capacity, node, c); err != nil {
			return err
		}
		x.ledger.forget(node)
	}
	for _, r := range redeliver {
		x.deliver(ctx, r)
	}
	x.log.InfoContext(ctx, "reconciled", "nodes", len(held), "redelivered", len(redeliver))
	return nil
}

// unsignedSet tracks the reservations waiting for their provision quorum,
// by key, with the time their request expires, so the periodic expiry
// reads only those records (filled by one scan, then on create).
type unsignedSet struct {
	mu     sync.Mutex
	loaded bool
	m      map[string]int64 // guarded by mu: key → Expires
}

func (u *unsignedSet) add(key string, expires int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[string]int64{}
	}
	u.m[key] = expires
}

// loadUnsigned fills the unsigned set from the store, once.
func (x *Explorer) loadUnsigned(ctx context.Context) error {
	x.unsigned.mu.Lock()
	loaded := x.unsigned.loaded
	x.unsigned.mu.Unlock()
	if loaded {
		return nil
	}
	err := scan(ctx, x.st.res, func(k string, v []byte) error {
		rec, err := decodeStored[record](v)
		if err != nil {
			return err
		}
		if r := rec.Reservation; r.NextAction == gridtypes.ActionSign {
			x.unsigned.add(k, r.Expires)
		}
		return nil
	})
	if err != nil {
		return err
	}
	x.unsigned.mu.Lock()
	x.unsigned.loaded = true
	x.unsigned.mu.Unlock()
	return nil
}

// expireUnsigned closes reservations still waiting for their provision
// quorum once their request expired (Expires): they become invalid and
// release what they held. It returns how many it closed.
func (x *Explorer) expireUnsigned(ctx context.Context, now time.Time) (int, error) {
	if err := x.loadUnsigned(ctx); err != nil {
		return 0, err
	}
	var due []string
	x.unsigned.mu.Lock()
	for k, expires := range x.unsigned.m {
		if now.Unix() > expires {
			due = append(due, k)
		}
	}
	x.unsigned.mu.Unlock()
	n := 0
	for _, k := range due {
		var (
			held   gridtypes.Capacity
			farmID uint64
			ip     string
			closed bool
		)
		rec, err := updateJSON(ctx, x.st.res, k, false, func(rec *record) error {
			held, farmID, ip, closed = gridtypes.Capacity{}, 0, "", false
			r := rec.Reservation
			if r.NextAction != gridtypes.ActionSign {
				return nil // signed or deleted meanwhile
			}
			r.NextAction = gridtypes.ActionInvalid
			held, farmID, ip = rec.release()
			closed = true
			return nil
		})
		if err != nil && !errors.Is(err, explorer.ErrNotFound) {
			x.log.WarnContext(ctx, "expire unsigned reservation", "key", k, "error", err)
			continue
		}
		x.unsigned.mu.Lock()
		delete(x.unsigned.m, k)
		x.unsigned.mu.Unlock()
		if closed {
			r := rec.Reservation
			x.releaseRecord(ctx, r.NodeID, r.ID, held, farmID, ip)
			x.log.InfoContext(ctx, "reservation expired unsigned", "id", r.ID, "node", r.NodeID)
			n++
		}
	}
	return n, nil
}

// expireLoop runs expireUnsigned every interval until ctx ends.
func (x *Explorer) expireLoop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := x.expireUnsigned(ctx, x.now()); err != nil && ctx.Err() == nil {
				x.log.WarnContext(ctx, "expire unsigned reservations", "error", err)
			}
		}
	}
}
