package qmp

import "context"

// Status is the answer of query-status.
type Status struct {
	Running bool   `json:"running"`
	Status  string `json:"status"`
}

// QueryStatus runs query-status.
func (c *Conn) QueryStatus(ctx context.Context) (Status, error) {
	var s Status
	err := c.Execute(ctx, "query-status", nil, &s)
	return s, err
}

// CPU is one entry of query-cpus-fast.
type CPU struct {
	Index    int    `json:"cpu-index"`
	ThreadID int    `json:"thread-id"`
	Target   string `json:"target"`
}

// QueryCPUs runs query-cpus-fast.
func (c *Conn) QueryCPUs(ctx context.Context) ([]CPU, error) {
	var cpus []CPU
	err := c.Execute(ctx, "query-cpus-fast", nil, &cpus)
	return cpus, err
}

// MemorySummary is the answer of query-memory-size-summary.
type MemorySummary struct {
	BaseMemory    int64 `json:"base-memory"`
	PluggedMemory int64 `json:"plugged-memory"`
}

// QueryMemory runs query-memory-size-summary.
func (c *Conn) QueryMemory(ctx context.Context) (MemorySummary, error) {
	var m MemorySummary
	err := c.Execute(ctx, "query-memory-size-summary", nil, &m)
	return m, err
}

// KVM is the answer of query-kvm.
type KVM struct {
	Enabled bool `json:"enabled"`
	Present bool `json:"present"`
}

// QueryKVM runs query-kvm.
func (c *Conn) QueryKVM(ctx context.Context) (KVM, error) {
	var k KVM
	err := c.Execute(ctx, "query-kvm", nil, &k)
	return k, err
}

// SystemPowerdown presses the power button (ACPI).
func (c *Conn) SystemPowerdown(ctx context.Context) error {
	return c.Execute(ctx, "system_powerdown", nil, nil)
}

// Quit makes QEMU exit at once.
func (c *Conn) Quit(ctx context.Context) error {
	return c.Execute(ctx, "quit", nil, nil)
}
