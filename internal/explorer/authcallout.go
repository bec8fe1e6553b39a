package explorer

import (
	"encoding/base64"
	"errors"
	"log/slog"

	"github.com/mr-tron/base58"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/zos-go/zos/pkg/explorer"
)

// authCalloutSubject is where NATS servers ask who may connect.
const authCalloutSubject = "$SYS.REQ.USER.AUTH"

// globalAccount is the account of config-mode NATS servers.
const globalAccount = "$G"

var (
	errNoNkey   = errors.New("nodes must authenticate with their nkey")
	errBadNonce = errors.New("nonce signature does not verify")
)

// authCallout answers the NATS servers' authorization requests: a client
// proves it holds the ed25519 key of its nkey by signing the server's nonce
// (nkeys are ed25519, so a node's identity key is its nkey: base58 of the
// raw key is the node id), and gets the permissions of that node only.
type authCallout struct {
	issuer nkeys.KeyPair
	log    *slog.Logger
}

func (a *authCallout) handle(m *nats.Msg) {
	if err := m.Respond(a.answer(m.Data)); err != nil {
		a.log.Warn("auth callout reply failed", "error", err)
	}
}

// answer builds the signed authorization response for request data; nil
// (which the server reads as a refusal) when the request cannot be read.
func (a *authCallout) answer(data []byte) []byte {
	req, err := jwt.DecodeAuthorizationRequestClaims(string(data))
	if err != nil {
		a.log.Warn("auth callout: bad request", "error", err)
		return nil
	}
	resp := jwt.NewAuthorizationResponseClaims(req.UserNkey)
	resp.Audience = req.Server.ID
	nodeID, err := nodeFromRequest(req)
	if err != nil {
		a.log.Info("node connection refused", "error", err, "host", req.ClientInformation.Host)
		resp.Error = err.Error()
	} else {
		uc := jwt.NewUserClaims(req.UserNkey)
		uc.Name = nodeID
		uc.Audience = globalAccount
		uc.Permissions = NodePermissions(nodeID)
		if resp.Jwt, err = uc.Encode(a.issuer); err != nil {
			a.log.Error("auth callout: encode user", "error", err)
			return nil
		}
	}
	tok, err := resp.Encode(a.issuer)
	if err != nil {
		a.log.Error("auth callout: encode response", "error", err)
		return nil
	}
	return []byte(tok)
}

// nodeFromRequest verifies the nonce signature of the client's nkey and
// returns the node id of the key.
func nodeFromRequest(req *jwt.AuthorizationRequestClaims) (string, error) {
	nk := req.ConnectOptions.Nkey
	if nk == "" || !nkeys.IsValidPublicUserKey(nk) || req.ClientInformation.Nonce == "" {
		return "", errNoNkey
	}
	sig, err := base64.RawURLEncoding.DecodeString(req.ConnectOptions.SignedNonce)
	if err != nil {
		if sig, err = base64.StdEncoding.DecodeString(req.ConnectOptions.SignedNonce); err != nil {
			return "", errBadNonce
		}
	}
	kp, err := nkeys.FromPublicKey(nk)
	if err != nil {
		return "", errNoNkey
	}
	if err := kp.Verify([]byte(req.ClientInformation.Nonce), sig); err != nil {
		return "", errBadNonce
	}
	raw, err := nkeys.Decode(nkeys.PrefixByteUser, []byte(nk))
	if err != nil {
		return "", errNoNkey
	}
	return base58.Encode(raw), nil
}

// NodePermissions are what node nodeID may do on NATS: send its own
// requests, pull and acknowledge from its own durable consumer, and
// receive answers on its own inbox prefix. Nothing else: it can neither
// read another node's deliveries nor write another node's records.
func NodePermissions(nodeID string) jwt.Permissions {
	consumer := explorer.DeliveryStream + "." + explorer.ConsumerName(nodeID)
	var p jwt.Permissions
	p.Pub.Allow.Add(
		explorer.NodeSubjectPrefix+nodeID+".>",
		"$JS.API.CONSUMER.MSG.NEXT."+consumer,
		"$JS.API.CONSUMER.INFO."+consumer,
		"$JS.ACK."+consumer+".>",
	)
	p.Sub.Allow.Add(explorer.InboxPrefix + nodeID + ".>")
	return p
}
