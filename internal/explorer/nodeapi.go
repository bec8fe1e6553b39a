package explorer

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zos-go/zos/pkg/explorer"
	"github.com/zos-go/zos/pkg/gridtypes"
)

// nodeRequestTimeout bounds the handling of one node request.
const nodeRequestTimeout = 15 * time.Second

// serveNodes subscribes to the node requests of every node (the NATS
// permissions guarantee the second subject token is the sender's node id)
// and serves them with cfg.Workers goroutines.
func (x *Explorer) serveNodes(ctx context.Context, wg *sync.WaitGroup) (stop func(), err error) {
	ch := make(chan *nats.Msg, 4096)
	sub, err := x.nc.ChanQueueSubscribe(explorer.NodeSubjectPrefix+"*.*", explorer.QueueGroup, ch)
	if err != nil {
		return nil, fmt.Errorf("node api: %w: %w", ErrStart, err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	for range x.cfg.Workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-ch:
					x.serveNode(ctx, m)
				}
			}
		})
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

func (x *Explorer) serveNode(ctx context.Context, m *nats.Msg) {
	parts := strings.Split(m.Subject, ".")
	if len(parts) != 4 || m.Reply == "" {
		return
	}
	nodeID, op := parts[2], parts[3]
	ctx, cancel := context.WithTimeout(ctx, nodeRequestTimeout)
	defer cancel()
	data, err := x.nodeOp(ctx, nodeID, op, m.Data)
	var rep explorer.Reply
	if err != nil {
		rep.Error, rep.Code = err.Error(), explorer.Code(err)
		if rep.Code == "internal" || rep.Code == "unavailable" {
			x.log.WarnContext(ctx, "node request failed", "node", nodeID, "op", op, "error", err)
		}
	} else {
		rep.Data = data
	}
	b, err := json.Marshal(rep)
	if err != nil {
		b = []byte(`{"error":"encode reply","code":"internal"}`)
	}
	if err := m.Respond(b); err != nil {
		x.log.DebugContext(ctx, "node reply failed", "node", nodeID, "error", err)
	}
}

func decodeBody[T any](op string, b []byte) (T, error) {
	var v T
	if len(b) > 1<<20 {
		return v, fmt.Errorf("%s: %w", op, gridtypes.ErrTooLarge)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("%s: %w: %w", op, gridtypes.ErrMalformed, err)
	}
	return v, nil
}

// nodeOp runs one request of node nodeID.
func (x *Explorer) nodeOp(ctx context.Context, nodeID, op string, body []byte) (any, error) {
	if _, err := gridtypes.ParseNodeID(nodeID); err != nil {
		return nil, err
	}
	switch op {
	case explorer.NodeOpRegister:
		reg, err := decodeBody[explorer.Registration](op, body)
		if err != nil {
			return nil, err
		}
		return x.Register(ctx, nodeID, reg)
	case explorer.NodeOpUptime:
		up, err := decodeBody[explorer.UptimeReport](op, body)
		if err != nil {
			return nil, err
		}
		return nil, x.updateNode(ctx, nodeID, func(n *gridtypes.Node) { n.Uptime = up.Uptime })
	case explorer.NodeOpCapacity:
		c, err := decodeBody[explorer.CapacityReport](op, body)
		if err != nil {
			return nil, err
		}
		return nil, x.updateNode(ctx, nodeID, func(n *gridtypes.Node) {
			n.TotalResources, n.SystemResources, n.UsedResources, n.Workloads = c.Total, c.System, c.Used, c.Workloads
		})
	case explorer.NodeOpInterfaces:
		ifs, err := decodeBody[[]gridtypes.Iface](op, body)
		if err != nil {
			return nil, err
		}
		return nil, x.updateNode(ctx, nodeID, func(n *gridtypes.Node) { n.Interfaces = ifs })
	case explorer.NodeOpPorts:
		ports, err := decodeBody[[]uint16](op, body)
		if err != nil {
			return nil, err
		}
		return nil, x.updateNode(ctx, nodeID, func(n *gridtypes.Node) { n.WGPorts = ports })
	case explorer.NodeOpResult:
		res, err := decodeBody[gridtypes.Result](op, body)
		if err != nil {
			return nil, err
		}
		return nil, x.PostResult(ctx, nodeID, res)
	case explorer.NodeOpGet:
		return x.Node(ctx, nodeID)
	case explorer.NodeOpConsumer:
		if _, err := x.nodeRecord(ctx, nodeID); err != nil {
			return nil, err
		}
		return nil, x.ensureConsumer(ctx, nodeID)
	case explorer.NodeOpFarm:
		n, err := x.Node(ctx, nodeID)
		if err != nil {
			return nil, err
		}
		return x.Farm(ctx, n.FarmID)
	case explorer.NodeOpUser:
		req, err := decodeBody[explorer.IDRequest](op, body)
		if err != nil {
			return nil, err
		}
		return x.User(ctx, req.ID)
	case explorer.NodeOpReservation:
		req, err := decodeBody[explorer.IDRequest](op, body)
		if err != nil {
			return nil, err
		}
		rec, _, err := getJSON[record](ctx, x.st.res, resKey(nodeID, req.ID))
		if err != nil {
			return nil, fmt.Errorf("reservation %d of node %s: %w", req.ID, nodeID, err)
		}
		return rec.Reservation, nil
	case explorer.NodeOpReservations:
		return x.Reservations(ctx, ResFilter{NodeID: nodeID, Actions: []gridtypes.NextAction{gridtypes.ActionDeploy, gridtypes.ActionDelete}})
	}
	return nil, fmt.Errorf("node operation %q: %w", op, explorer.ErrNotFound)
}
