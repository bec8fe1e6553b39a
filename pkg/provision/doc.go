// Package provision is the node's provision engine: it receives the
// reservations meant for this node from its sources (the explorer's durable
// per-node stream, or a local directory in development), validates them,
// deploys them through one Provisioner per workload type, keeps their state
// in a Store, and reports signed results. It implements the seed's
// pkg.Provision (Counters, DecommissionCached).
//
// # Differences from the original, on purpose
//
//   - Concurrency: independent reservations are provisioned in parallel
//     (Config.Workers at a time); each reservation has its own lock. The
//     original handled one reservation at a time.
//   - Dependencies wait instead of failing: a Provisioner returns an error
//     wrapping ErrDependency (the network of a container is not there yet, a
//     volume it mounts is still being created) or ErrTemporary, and the
//     engine retries with capped exponential backoff until it succeeds or
//     the workload is deleted. The original failed the workload for good.
//   - Crash safety: the intent (StateDeploying, StateDeleting) is written
//     before acting and the source's delivery is acknowledged only after
//     that. At start the engine finishes interrupted work and re-ensures
//     every deployed workload (after a power cut nothing runs; Provision
//     brings it back, and a failure there is retried, never turned into a
//     failed result). Deleted reservations stay as tombstones so a late
//     redelivery never deploys them again.
//   - Never deleted on its own: nothing here removes a workload except its
//     owner's signed delete, or an operator's DecommissionCached. Crash
//     loops of containers and VMs are the compute modules' business (capped
//     backoff, reason visible) and never reach this package.
//   - Validation on the node: the owner's signature and the signature
//     quorum (provision and delete) are checked with the users' keys
//     (Config.VerifySignatures); the original trusted the explorer. Bad
//     input gives a failed result whose message names the field.
//   - Capacity truth: admission refuses a workload that does not fit beside
//     the live ones and the system reserve; Used recomputes usage from the
//     store, so what is reported always equals the sum of live reservations.
//   - Updates: a reservation whose Reference names an earlier one of the
//     same owner and type supersedes it; its Provisioner is called with the
//     earlier working name (an in-place update: a network's peers change,
//     a volume grows) and the earlier record becomes a tombstone. The
//     take-over happens at once, in delivery order, also while the earlier
//     one is still deploying (its deploy is stopped); if the update fails
//     for good, the earlier reservation is restored to the state it had.
//     The deletion of an update the node never saw deployed still takes
//     its reference over, so "update, then delete" leaves nothing.
//   - Expiry: a reservation with a Lifetime is removed when it ends (every
//     Config.ExpiryInterval, and at start for what ended while the node was
//     off); its result reads deleted, "expired". One that arrives after
//     its lifetime is never deployed. The original expired workloads with
//     their capacity pool on the explorer; there are no pools here.
package provision
