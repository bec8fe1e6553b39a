// Package explorer is the client side of the grid registry: NodeClient is
// what a node uses (it takes the role the seed's gedis client had):
// register, heartbeat, capacity, interfaces and ports reports, watching its
// own reservations and posting signed results, all over NATS authenticated
// with the node's ed25519 key; Client is the HTTP+JSON client users and
// the zos CLI use. The wire types, subjects and error codes shared with the
// server (internal/explorer, cmd/explorer) are defined here too.
//
// Errors from the explorer are *APIError values wrapping a sentinel of
// this package (ErrNotFound, ErrConflict, ErrReplay,
// ErrInsufficientCapacity, ErrForbidden, ErrUnavailable) or of gridtypes
// (ErrInvalid, ErrMalformed, ErrTooLarge, ErrUnsigned, ErrBadSignature,
// ErrExpired, ErrNotYetValid), so callers match them with errors.Is.
package explorer
