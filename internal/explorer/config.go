package explorer

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/nats-io/nkeys"
)

// ErrInvalidConfig is wrapped by every Config.Validate error.
var ErrInvalidConfig = errors.New("invalid explorer config")

// Config configures an Explorer.
type Config struct {
	// Listen is the HTTP address ("127.0.0.1:8080"; ":0" picks a port).
	Listen string
	// NATS is how the explorer reaches NATS.
	NATS NATSConfig
	// AckWait is how long a node has to acknowledge a delivery before it
	// is delivered again.
	AckWait time.Duration
	// MaxAckPending is how many deliveries a node may hold unacknowledged.
	// 1 (the default) delivers strictly in order, also on redelivery.
	MaxAckPending int
	// Workers is the number of goroutines serving node requests.
	Workers int
	// ReconcileOnStart re-delivers pending reservations and recomputes
	// reserved capacity at start (repairs a crash between steps). Turn it
	// off on all but one of several explorers sharing a cluster.
	ReconcileOnStart bool
	// MaxBodyBytes bounds HTTP request bodies.
	MaxBodyBytes int64
	// ConsumerStateOnDisk keeps the nodes' consumer state in files rather
	// than in memory. In memory (the default) a NATS restart loses it and
	// the explorer re-creates the consumers, which then deliver what was not
	// acknowledged again; on disk it survives, but every acknowledgement
	// rewrites a state file, which dominates the delivery latency with many
	// nodes (p99 ~50 ms instead of ~4 ms with 1,000 nodes here).
	ConsumerStateOnDisk bool
}

// NATSConfig says whether to embed a NATS server or use a cluster.
type NATSConfig struct {
	// URLs of an external NATS cluster; empty: embed a server.
	URLs []string
	// DataDir is the embedded server's JetStream directory.
	DataDir string
	// Listen is the embedded server's client address, where nodes connect
	// ("127.0.0.1:4222"; ":0" picks a port; "" accepts no outside client).
	Listen string
	// UserSeed is the explorer's own NATS nkey user seed ("SU..."). It must
	// be listed as an auth_callout auth user of the cluster. Empty with an
	// embedded server: generated.
	UserSeed string
	// IssuerSeed is the account nkey seed ("SA...") that signs the auth
	// callout answers; its public key is the cluster's auth_callout issuer.
	// Empty with an embedded server: generated.
	IssuerSeed string
	// Replicas of every stream and bucket (3 on a cluster, 1 embedded).
	Replicas int
	// SyncAlways makes the embedded server fsync every write (slower;
	// otherwise writes reach the OS at once and disk every 2 minutes, which
	// survives a killed process but not a power loss).
	SyncAlways bool
}

// DefaultConfig is an explorer with an embedded NATS server.
func DefaultConfig() Config {
	return Config{
		Listen:           "127.0.0.1:8080",
		NATS:             NATSConfig{DataDir: "/var/lib/zos/explorer", Listen: "127.0.0.1:4222", Replicas: 1},
		AckWait:          30 * time.Second,
		MaxAckPending:    1,
		Workers:          16,
		ReconcileOnStart: true,
		MaxBodyBytes:     1 << 20,
	}
}

// Embedded reports whether the explorer runs its own NATS server.
func (c NATSConfig) Embedded() bool { return len(c.URLs) == 0 }

// Validate checks c.
func (c Config) Validate() error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("%s: %w", fmt.Sprintf(f, a...), ErrInvalidConfig)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return bad("listen %q", c.Listen)
	}
	if c.NATS.Embedded() {
		if c.NATS.DataDir == "" {
			return bad("embedded nats needs a data dir")
		}
		if c.NATS.Listen != "" {
			if _, _, err := net.SplitHostPort(c.NATS.Listen); err != nil {
				return bad("nats listen %q", c.NATS.Listen)
			}
		}
	} else if c.NATS.UserSeed == "" || c.NATS.IssuerSeed == "" {
		return bad("an external nats cluster needs the explorer's user seed and the auth callout issuer seed")
	}
	if c.NATS.UserSeed != "" {
		if kp, err := nkeys.FromSeed([]byte(c.NATS.UserSeed)); err != nil {
			return bad("nats user seed")
		} else if pub, _ := kp.PublicKey(); !nkeys.IsValidPublicUserKey(pub) {
			return bad("nats user seed is not a user key")
		}
	}
	if c.NATS.IssuerSeed != "" {
		if kp, err := nkeys.FromSeed([]byte(c.NATS.IssuerSeed)); err != nil {
			return bad("nats issuer seed")
		} else if pub, _ := kp.PublicKey(); !nkeys.IsValidPublicAccountKey(pub) {
			return bad("nats issuer seed is not an account key")
		}
	}
	if c.NATS.Replicas < 1 || c.NATS.Replicas > 5 {
		return bad("replicas %d not in 1..5", c.NATS.Replicas)
	}
	if c.AckWait < time.Second {
		return bad("ack wait %s below 1s", c.AckWait)
	}
	if c.MaxAckPending < 1 {
		return bad("max ack pending %d", c.MaxAckPending)
	}
	if c.Workers < 1 {
		return bad("workers %d", c.Workers)
	}
	if c.MaxBodyBytes < 64<<10 {
		return bad("max body %d below 64 KiB", c.MaxBodyBytes)
	}
	return nil
}
