package gridtypes

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// CurrentVersion is the reservation version clients create: secrets of
// kind SecretUser are ECDH-encrypted (versions 1 and 2 use the same scheme;
// 2 is what the original explorer stamped). Version 0 means sealed boxes.
const CurrentVersion = 2

// Time limits of a signed reservation request.
const (
	// MaxValidity is the longest allowed Expires - Created: a signed
	// request can be submitted for at most this long, which bounds how
	// long the explorer must remember hashes to refuse replays.
	MaxValidity = time.Hour
	// ClockSkew is how far in the future Created may be.
	ClockSkew = 5 * time.Minute
	// MaxLifetime bounds Reservation.Lifetime (seconds): ten years.
	MaxLifetime = 10 * 365 * 24 * 3600
)

// WorkloadIndex is the workload index inside a reservation: always 1, since
// a zos reservation holds exactly one workload (see GWID).
const WorkloadIndex = 1

// Reservation is one workload on one node, owned by a user, as signed by
// the user and stored by the explorer. Fields up to CustomerSignature are
// the user's (covered by the signature); the rest are set by the explorer.
type Reservation struct {
	// ID is assigned by the explorer; 0 in a create request.
	ID uint64 `json:"id,omitempty"`
	// Version selects the secret encryption scheme (CurrentVersion).
	Version uint32 `json:"version"`
	// NodeID is the target node (base58 of its ed25519 key).
	NodeID string `json:"node_id"`
	// UserID is the owner, the user whose key signs CustomerSignature.
	UserID uint64 `json:"user_id"`
	// Type is the workload type; Data holds that type's JSON object.
	Type WorkloadType `json:"type"`
	// Data is the workload (see Workload). Decode normalises it to the
	// compact JSON of the typed workload.
	Data json.RawMessage `json:"data"`
	// Description and Metadata are free text (≤ MaxMetadataLen bytes);
	// metadata is often encrypted by the user for themself.
	Description string `json:"description,omitempty"`
	Metadata    string `json:"metadata,omitempty"`
	// Reference is the id of an older reservation this one replaces.
	Reference string `json:"reference,omitempty"`
	// Created is when the user signed (unix seconds).
	Created int64 `json:"created"`
	// Expires is when the signed request stops being accepted (unix
	// seconds), at most MaxValidity after Created. It is not the lifetime
	// of the workload: an accepted reservation lives until deleted.
	Expires int64 `json:"expires"`
	// Lifetime is how long the workload lives, in seconds from Created;
	// the node removes it then (result deleted, "expired"). 0 keeps it
	// until its owner deletes it.
	Lifetime int64 `json:"lifetime,omitempty"`
	// SigningRequestProvision lists who must also sign before the
	// reservation is deployed (empty: deployed at once).
	SigningRequestProvision SigningRequest `json:"signing_request_provision,omitzero"`
	// SigningRequestDelete lists who may sign its deletion, and how many
	// must (empty: the owner alone deletes).
	SigningRequestDelete SigningRequest `json:"signing_request_delete,omitzero"`
	// CustomerSignature is hex ed25519 by the owner over Hash().
	CustomerSignature string `json:"customer_signature"`

	// NextAction is the lifecycle step, set by the explorer.
	NextAction NextAction `json:"next_action"`
	// Accepted is when the explorer stored it (unix seconds).
	Accepted int64 `json:"accepted,omitempty"`
	// SignaturesProvision and SignaturesDelete are the signatures
	// collected so far.
	SignaturesProvision []Signature `json:"signatures_provision,omitzero"`
	SignaturesDelete    []Signature `json:"signatures_delete,omitzero"`
	// Result is the last result the node reported.
	Result *Result `json:"result,omitempty"`
}

// SigningRequest is a multi-signature requirement: QuorumMin distinct
// users of Signers must sign.
type SigningRequest struct {
	Signers   []uint64 `json:"signers,omitzero"`
	QuorumMin uint32   `json:"quorum_min,omitempty"`
}

// Signature is one signer's approval of a reservation for an action.
type Signature struct {
	UserID uint64 `json:"user_id"`
	// Signature is hex ed25519 over SignatureChallenge.
	Signature string `json:"signature"`
	// Epoch is when it was signed (unix seconds), covered by the signature.
	Epoch int64 `json:"epoch"`
}

// ExpiresAt is when the workload's lifetime ends (zero time: never).
func (r *Reservation) ExpiresAt() time.Time {
	if r.Lifetime <= 0 {
		return time.Time{}
	}
	return time.Unix(r.Created+r.Lifetime, 0)
}

// GWID is the node-local workload id "<id>-1" under which a node names
// everything it creates for the reservation (the original's gwid).
func (r *Reservation) GWID() string {
	return strconv.FormatUint(r.ID, 10) + "-" + strconv.Itoa(WorkloadIndex)
}

// ParseGWID returns the reservation id of a node-local workload id
// "<id>-1" (a bare "<id>" is accepted too, as references were written).
func ParseGWID(gwid string) (uint64, error) {
	id, err := strconv.ParseUint(strings.TrimSuffix(gwid, "-"+strconv.Itoa(WorkloadIndex)), 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("workload id %q: %w", gwid, ErrInvalid)
	}
	return id, nil
}

// NewReservation builds an unsigned reservation of w for a node and user,
// valid from now for validity (≤ MaxValidity).
func NewReservation(nodeID string, userID uint64, w Workload, now time.Time, validity time.Duration) (*Reservation, error) {
	data, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("reservation %s: %w", w.WorkloadType(), err)
	}
	return &Reservation{
		Version: CurrentVersion,
		NodeID:  nodeID,
		UserID:  userID,
		Type:    w.WorkloadType(),
		Data:    data,
		Created: now.Unix(),
		Expires: now.Add(validity).Unix(),
	}, nil
}

// newWorkload returns an empty workload of type t.
func newWorkload(t WorkloadType) (Workload, error) {
	switch t {
	case TypeContainer:
		return &Container{}, nil
	case TypeVolume:
		return &Volume{}, nil
	case TypeZDB:
		return &ZDB{}, nil
	case TypeNetwork:
		return &Network{}, nil
	case TypeKubernetes:
		return &Kubernetes{}, nil
	case TypePublicIP:
		return &PublicIP{}, nil
	case TypeDebug:
		return &Debug{}, nil
	case TypeVM:
		return &VM{}, nil
	}
	return nil, t.Valid()
}

// decodeStrict decodes exactly one JSON value into v, refusing unknown
// fields and trailing data; errors wrap ErrMalformed.
func decodeStrict(what string, b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%s: %w: %w", what, ErrMalformed, err)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: trailing data: %w", what, ErrMalformed)
	}
	return nil
}

// Workload decodes Data into the typed workload of Type (strictly: unknown
// fields are refused). It does not validate the fields.
func (r *Reservation) Workload() (Workload, error) {
	w, err := newWorkload(r.Type)
	if err != nil {
		return nil, err
	}
	if len(r.Data) == 0 {
		return nil, &FieldError{Field: "data", Reason: "is required", Err: ErrMalformed}
	}
	if err := decodeStrict("reservation data", r.Data, w); err != nil {
		return nil, err
	}
	return w, nil
}

// SetWorkload replaces Type and Data with w.
func (r *Reservation) SetWorkload(w Workload) error {
	data, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("reservation %d: %w", r.ID, err)
	}
	r.Type, r.Data = w.WorkloadType(), data
	return nil
}

// Decode parses a reservation JSON document: at most MaxReservationSize
// bytes, no unknown fields, no trailing data, a known workload type whose
// data decodes strictly. Data (and the result's data) are normalised, so
// that Decode(json.Marshal(Decode(b))) equals Decode(b). Decode checks the
// shape only: call Validate for the field rules and Verify for the
// signature. Errors wrap ErrMalformed, ErrTooLarge or ErrUnknownWorkloadType.
func Decode(b []byte) (*Reservation, error) {
	return decodeLimited(b, MaxReservationSize)
}

// MaxStoredReservationSize bounds a reservation as the explorer stores and
// delivers it: a request of at most MaxReservationSize plus the explorer's
// part (collected signatures, the node's result).
const MaxStoredReservationSize = 512 << 10

// DecodeStored is Decode for a reservation as the explorer stores and
// delivers it (what a node receives): the size limit is
// MaxStoredReservationSize.
func DecodeStored(b []byte) (*Reservation, error) {
	return decodeLimited(b, MaxStoredReservationSize)
}

func decodeLimited(b []byte, limit int) (*Reservation, error) {
	if len(b) > limit {
		return nil, fmt.Errorf("reservation of %d bytes (limit %d): %w", len(b), limit, ErrTooLarge)
	}
	var r Reservation
	if err := decodeStrict("reservation", b, &r); err != nil {
		return nil, err
	}
	w, err := r.Workload()
	if err != nil {
		return nil, fmt.Errorf("reservation: %w", err)
	}
	if err := r.SetWorkload(w); err != nil {
		return nil, err
	}
	if r.Result != nil {
		r.Result.Data = canonicalJSON(r.Result.Data)
	}
	return &r, nil
}

// Validate checks the user's part of r against the schema rules (it does
// not check time, signatures or the explorer's fields). The error wraps
// ErrInvalid and is usually a *FieldError.
func (r *Reservation) Validate() error {
	if r.Version > CurrentVersion {
		return fieldErr("version", "%d is newer than %d", r.Version, CurrentVersion)
	}
	if _, err := ParseNodeID(r.NodeID); err != nil {
		return err
	}
	if r.UserID == 0 {
		return fieldErr("user_id", "is required")
	}
	if err := checkStr("description", r.Description, MaxMetadataLen, false); err != nil {
		return err
	}
	if err := checkStr("metadata", r.Metadata, MaxMetadataLen, false); err != nil {
		return err
	}
	if err := checkStr("reference", r.Reference, 64, false); err != nil {
		return err
	}
	if r.Created <= 0 {
		return fieldErr("created", "is required")
	}
	if r.Expires <= r.Created {
		return fieldErr("expires", "must be after created")
	}
	if r.Expires-r.Created > int64(MaxValidity/time.Second) {
		return &FieldError{Field: "expires", Reason: "more than " + MaxValidity.String() + " after created", Err: ErrNotYetValid}
	}
	if r.Lifetime < 0 || r.Lifetime > MaxLifetime {
		return fieldErr("lifetime", "%d seconds is out of range 0..%d", r.Lifetime, MaxLifetime)
	}
	if err := r.SigningRequestProvision.validate("signing_request_provision"); err != nil {
		return err
	}
	if err := r.SigningRequestDelete.validate("signing_request_delete"); err != nil {
		return err
	}
	w, err := r.Workload()
	if err != nil {
		return err
	}
	if err := w.Validate(); err != nil {
		return prefixed("data", err)
	}
	return nil
}

func (s SigningRequest) validate(field string) error {
	if err := checkLen(field+".signers", len(s.Signers)); err != nil {
		return err
	}
	seen := make(map[uint64]bool, len(s.Signers))
	for _, id := range s.Signers {
		if id == 0 || seen[id] {
			return fieldErr(field+".signers", "user %d is zero or listed twice", id)
		}
		seen[id] = true
	}
	if int(s.QuorumMin) > len(s.Signers) {
		return fieldErr(field+".quorum_min", "%d is more than the %d signers", s.QuorumMin, len(s.Signers))
	}
	return nil
}

// CheckTime checks that the signed request is usable at now: Created not
// beyond now + ClockSkew (ErrNotYetValid), now not after Expires and not at
// or after the end of the lifetime (ErrExpired).
func (r *Reservation) CheckTime(now time.Time) error {
	if r.Created > now.Add(ClockSkew).Unix() {
		return fmt.Errorf("reservation created at %d, now is %d: %w", r.Created, now.Unix(), ErrNotYetValid)
	}
	if now.Unix() > r.Expires {
		return fmt.Errorf("reservation expired at %d, now is %d: %w", r.Expires, now.Unix(), ErrExpired)
	}
	if at := r.ExpiresAt(); !at.IsZero() && !now.Before(at) {
		return fmt.Errorf("lifetime ended at %d, now is %d: %w", at.Unix(), now.Unix(), ErrExpired)
	}
	return nil
}

// Hash is the SHA-256 of the canonical encoding of the user's part of r
// (see the package documentation). Data that does not decode is an error.
func (r *Reservation) Hash() ([32]byte, error) {
	w, err := r.Workload()
	if err != nil {
		return [32]byte{}, err
	}
	// A lifetime, when set, is encoded under another domain: the hashes of
	// reservations without one are unchanged.
	domain := "zos-reservation-v1"
	if r.Lifetime != 0 {
		domain = "zos-reservation-v2"
	}
	e := newEncoder(domain)
	e.u32(r.Version)
	e.str(r.NodeID)
	e.u64(r.UserID)
	e.str(string(r.Type))
	e.str(r.Description)
	e.str(r.Metadata)
	e.str(r.Reference)
	e.i64(r.Created)
	e.i64(r.Expires)
	if r.Lifetime != 0 {
		e.i64(r.Lifetime)
	}
	for _, s := range []SigningRequest{r.SigningRequestProvision, r.SigningRequestDelete} {
		e.u64s(s.Signers)
		e.u32(s.QuorumMin)
	}
	w.encode(e)
	return e.sum(), nil
}

// HashHex is Hash in hex.
func (r *Reservation) HashHex() (string, error) {
	h, err := r.Hash()
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h[:]), nil
}

// Sign sets CustomerSignature with the owner's key.
func (r *Reservation) Sign(sk ed25519.PrivateKey) error {
	h, err := r.Hash()
	if err != nil {
		return err
	}
	r.CustomerSignature = signHex(sk, h)
	return nil
}

// Verify checks CustomerSignature against the owner's public key: nil,
// or an error wrapping ErrUnsigned or ErrBadSignature.
func (r *Reservation) Verify(pk ed25519.PublicKey) error {
	h, err := r.Hash()
	if err != nil {
		return err
	}
	if err := verifyHex(pk, h, r.CustomerSignature); err != nil {
		return fmt.Errorf("reservation customer signature: %w", err)
	}
	return nil
}

// SignatureChallenge is the digest a signer of a provision or delete
// request signs: SHA-256 of the canonical encoding of the tag
// "zos-sign-v1", the action, the reservation hash, the signer's user id and
// the epoch.
func SignatureChallenge(hash [32]byte, action SignAction, userID uint64, epoch int64) [32]byte {
	e := newEncoder("zos-sign-v1")
	e.str(string(action))
	e.bytes(hash[:])
	e.u64(userID)
	e.i64(epoch)
	return e.sum()
}

// SignAction returns userID's signature of action on r.
func (r *Reservation) SignAction(action SignAction, userID uint64, sk ed25519.PrivateKey, now time.Time) (Signature, error) {
	h, err := r.Hash()
	if err != nil {
		return Signature{}, err
	}
	epoch := now.Unix()
	return Signature{UserID: userID, Epoch: epoch, Signature: signHex(sk, SignatureChallenge(h, action, userID, epoch))}, nil
}

// VerifyAction checks s as a signature of action on r by the key pk.
func (r *Reservation) VerifyAction(action SignAction, s Signature, pk ed25519.PublicKey) error {
	h, err := r.Hash()
	if err != nil {
		return err
	}
	if err := verifyHex(pk, SignatureChallenge(h, action, s.UserID, s.Epoch), s.Signature); err != nil {
		return fmt.Errorf("%s signature of user %d: %w", action, s.UserID, err)
	}
	return nil
}

// Lists reports whether userID is one of the signers.
func (s SigningRequest) Lists(userID uint64) bool {
	for _, id := range s.Signers {
		if id == userID {
			return true
		}
	}
	return false
}

// Met reports whether sigs hold QuorumMin distinct listed signers; a
// request with QuorumMin 0 is always met.
func (s SigningRequest) Met(sigs []Signature) bool {
	seen := map[uint64]bool{}
	for _, g := range sigs {
		if s.Lists(g.UserID) {
			seen[g.UserID] = true
		}
	}
	return len(seen) >= int(s.QuorumMin)
}

// TransformSecrets applies fn to every non-empty secret field of the
// workload and stores the transformed workload back in Data. The CLI uses
// it to encrypt secrets before signing; a node to decrypt them.
func (r *Reservation) TransformSecrets(fn SecretFunc) error {
	w, err := r.Workload()
	if err != nil {
		return err
	}
	if err := w.secrets(fn); err != nil {
		return err
	}
	return r.SetWorkload(w)
}

// Resources is the capacity the reservation's workload takes on its node.
func (r *Reservation) Resources() (Capacity, error) {
	w, err := r.Workload()
	if err != nil {
		return Capacity{}, err
	}
	return w.Resources(), nil
}
