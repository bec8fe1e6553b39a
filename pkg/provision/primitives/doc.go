// Package primitives holds the node's provisioners, one per workload type,
// each an idempotent ensure over the node's capability modules (the seed
// interfaces): volume on the StorageModule, network on the Networker,
// container on Flister + Networker + ContainerModule, zdb on the
// ZDBAllocater with our 0-db under zinit, vm and kubernetes on the
// VMModule, public_ip on the Networker, debug as a zinit service.
//
// A provisioner returns an error wrapping provision.ErrDependency when
// something it needs is not there yet (its network, a volume being
// created), so the engine waits instead of failing the workload.
package primitives
