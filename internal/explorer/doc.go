// Package explorer is the grid registry server behind cmd/explorer: an
// HTTP+JSON API for users and dashboards (users, farms, nodes with a
// capacity search, reservations with their signatures and results) and a
// NATS API for nodes, with every record kept in NATS JetStream.
//
// # NATS
//
// By default the explorer embeds a nats-server with JetStream (one machine);
// Config.NATS.URLs points it at an external cluster instead (3+ servers,
// Replicas 3), with no other change. State lives in KV buckets (zos-users,
// zos-farms, zos-nodes, zos-capacity, zos-reservations keyed
// "<node id>.<id>", zos-replay keyed by request hash) and deliveries in the
// work-queue stream ZOS_DELIVERY, subject "zos.deliver.<node id>": a
// delivery stays on disk until the node acknowledges it. Each node has a
// durable pull consumer "node-<id>" whose state is kept in memory
// (replicated on a cluster) unless Config.ConsumerStateOnDisk: rewriting a
// state file on every acknowledgement dominated the delivery latency with
// 1,000 nodes (p99 ~50 ms against ~4 ms). A consumer lost with a NATS
// restart is re-created by the explorer at start and whenever its node asks
// (NodeClient.Watch does), and then delivers again what was not
// acknowledged: nothing is lost, at worst delivered twice.
//
// # Node authentication and isolation
//
// Nodes connect with their ed25519 identity as NATS nkey (nkeys are
// ed25519: base58 of the raw key is the node id). The servers delegate
// authentication to the explorer with an auth callout: the explorer checks
// the signature of the server nonce and answers with a user JWT carrying
// that node's permissions only (NodePermissions): publish requests on
// "zos.node.<own id>.>", pull and ack from its own durable consumer
// "node-<own id>", subscribe below its own inbox prefix "_INBOX_<own id>".
// A node therefore cannot read another node's deliveries, answers or
// records, nor write another node's records: the explorer takes the node
// id of every request from its subject, which the node cannot forge. We
// chose the callout over static per-node users because it needs no server
// reload when a node appears and works unchanged on an external cluster
// (configured with ServerConfig). The explorer itself connects as an nkey
// "auth user" that bypasses the callout.
//
// # Reservations
//
// A create request is decoded, validated, time-checked and its signature
// verified with the owner's key; the node must exist and have the free
// capacity (Node.Free); a public_ip must be a free address of the node's
// farm. Its hash is then claimed in zos-replay (refusing replays for as
// long as the request is valid; the entry's revision is the new id), the
// capacity reserved with compare-and-set, the record stored, and the
// reservation published to the node. Each step is undone if a later one
// fails, so nothing is stored on error. Publishing is retried in the
// background and at start (ReconcileOnStart), which also recomputes the
// reserved capacity: a crash between steps is repaired at the next start.
// Delivery is at-least-once and, with MaxAckPending 1, in order per node;
// nodes de-duplicate by id. A failed publish is retried with the
// reservation's current state (a delete is never overtaken by its own
// stale deploy).
//
// Results are signed by the node and verified before they are stored; an
// error result or a deletion releases the capacity and the public IP. A
// reservation still short of its provision quorum when its request expires
// (Expires) becomes invalid and releases what it held (checked every
// minute); later signatures are refused.
//
// An update (a reservation whose Reference names a live one of the same
// user, node and type) reserves only what it needs beyond the one it
// replaces: growing a 6 GiB volume to 8 GiB needs 2 GiB free, not 8. When
// the node reports the earlier one deleted as replaced, its share moves to
// the update instead of being released; a failed update gives back only
// its difference. Only the first live update of a reservation gets the
// credit. (The original had no in-place updates.)
package explorer
