// Package stats describes where a container's metrics are sent (the Stats
// backend list carried by pkg.Container) and publishes them: a Publisher
// sends Metrics as JSON on each backend's redis channel. The container
// module samples the cgroup metrics and calls it periodically.
package stats

// RedisType is the only backend type: metrics are published as JSON on a
// redis channel.
const RedisType = "redis"

// Stats is one metrics backend of a container, e.g.
// {"type":"redis","data":{"endpoint":"redis://host:6379/channel"}}.
type Stats struct {
	// Type is the backend kind (RedisType).
	Type string `json:"type"`
	// Data configures the backend.
	Data Redis `json:"data"`
}

// Redis holds the endpoint of a redis metrics backend.
type Redis struct {
	// Endpoint is the redis URL, redis://host[:port]/channel (port 6379
	// when omitted).
	Endpoint string `json:"endpoint"`
}
