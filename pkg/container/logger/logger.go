// Package logger describes where a container's output is sent (the Logs
// backend list carried by pkg.Container) and implements it: the shim logger
// that containerd's shim starts for each task (RunShim, run by
// cmd/zos-shimlogs) writes every line to a local file Ring and publishes it
// on the redis channels of the container's redis backends.
package logger

// Backend type names accepted in Logs.Type.
const (
	// RedisType publishes each output line on a redis channel.
	RedisType = "redis"
	// FileType writes output to files on the node.
	FileType = "file"
	// ConsoleType writes output to the container module's console.
	ConsoleType = "console"
)

// Logs is one log backend of a container, e.g.
// {"type":"redis","data":{"stdout":"redis://host/out","stderr":"redis://host/err"}}.
type Logs struct {
	// Type is the backend kind, one of the *Type constants.
	Type string `json:"type"`
	// Data configures the backend.
	Data LogsRedis `json:"data"`
}

// LogsRedis holds the endpoints of a redis log backend.
type LogsRedis struct {
	// Stdout is the redis URL (redis://host[:port]/channel) for stdout.
	Stdout string `json:"stdout"`
	// Stderr is the redis URL (redis://host[:port]/channel) for stderr.
	Stderr string `json:"stderr"`
}
