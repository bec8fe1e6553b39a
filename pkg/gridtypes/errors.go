package gridtypes

import (
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by every error about content that breaks the schema:
// a bad field value ([FieldError]), an unknown workload type or enum name,
// malformed JSON, an oversized document.
var ErrInvalid = errors.New("invalid")

// ErrMalformed is wrapped when bytes are not a JSON document of the expected
// shape (syntax error, wrong type, unknown field, trailing data).
var ErrMalformed = fmt.Errorf("malformed: %w", ErrInvalid)

// ErrTooLarge is wrapped when a document exceeds MaxReservationSize or a
// field exceeds its size limit.
var ErrTooLarge = fmt.Errorf("too large: %w", ErrInvalid)

// ErrUnknownWorkloadType is wrapped when a workload type is not one of
// WorkloadTypes().
var ErrUnknownWorkloadType = fmt.Errorf("unknown workload type: %w", ErrInvalid)

// ErrInvalidEnum is wrapped when an enum name or value is unknown.
var ErrInvalidEnum = fmt.Errorf("unknown enum value: %w", ErrInvalid)

// ErrUnsigned is wrapped when a signature that must be present is missing.
var ErrUnsigned = errors.New("not signed")

// ErrBadSignature is wrapped when a signature does not verify against the
// content and the signer's key (or is not a hex-encoded 64-byte signature).
var ErrBadSignature = errors.New("bad signature")

// ErrExpired is wrapped when a signed request is past its expiry.
var ErrExpired = errors.New("expired")

// ErrNotYetValid is wrapped when a signed request is dated in the future
// beyond the allowed clock skew, or its validity window is too long.
var ErrNotYetValid = errors.New("not yet valid")

// FieldError reports a field that breaks the schema. It wraps ErrInvalid
// and, when set, Err (e.g. ErrTooLarge).
type FieldError struct {
	// Field is the JSON path of the field, e.g. "data.capacity.cpu".
	Field string
	// Reason says what is wrong, in lower case.
	Reason string
	// Err is an optional more precise sentinel.
	Err error
}

// Error implements error.
func (e *FieldError) Error() string {
	return "field " + e.Field + ": " + e.Reason
}

// Unwrap returns ErrInvalid and Err.
func (e *FieldError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalid, e.Err}
	}
	return []error{ErrInvalid}
}

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// prefixed returns err with its field path prefixed by p (a FieldError),
// or err unchanged.
func prefixed(p string, err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		c := *fe
		c.Field = p + "." + c.Field
		return &c
	}
	return err
}
