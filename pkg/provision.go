package pkg

import "context"

// ProvisionCounters counts the workloads deployed on the node, by kind.
//
// Volume keeps the seed's misspelled tag `jons:"volume"`, so its JSON key
// is "Volume" as on the original node (see the package doc).
type ProvisionCounters struct {
	Container int64 `json:"container"`
	Volume    int64 `jons:"volume"`
	Network   int64 `json:"network"`
	ZDB       int64 `json:"zdb"`
	VM        int64 `json:"vm"`
	Debug     int64 `json:"debug"`
}

// Provision is the zbus interface of the provision engine.
type Provision interface {
	// Counters streams the workload counters until ctx ends.
	Counters(ctx context.Context) <-chan ProvisionCounters
	// DecommissionCached decommissions the cached workload id and reports
	// reason as its error result.
	DecommissionCached(id string, reason string) error
}
