package pkg

import (
	"errors"
	"fmt"

	"github.com/zos-go/zos/pkg/types"
)

// ErrFieldRequired is the reason in a FieldError when a required field is
// empty.
var ErrFieldRequired = errors.New("required")

// FieldError reports which field of a seed value failed validation and why.
// Match it with errors.As; Err is ErrFieldRequired (match with errors.Is).
type FieldError struct {
	// Object names the kind of value, e.g. "network resource".
	Object string
	// Field is the Go path of the field, e.g. "Subnet" or
	// "Peers[1].AllowedIPs[0]".
	Field string
	// Err is the reason.
	Err error
}

// Error returns "<object> <field>: <reason>".
func (e *FieldError) Error() string {
	return fmt.Sprintf("%s %s: %v", e.Object, e.Field, e.Err)
}

// Unwrap returns the reason.
func (e *FieldError) Unwrap() error {
	return e.Err
}

// Valid checks that the network resource has every field set: NetID, Name,
// NetworkIPRange, NodeID, Subnet, WGPrivateKey, WGPublicKey, WGListenPort,
// and, for each peer, WGPublicKey, Subnet and at least one allowed IP (none
// of them unset). It returns a *FieldError for the first missing field, in
// that order, or nil. Peers is optional; Peer.Endpoint may be empty.
func (nr *NetResource) Valid() error {
	missing := func(field string) error {
		return &FieldError{Object: "network resource", Field: field, Err: ErrFieldRequired}
	}
	switch {
	case nr.NetID == "":
		return missing("NetID")
	case nr.Name == "":
		return missing("Name")
	case !ipNetSet(nr.NetworkIPRange):
		return missing("NetworkIPRange")
	case nr.NodeID == "":
		return missing("NodeID")
	case !ipNetSet(nr.Subnet):
		return missing("Subnet")
	case nr.WGPrivateKey == "":
		return missing("WGPrivateKey")
	case nr.WGPublicKey == "":
		return missing("WGPublicKey")
	case nr.WGListenPort == 0:
		return missing("WGListenPort")
	}
	for i, p := range nr.Peers {
		prefix := fmt.Sprintf("Peers[%d].", i)
		switch {
		case p.WGPublicKey == "":
			return missing(prefix + "WGPublicKey")
		case !ipNetSet(p.Subnet):
			return missing(prefix + "Subnet")
		case len(p.AllowedIPs) == 0:
			return missing(prefix + "AllowedIPs")
		}
		for j, ip := range p.AllowedIPs {
			if !ipNetSet(ip) {
				return missing(fmt.Sprintf("%sAllowedIPs[%d]", prefix, j))
			}
		}
	}
	return nil
}

// ipNetSet reports whether n has both an address and a mask.
func ipNetSet(n types.IPNet) bool {
	return len(n.IP) > 0 && len(n.Mask) > 0
}
