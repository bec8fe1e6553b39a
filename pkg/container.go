package pkg

import (
	"github.com/zos-go/zos/pkg/container/logger"
	"github.com/zos-go/zos/pkg/container/stats"
)

// ContainerID is the id of a container.
type ContainerID string

// NetworkInfo defines the network of a container: the name of an existing
// network namespace it joins. Bridges, IPs and wireguard belong to the
// network resource, outside this module.
type NetworkInfo struct {
	Namespace string
}

// MountInfo defines a mount point.
type MountInfo struct {
	Source string // source of the mount point on the host
	Target string // target of mount inside the container
}

// Container is the creation info of a container.
type Container struct {
	// Name of container
	Name string
	// RootFS is the path to the rootfs of the container
	RootFS string
	// Env variables of the container, as "KEY=VALUE"
	Env []string
	// WorkingDir of the entrypoint command
	WorkingDir string
	// Network network info for container
	Network NetworkInfo
	// Mounts extra mounts for container
	Mounts []MountInfo
	// Entrypoint the process to start inside the container
	Entrypoint string
	// Interactive runs coreX as PID 1 in the container
	Interactive bool
	// CPU count limit
	CPU uint
	// Memory limit in bytes
	Memory uint64
	// Logs backends
	Logs []logger.Logs
	// Stats container metrics backend
	Stats []stats.Stats
}

// ContainerModule defines the rpc interface of the container module.
type ContainerModule interface {
	// Run creates and starts a container in the tenant namespace ns, with
	// its entrypoint.
	Run(ns string, data Container) (ContainerID, error)

	// ListNS lists the names of all container namespaces.
	ListNS() ([]string, error)

	// List returns the container IDs in namespace ns; all namespaces when
	// ns is empty.
	List(ns string) ([]ContainerID, error)

	// Inspect returns information about the container id.
	Inspect(ns string, id ContainerID) (Container, error)

	// Delete stops and removes the container id.
	Delete(ns string, id ContainerID) error
}
