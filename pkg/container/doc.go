// Package container is the node's container module (the seed's
// ContainerModule): it runs containers with containerd and runc, the root
// filesystem being an flist mountpoint used as is (no image, no
// snapshotter), each container joining a network namespace made by the
// network module.
//
// # containerd
//
// The node runs its own containerd (Debian's 1.6 daemon, talked to with the
// containerd v2 Go client) as a zinit service: DaemonConfig writes its
// config (CRI and unused snapshotters disabled, root, state and socket under
// the zos root, never the system's /run/containerd) and Service returns the
// zinit service. runc keeps its state under Config.RuncRoot. The state
// directories are on disk, so the config writer drops them when the
// kernel's boot id changed (a reboot), never within one boot. Tasks live in
// runc shims that outlive both zosd and containerd: restarting either never
// stops a container. One deviation is outside our control: the 1.6 shim
// puts its socket in /run/containerd/s/<hash of our address, namespace and
// id>, a path it hard-codes; names cannot clash with another containerd.
//
// # Run
//
// Prepare checks the request first (names, root filesystem, network
// namespace, entrypoint, mounts, limits, backends: typed errors, nothing
// created) and merges the root filesystem's .startup.toml as the original
// did. The OCI spec is containerd's default for linux/amd64 with: the root
// path = RootFS; Env; the host's resolv.conf bound read-only; the default
// /run tmpfs removed (the image's /run is used, as the original); the
// network namespace <NetNSDir>/<Network.Namespace>; hostname = the
// container name; each MountInfo as an rbind mount; the memory limit (swap
// included where the kernel accounts it); the CPU limit as a CFS quota of
// CPU × 100 ms per 100 ms period (the original swapped quota and period,
// which gave about total/CPU cores); cgroup <CgroupParent>/<ns>/<id> on
// cgroup v1 or v2. The entrypoint is split shell-style (shlex).
//
// Interactive containers run corex (cmd/zos-corex) as PID 1, bound
// read-only at /corex: it reaps orphans and serves a shell on a
// pseudo-terminal to each TCP connection on Config.CorexPort, i.e. only
// over the container's private network. The original coreX served a web
// terminal with no authentication; ours is a raw TCP terminal (use
// `socat -,raw,echo=0 tcp:<ip>:7681`), equally unauthenticated, and it
// also starts the Entrypoint, when one is given, as a child instead of
// ignoring it.
//
// The container record keeps the completed request (as a containerd
// extension), so Inspect returns what Run was given, CPU, Memory, Logs and
// Stats included (the original lost them); containers made by others are
// read back from their spec as the original did.
//
// # Logs and stats
//
// Each task's stdout and stderr go to a binary log driver, cmd/zos-shimlogs
// (the original's shim-logs), started by the shim and living as long as the
// task: it always appends to a local ring of files <Root>/logs/<ns>/<id>.log
// (Config.LogRingBytes × LogRingFiles, kept across restarts, where the
// original truncated the file at every start) and publishes each line on the
// redis channels of the container's redis log backends. Stats backends get,
// every StatsInterval, the JSON document {timestamp, memory_usage,
// memory_limit, memory_cache, cpu_usage, pids_current} published on their
// channel, from cgroup v1 or v2 metrics.
//
// # Lifetime and restarts
//
// Watch (the module's lifetime; the seed took the name Run) follows
// containerd's events and compares every container with its task each
// ReconcileInterval. A task that exits is
// started again after a delay doubling from RestartMin up to RestartMax
// (reset after a run of RestartReset); the container is never deleted by the
// node, unlike the original, which decommissioned the workload after 3
// crashes a minute. Status shows the state, the restart count, the last exit
// code and reason (out of memory included) and the next restart time. The
// restart bookkeeping lives in containerd labels, so it survives a restart
// of zosd; a container left half-created by a crash is removed at the next
// start.
//
// Delete sends SIGTERM, waits StopGrace, sends SIGKILL to every process of
// the container, then removes the task, the container, its log ring and
// backend config, its empty cgroup and namespace directories. The flist
// mount is not touched (the provisioner unmounts it), as in the original.
//
// Not done: the original's Elevated flag (CAP_SYS_ADMIN and /dev/fuse for
// tf-elevated flists) is not part of the seed Container type.
//
// containertest has a Fake and a conformance suite that the Module and the
// Fake both pass.
package container
