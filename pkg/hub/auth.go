package hub

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Authentication: requests that change the hub carry an HTTP signature in
// the style of the explorer's (draft-cavage), made with the user's ed25519
// key:
//
//	Digest: SHA-256=<base64 of the body's SHA-256>
//	Authorization: Signature keyId="<user>",algorithm="ed25519",created=<unix>,
//	    headers="(request-target) (created) digest",signature="<base64>"
//
// over the signing string
//
//	(request-target): <lowercase method> <path[?query]>
//	(created): <unix>
//	digest: SHA-256=<base64>
//
// The server refuses signatures created more than MaxSkew away from its
// clock, and bodies that do not match the digest.

var (
	// ErrUnauthorized is returned for a request without a valid signature.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnknownUser is returned by Keys for a user it does not know.
	ErrUnknownUser = errors.New("unknown user")
)

// Keys gives the hub the public keys of its users (the explorer's user
// registry). Implementations are safe for concurrent use.
type Keys interface {
	// UserKey returns the ed25519 public key of user, or an error
	// wrapping ErrUnknownUser.
	UserKey(ctx context.Context, user string) (ed25519.PublicKey, error)
}

// KeyMap is a static Keys (tests, a hub without explorer).
type KeyMap map[string]ed25519.PublicKey

// UserKey implements Keys.
func (m KeyMap) UserKey(_ context.Context, user string) (ed25519.PublicKey, error) {
	k, ok := m[user]
	if !ok {
		return nil, fmt.Errorf("user %q: %w", user, ErrUnknownUser)
	}
	return k, nil
}

// Digest returns the Digest header value of body.
func Digest(body []byte) string {
	sum := sha256.Sum256(body)
	return "SHA-256=" + base64.StdEncoding.EncodeToString(sum[:])
}

func signingString(method, target string, created int64, digest string) string {
	return fmt.Sprintf("(request-target): %s %s\n(created): %d\ndigest: %s", strings.ToLower(method), target, created, digest)
}

func requestTarget(r *http.Request) string {
	t := r.URL.EscapedPath()
	if r.URL.RawQuery != "" {
		t += "?" + r.URL.RawQuery
	}
	return t
}

// Sign adds the Digest and Authorization headers for user to r, whose body
// has the given digest (see Digest).
func Sign(r *http.Request, user string, key ed25519.PrivateKey, digest string, now time.Time) {
	created := now.Unix()
	sig := ed25519.Sign(key, []byte(signingString(r.Method, requestTarget(r), created, digest)))
	r.Header.Set("Digest", digest)
	r.Header.Set("Authorization", fmt.Sprintf(`Signature keyId=%q,algorithm="ed25519",created=%d,headers="(request-target) (created) digest",signature=%q`,
		user, created, base64.StdEncoding.EncodeToString(sig)))
}

// SignRequest signs r, reading its body through GetBody (or Body, which it
// then replaces) to compute the digest.
func SignRequest(r *http.Request, user string, key ed25519.PrivateKey) error {
	var body []byte
	switch {
	case r.GetBody != nil:
		rc, err := r.GetBody()
		if err != nil {
			return err
		}
		body, err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return err
		}
	case r.Body != nil && r.Body != http.NoBody:
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			return err
		}
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		r.ContentLength = int64(len(body))
	}
	Sign(r, user, key, Digest(body), time.Now())
	return nil
}

type signature struct {
	user      string
	created   int64
	signature []byte
}

func parseSignature(h string) (signature, error) {
	var s signature
	rest, ok := strings.CutPrefix(h, "Signature ")
	if !ok {
		return s, fmt.Errorf("authorization scheme: %w", ErrUnauthorized)
	}
	params := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return s, fmt.Errorf("authorization parameter %q: %w", part, ErrUnauthorized)
		}
		params[k] = strings.Trim(v, `"`)
	}
	if params["algorithm"] != "ed25519" || params["headers"] != "(request-target) (created) digest" {
		return s, fmt.Errorf("signature algorithm or headers: %w", ErrUnauthorized)
	}
	s.user = params["keyId"]
	var err error
	if s.created, err = strconv.ParseInt(params["created"], 10, 64); err != nil {
		return s, fmt.Errorf("signature created: %w", ErrUnauthorized)
	}
	if s.signature, err = base64.StdEncoding.DecodeString(params["signature"]); err != nil || len(s.signature) != ed25519.SignatureSize {
		return s, fmt.Errorf("signature encoding: %w", ErrUnauthorized)
	}
	return s, nil
}

// verify checks the signature of r (not its body: the caller compares the
// body with the Digest header) and returns the signing user.
func verify(r *http.Request, keys Keys, maxSkew time.Duration, now time.Time) (string, error) {
	s, err := parseSignature(r.Header.Get("Authorization"))
	if err != nil {
		return "", err
	}
	if d := now.Sub(time.Unix(s.created, 0)); d > maxSkew || d < -maxSkew {
		return "", fmt.Errorf("signature created %s ago: %w", d.Round(time.Second), ErrUnauthorized)
	}
	digest := r.Header.Get("Digest")
	if !strings.HasPrefix(digest, "SHA-256=") {
		return "", fmt.Errorf("digest header: %w", ErrUnauthorized)
	}
	key, err := keys.UserKey(r.Context(), s.user)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	// The client signed the path it sent; behind http.StripPrefix (the
	// explorer serves the hub under /hub) only RequestURI still holds it.
	target := r.RequestURI
	if target == "" {
		target = requestTarget(r)
	}
	if !ed25519.Verify(key, []byte(signingString(r.Method, target, s.created, digest)), s.signature) {
		return "", fmt.Errorf("signature of %q: %w", s.user, ErrUnauthorized)
	}
	return s.user, nil
}
