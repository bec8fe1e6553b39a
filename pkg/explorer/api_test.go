package explorer

import (
	"errors"
	"fmt"
	"testing"

	"github.com/zos-go/zos/pkg/gridtypes"
)

// TestErrorCodesRoundTrip checks that every sentinel the server reports
// comes back as the same sentinel on the client side.
func TestErrorCodesRoundTrip(t *testing.T) {
	for _, sentinel := range []error{ErrNotFound, ErrConflict, ErrReplay, ErrInsufficientCapacity, ErrForbidden, ErrUnavailable,
		gridtypes.ErrInvalid, gridtypes.ErrMalformed, gridtypes.ErrTooLarge, gridtypes.ErrUnsigned, gridtypes.ErrBadSignature,
		gridtypes.ErrExpired, gridtypes.ErrNotYetValid} {
		wrapped := fmt.Errorf("reservation 7: %w", sentinel)
		back := &APIError{Code: Code(wrapped), Message: wrapped.Error()}
		if !errors.Is(back, sentinel) {
			t.Errorf("%v came back as %v (code %q)", sentinel, back.Unwrap(), back.Code)
		}
	}
	// Specific sentinels keep their general class.
	if back := (&APIError{Code: Code(ErrReplay)}); !errors.Is(back, ErrConflict) {
		t.Error("replay is not a conflict")
	}
	if back := (&APIError{Code: Code(gridtypes.ErrTooLarge)}); !errors.Is(back, gridtypes.ErrInvalid) {
		t.Error("too large is not invalid")
	}
	if Code(errors.New("boom")) != "internal" || !errors.Is(&APIError{Code: "what"}, ErrInternal) {
		t.Error("unknown errors")
	}
	// A field error keeps its class.
	if Code(&gridtypes.FieldError{Field: "x", Reason: "bad"}) != "invalid" {
		t.Error("field error code")
	}
}
