package explorer

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ServerOptions returns the nats-server options the explorer needs: a
// JetStream server whose clients authenticate through the explorer's auth
// callout (signed by issuerPub), except the explorer itself (the nkey user
// explorerPub, with full permissions). listen is "host:port" for clients,
// "" for in-process clients only. Tests add cluster settings to build a
// cluster.
func ServerOptions(name, storeDir, listen, explorerPub, issuerPub string) (*server.Options, error) {
	o := &server.Options{
		ServerName: name,
		JetStream:  true,
		StoreDir:   storeDir,
		NoSigs:     true,
		// Clients prove their nkey by signing the nonce; the callout
		// checks the signature.
		AlwaysEnableNonce: true,
		Nkeys:             []*server.NkeyUser{{Nkey: explorerPub}},
		AuthCallout:       &server.AuthCallout{Issuer: issuerPub, AuthUsers: []string{explorerPub}},
		MaxPayload:        1 << 20,
	}
	if listen == "" {
		o.DontListen = true
		return o, nil
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("nats listen %q: %w", listen, ErrInvalidConfig)
	}
	o.Host = host
	if o.Port, err = strconv.Atoi(port); err != nil {
		return nil, fmt.Errorf("nats listen %q: %w", listen, ErrInvalidConfig)
	}
	if o.Port == 0 {
		o.Port = server.RANDOM_PORT
	}
	return o, nil
}

// ServerConfig is the nats-server configuration snippet an operator adds
// to every server of an external cluster for the explorer (whose nkey user
// is explorerPub) to serve the auth callout signed by issuerPub.
func ServerConfig(explorerPub, issuerPub string) string {
	return fmt.Sprintf(`# zos explorer: nodes authenticate with their ed25519 identity (nkey) through
# the explorer's auth callout; the explorer itself is the nkey user below.
authorization {
  users: [ { nkey: %s } ]
  auth_callout {
    issuer: %s
    auth_users: [ %s ]
  }
}
jetstream { store_dir: /var/lib/nats }
`, explorerPub, issuerPub, explorerPub)
}

// StartServer starts a nats-server with o, logging to log, and waits until
// it accepts clients.
func StartServer(ctx context.Context, o *server.Options, log *slog.Logger) (*server.Server, error) {
	s, err := server.NewServer(o)
	if err != nil {
		return nil, fmt.Errorf("nats server %s: %w", o.ServerName, err)
	}
	s.SetLoggerV2(natsLogger{log.With("nats_server", o.ServerName)}, false, false, false)
	go s.Start()
	deadline := 30 * time.Second
	if d, ok := ctx.Deadline(); ok {
		deadline = time.Until(d)
	}
	if !s.ReadyForConnections(deadline) {
		s.Shutdown()
		return nil, fmt.Errorf("nats server %s not ready after %s: %w", o.ServerName, deadline, ErrStart)
	}
	return s, nil
}

// natsLogger forwards nats-server logs to slog (notices at debug level:
// the server is chatty).
type natsLogger struct{ log *slog.Logger }

func (l natsLogger) Noticef(f string, v ...any) { l.log.Debug(fmt.Sprintf(f, v...)) }
func (l natsLogger) Warnf(f string, v ...any)   { l.log.Warn(fmt.Sprintf(f, v...)) }
func (l natsLogger) Fatalf(f string, v ...any)  { l.log.Error(fmt.Sprintf(f, v...)) }
func (l natsLogger) Errorf(f string, v ...any)  { l.log.Error(fmt.Sprintf(f, v...)) }
func (l natsLogger) Debugf(f string, v ...any)  { l.log.Debug(fmt.Sprintf(f, v...)) }
func (l natsLogger) Tracef(f string, v ...any)  {}
