package primitives

import (
	"context"
	"fmt"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/provision"
	"github.com/zos-go/zos/pkg/types"
)

// Network provisions network resources: this node's part of a user's
// private WireGuard network. An update re-applies the resource in place
// (peers added, removed or changed without disturbing the others).
type Network struct {
	Networker pkg.Networker
}

var _ provision.Provisioner = Network{}

// NetResource converts a network reservation to the seed's NetResource. The
// WireGuard private key stays sealed: the network module opens it itself,
// as the original's networkd did.
func NetResource(r *gridtypes.Reservation) (pkg.NetResource, error) {
	w, err := r.Workload()
	if err != nil {
		return pkg.NetResource{}, err
	}
	n, ok := w.(*gridtypes.Network)
	if !ok {
		return pkg.NetResource{}, fmt.Errorf("reservation %d is a %s, not a network", r.ID, r.Type)
	}
	whole, err := types.ParseIPNet(n.NetworkIPRange)
	if err != nil {
		return pkg.NetResource{}, fmt.Errorf("network_iprange: %w", err)
	}
	sub, err := types.ParseIPNet(n.IPRange)
	if err != nil {
		return pkg.NetResource{}, fmt.Errorf("iprange: %w", err)
	}
	nr := pkg.NetResource{
		Name:           n.Name,
		NetID:          pkg.NetID(gridtypes.NetworkID(r.UserID, n.Name)),
		NetworkIPRange: whole,
		NodeID:         r.NodeID,
		Subnet:         sub,
		WGPrivateKey:   n.WireguardPrivateKeyEncrypted,
		WGPublicKey:    n.WireguardPublicKey,
		WGListenPort:   n.WireguardListenPort,
	}
	for i, p := range n.Peers {
		ps, err := types.ParseIPNet(p.IPRange)
		if err != nil {
			return pkg.NetResource{}, fmt.Errorf("peers[%d].iprange: %w", i, err)
		}
		peer := pkg.Peer{Subnet: ps, WGPublicKey: p.PublicKey, Endpoint: p.Endpoint}
		for j, a := range p.AllowedIPRange {
			an, err := types.ParseIPNet(a)
			if err != nil {
				return pkg.NetResource{}, fmt.Errorf("peers[%d].allowed_iprange[%d]: %w", i, j, err)
			}
			peer.AllowedIPs = append(peer.AllowedIPs, an)
		}
		nr.Peers = append(nr.Peers, peer)
	}
	return nr, nil
}

// Provision implements provision.Provisioner.
func (n Network) Provision(_ context.Context, d *provision.Deployment) (any, error) {
	nr, err := NetResource(d.Reservation)
	if err != nil {
		return nil, err
	}
	if _, err := n.Networker.CreateNR(nr); err != nil {
		return nil, fmt.Errorf("network %s: %w", nr.NetID, err)
	}
	return nil, nil
}

// Decommission implements provision.Provisioner.
func (n Network) Decommission(_ context.Context, d *provision.Deployment) error {
	nr, err := NetResource(d.Reservation)
	if err != nil {
		return err
	}
	if err := n.Networker.DeleteNR(nr); err != nil && !notFound(err) {
		return fmt.Errorf("network %s: %w", nr.NetID, err)
	}
	return nil
}
