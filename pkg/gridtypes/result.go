package gridtypes

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"time"
)

// Result is what a node reports about a reservation: deployed (with
// type-specific data such as the container's IPs), failed (with the error
// message) or deleted. The node signs it; the explorer verifies the
// signature with the node's key before storing it (the original verified
// neither side).
type Result struct {
	// ReservationID is the reservation the result is about.
	ReservationID uint64 `json:"reservation_id"`
	// NodeID is the reporting node.
	NodeID string       `json:"node_id"`
	Type   WorkloadType `json:"type"`
	State  ResultState  `json:"state"`
	// Message is the error text of a StateError result.
	Message string `json:"message,omitempty"`
	// Data is the type-specific JSON (ContainerResult, ...), or nil.
	Data json.RawMessage `json:"data,omitzero"`
	// Created is when the node produced it (unix seconds).
	Created int64 `json:"created"`
	// Signature is hex ed25519 by the node over Hash().
	Signature string `json:"signature"`
}

// NewResult builds an unsigned result for r; data (nil for none) is
// marshalled to JSON.
func NewResult(r *Reservation, state ResultState, message string, data any, now time.Time) (*Result, error) {
	res := &Result{ReservationID: r.ID, NodeID: r.NodeID, Type: r.Type, State: state, Message: message, Created: now.Unix()}
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			return nil, fmt.Errorf("result of reservation %d: %w", r.ID, err)
		}
		res.Data = b
	}
	return res, nil
}

// Hash is the SHA-256 of the canonical encoding of the tag "zos-result-v1",
// reservation id, node id, type, state, message, data (canonical JSON text)
// and created. Binding the reservation id and node id means a result
// cannot be replayed for another reservation (the original signed only
// state ‖ message ‖ data).
func (r *Result) Hash() [32]byte {
	e := newEncoder("zos-result-v1")
	e.u64(r.ReservationID)
	e.str(r.NodeID)
	e.str(string(r.Type))
	e.u8(uint8(r.State))
	e.str(r.Message)
	e.rawJSON(r.Data)
	e.i64(r.Created)
	return e.sum()
}

// Sign sets Signature with the node's key.
func (r *Result) Sign(sk ed25519.PrivateKey) {
	r.Signature = signHex(sk, r.Hash())
}

// Verify checks Signature against the key of NodeID.
func (r *Result) Verify() error {
	pk, err := ParseNodeID(r.NodeID)
	if err != nil {
		return fmt.Errorf("result of reservation %d: %w", r.ReservationID, err)
	}
	if err := verifyHex(pk, r.Hash(), r.Signature); err != nil {
		return fmt.Errorf("result of reservation %d: %w", r.ReservationID, err)
	}
	return nil
}

// Validate checks the shape of r: known type and state, a node id, data
// that is JSON, bounded message.
func (r *Result) Validate() error {
	if _, err := ParseNodeID(r.NodeID); err != nil {
		return err
	}
	if err := r.Type.Valid(); err != nil {
		return err
	}
	if r.State > StateDeleted {
		return fieldErr("state", "%d is not a result state", r.State)
	}
	if err := checkStr("message", r.Message, MaxStringLen, false); err != nil {
		return err
	}
	if len(r.Data) > MaxReservationSize {
		return &FieldError{Field: "data", Reason: "larger than the reservation limit", Err: ErrTooLarge}
	}
	if len(r.Data) > 0 && !json.Valid(r.Data) {
		return fieldErr("data", "is not json")
	}
	return nil
}

// ContainerResult is the data of a deployed container.
type ContainerResult struct {
	ID        string `json:"id"`
	IPv6      string `json:"ipv6,omitempty"`
	IPv4      string `json:"ipv4,omitempty"`
	Yggdrasil string `json:"yggdrasil,omitempty"`
}

// VolumeResult is the data of a deployed volume.
type VolumeResult struct {
	VolumeID string `json:"volume_id"`
	// Snapshots are the volume's snapshots, by name.
	Snapshots []string `json:"snapshots,omitzero"`
}

// ZDBResult is the data of a deployed 0-db namespace. The original used
// untagged Go names (Namespace, IPs, Port); zos uses lower-case keys.
type ZDBResult struct {
	Namespace string   `json:"namespace"`
	IPs       []string `json:"ips"`
	Port      uint16   `json:"port"`
}

// KubernetesResult is the data of a deployed kubernetes VM.
type KubernetesResult struct {
	ID string `json:"id"`
	IP string `json:"ip"`
}

// PublicIPResult is the data of a reserved public IP.
type PublicIPResult struct {
	ID string `json:"id"`
	IP string `json:"ip"`
}

// VMResult is the data of a deployed VM.
type VMResult struct {
	ID       string `json:"id"`
	IP       string `json:"ip,omitempty"`
	PublicIP string `json:"public_ip,omitempty"`
	IPv6     string `json:"ipv6,omitempty"`
}
