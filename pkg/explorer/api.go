package explorer

import (
	"errors"
	"fmt"

	"github.com/zos-go/zos/pkg/gridtypes"
)

// NATS layout shared by the explorer and its clients.
const (
	// DeliveryStream is the JetStream stream holding reservations to
	// deliver, one subject per node.
	DeliveryStream = "ZOS_DELIVERY"
	// DeliverySubjectPrefix + node id is the subject a node's
	// reservations are published on.
	DeliverySubjectPrefix = "zos.deliver."
	// NodeSubjectPrefix + node id + "." + op is where a node sends its
	// requests to the explorer (NodeOp*).
	NodeSubjectPrefix = "zos.node."
	// ConsumerPrefix + node id is the node's durable consumer.
	ConsumerPrefix = "node-"
	// InboxPrefix + node id is the inbox prefix a node must use: it may
	// subscribe only below it.
	InboxPrefix = "_INBOX_"
	// QueueGroup is the queue group explorer instances serve node
	// requests in.
	QueueGroup = "explorer"
	// MsgIDHeader is the JetStream de-duplication header of deliveries.
	MsgIDHeader = "Nats-Msg-Id"
)

// Node request operations (the last token of the subject).
const (
	NodeOpRegister     = "register"
	NodeOpUptime       = "uptime"
	NodeOpCapacity     = "capacity"
	NodeOpInterfaces   = "interfaces"
	NodeOpPorts        = "ports"
	NodeOpResult       = "result"
	NodeOpGet          = "get"
	NodeOpFarm         = "farm"
	NodeOpUser         = "user"
	NodeOpReservation  = "reservation"
	NodeOpReservations = "reservations"
	// NodeOpConsumer asks the explorer to (re-)create the node's consumer.
	NodeOpConsumer = "consumer"
)

// DeliverySubject is the subject node id's reservations are published on.
func DeliverySubject(nodeID string) string { return DeliverySubjectPrefix + nodeID }

// ConsumerName is the durable consumer of node id.
func ConsumerName(nodeID string) string { return ConsumerPrefix + nodeID }

// NodeSubject is the subject of node id's request op.
func NodeSubject(nodeID, op string) string { return NodeSubjectPrefix + nodeID + "." + op }

// Registration is what a node sends at boot and after an upgrade.
type Registration struct {
	FarmID    uint64             `json:"farm_id"`
	Hostname  string             `json:"hostname,omitempty"`
	OSVersion string             `json:"os_version,omitempty"`
	Location  gridtypes.Location `json:"location,omitzero"`
	Uptime    uint64             `json:"uptime,omitempty"`
}

// CapacityReport is what a node has, keeps for itself and uses.
type CapacityReport struct {
	Total     gridtypes.Capacity                `json:"total"`
	System    gridtypes.Capacity                `json:"system"`
	Used      gridtypes.Capacity                `json:"used"`
	Workloads map[gridtypes.WorkloadType]uint64 `json:"workloads,omitzero"`
}

// UptimeReport is a node's heartbeat.
type UptimeReport struct {
	// Uptime in seconds.
	Uptime uint64 `json:"uptime"`
}

// IDRequest names an object by numeric id.
type IDRequest struct {
	ID uint64 `json:"id"`
}

// CreatedResponse is the answer to a create request.
type CreatedResponse struct {
	ID uint64 `json:"id"`
}

// Reply is the envelope of every answer on NATS, and the body of every HTTP
// error: Error and Code on failure, Data (the object) on success.
type Reply struct {
	Error string `json:"error,omitempty"`
	Code  string `json:"code,omitempty"`
	Data  any    `json:"data,omitempty"`
}

// Errors of the explorer API. Every error a client receives wraps one of
// these or a gridtypes sentinel, whichever the server reported.
var (
	// ErrNotFound: no such user, farm, node or reservation.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the name, address or state is already taken.
	ErrConflict = errors.New("conflict")
	// ErrReplay: this exact signed request was accepted before.
	ErrReplay = fmt.Errorf("replayed request: %w", ErrConflict)
	// ErrInsufficientCapacity: the node cannot fit the reservation now
	// (or ever, when the request exceeds its total).
	ErrInsufficientCapacity = errors.New("insufficient capacity")
	// ErrForbidden: the signer may not do this.
	ErrForbidden = errors.New("forbidden")
	// ErrUnavailable: the explorer or its NATS cluster cannot serve now.
	ErrUnavailable = errors.New("unavailable")
	// ErrInternal: the explorer failed.
	ErrInternal = errors.New("internal error")
)

// codes maps wire codes to sentinels, most specific first.
var codes = []struct {
	code string
	err  error
}{
	{"replay", ErrReplay},
	{"conflict", ErrConflict},
	{"not_found", ErrNotFound},
	{"insufficient_capacity", ErrInsufficientCapacity},
	{"forbidden", ErrForbidden},
	{"unsigned", gridtypes.ErrUnsigned},
	{"bad_signature", gridtypes.ErrBadSignature},
	{"expired", gridtypes.ErrExpired},
	{"not_yet_valid", gridtypes.ErrNotYetValid},
	{"too_large", gridtypes.ErrTooLarge},
	{"malformed", gridtypes.ErrMalformed},
	{"invalid", gridtypes.ErrInvalid},
	{"unavailable", ErrUnavailable},
}

// Code returns the wire code of err: the first sentinel it wraps, or
// "internal".
func Code(err error) string {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "internal"
}

// Sentinel returns the error of a wire code (ErrInternal when unknown).
func Sentinel(code string) error {
	for _, c := range codes {
		if c.code == code {
			return c.err
		}
	}
	return ErrInternal
}

// APIError is an error reported by the explorer. It wraps the sentinel of
// its code, so errors.Is(err, explorer.ErrNotFound) or
// errors.Is(err, gridtypes.ErrBadSignature) work on the client side.
type APIError struct {
	// Status is the HTTP status (0 over NATS).
	Status int
	// Code is the wire code.
	Code string
	// Message is the server's text.
	Message string
}

// Error implements error.
func (e *APIError) Error() string { return "explorer: " + e.Message }

// Unwrap returns the sentinel of Code.
func (e *APIError) Unwrap() error { return Sentinel(e.Code) }
