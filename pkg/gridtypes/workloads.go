package gridtypes

import (
	"path"
	"regexp"
	"strconv"
)

// Workload is the type-specific part of a reservation: one of *Container,
// *Volume, *ZDB, *Network, *Kubernetes, *PublicIP, *Debug or *VM. The set is
// closed: only this package implements it.
type Workload interface {
	// WorkloadType is the workload's type.
	WorkloadType() WorkloadType
	// Validate checks every field; the error wraps ErrInvalid and is
	// usually a *FieldError naming the field.
	Validate() error
	// Resources is what the workload takes on its node.
	Resources() Capacity

	encode(e *encoder)
	secrets(fn SecretFunc) error
}

// SecretKind tells how a secret field is encrypted to the node.
type SecretKind int

const (
	// SecretUser fields are encrypted per the reservation's Version:
	// version 0 is a sealed box to the node key, version >= 1 the ECDH
	// scheme between the user's key and the node's key (identity.md §5).
	SecretUser SecretKind = iota
	// SecretSealed fields are always a sealed box to the node key (the
	// WireGuard private key of a network), whatever the version.
	SecretSealed
)

// SecretFunc transforms one secret field: the CLI encrypts plaintext to
// hex ciphertext, a node decrypts. field is its JSON path. An empty value is
// never passed (an unset secret stays unset).
type SecretFunc func(field string, kind SecretKind, value string) (string, error)

func applySecret(fn SecretFunc, field string, kind SecretKind, v *string) error {
	if *v == "" {
		return nil
	}
	out, err := fn(field, kind, *v)
	if err != nil {
		return err
	}
	*v = out
	return nil
}

// DefaultContainerDiskMiB is the size of a container's writable layer when
// its capacity sets none (on SSD when no disk type is given).
const DefaultContainerDiskMiB = 256

// MinMemoryMiB is the least memory of a container or VM. The original node
// required 1024 MiB for containers; zos accepts smaller ones so a
// development grid fits on one machine.
const MinMemoryMiB = 64

// Container is a container started from an flist.
type Container struct {
	// Flist is the URL of the image flist.
	Flist string `json:"flist"`
	// HubURL is the storage the flist's blocks come from (empty: the default hub).
	HubURL string `json:"hub_url,omitempty"`
	// Environment variables, in clear.
	Environment map[string]string `json:"environment,omitzero"`
	// SecretEnvironment holds environment variables whose values are hex
	// ciphertext encrypted to the node (SecretUser).
	SecretEnvironment map[string]string `json:"secret_environment,omitzero"`
	// Entrypoint is the command line started in the container.
	Entrypoint string `json:"entrypoint,omitempty"`
	// Interactive runs coreX as PID 1 instead of the entrypoint.
	Interactive bool `json:"interactive,omitempty"`
	// Volumes mounted in the container.
	Volumes []ContainerMount `json:"volumes,omitzero"`
	// NetworkConnection lists the networks joined; a node uses the first.
	NetworkConnection []NetworkConnection `json:"network_connection,omitzero"`
	// Stats are metric sinks.
	Stats []StatsAggregator `json:"stats,omitzero"`
	// Logs are log sinks.
	Logs []Logs `json:"logs,omitzero"`
	// Capacity limits the container.
	Capacity ContainerCapacity `json:"capacity"`
}

// ContainerMount mounts a volume in a container. A VolumeID starting with
// "-" is relative to this reservation ("-1" with reservation 12 is "12-1").
type ContainerMount struct {
	VolumeID   string `json:"volume_id"`
	Mountpoint string `json:"mountpoint"`
}

// NetworkConnection joins a user network (by name) with a fixed IPv4.
type NetworkConnection struct {
	NetworkID   string `json:"network_id"`
	IPAddress   string `json:"ipaddress"`
	PublicIP6   bool   `json:"public_ip6,omitempty"`
	YggdrasilIP bool   `json:"yggdrasil_ip,omitempty"`
}

// ContainerCapacity is the resource limit of a container.
type ContainerCapacity struct {
	// CPU is the number of logical cores.
	CPU uint64 `json:"cpu"`
	// Memory in MiB.
	Memory uint64 `json:"memory"`
	// DiskSize of the writable layer in MiB (0: DefaultContainerDiskMiB).
	DiskSize uint64 `json:"disk_size,omitempty"`
	// DiskType of the writable layer (empty: ssd).
	DiskType DiskType `json:"disk_type,omitempty"`
}

// StatsAggregator is a metric sink; only type "redis" is used by nodes.
type StatsAggregator struct {
	Type string `json:"type"`
	// Endpoint is e.g. "redis://host:port/channel".
	Endpoint string `json:"endpoint"`
}

// Logs is a log sink; only type "redis" is used by nodes.
type Logs struct {
	Type string    `json:"type"`
	Data LogsRedis `json:"data"`
}

// LogsRedis are the redis URLs stdout and stderr go to; the secret ones
// are hex ciphertext (SecretUser).
type LogsRedis struct {
	Stdout       string `json:"stdout,omitempty"`
	Stderr       string `json:"stderr,omitempty"`
	SecretStdout string `json:"secret_stdout,omitempty"`
	SecretStderr string `json:"secret_stderr,omitempty"`
}

// Type implements Workload.
func (*Container) WorkloadType() WorkloadType { return TypeContainer }

// Validate implements Workload.
func (c *Container) Validate() error {
	if err := checkStr("flist", c.Flist, MaxStringLen, true); err != nil {
		return err
	}
	if err := checkStr("hub_url", c.HubURL, MaxStringLen, false); err != nil {
		return err
	}
	if err := checkMap("environment", c.Environment); err != nil {
		return err
	}
	if err := checkMap("secret_environment", c.SecretEnvironment); err != nil {
		return err
	}
	for k, v := range c.SecretEnvironment {
		if err := checkHex("secret_environment."+k, v); err != nil {
			return err
		}
	}
	if err := checkStr("entrypoint", c.Entrypoint, MaxStringLen, false); err != nil {
		return err
	}
	if err := checkLen("volumes", len(c.Volumes)); err != nil {
		return err
	}
	for i, m := range c.Volumes {
		f := "volumes[" + strconv.Itoa(i) + "]"
		if err := checkStr(f+".volume_id", m.VolumeID, 64, true); err != nil {
			return err
		}
		if err := checkStr(f+".mountpoint", m.Mountpoint, MaxStringLen, true); err != nil {
			return err
		}
		if !path.IsAbs(m.Mountpoint) || path.Clean(m.Mountpoint) == "/" {
			return fieldErr(f+".mountpoint", "%q is not an absolute path below /", m.Mountpoint)
		}
	}
	if err := checkConnections("network_connection", c.NetworkConnection); err != nil {
		return err
	}
	if err := checkStats("stats", c.Stats); err != nil {
		return err
	}
	if err := checkLen("logs", len(c.Logs)); err != nil {
		return err
	}
	for i, l := range c.Logs {
		f := "logs[" + strconv.Itoa(i) + "]"
		for _, s := range []struct {
			name string
			v    string
			hex  bool
		}{{"type", l.Type, false}, {"data.stdout", l.Data.Stdout, false}, {"data.stderr", l.Data.Stderr, false},
			{"data.secret_stdout", l.Data.SecretStdout, true}, {"data.secret_stderr", l.Data.SecretStderr, true}} {
			if err := checkStr(f+"."+s.name, s.v, MaxStringLen, s.name == "type"); err != nil {
				return err
			}
			if s.hex {
				if err := checkHex(f+"."+s.name, s.v); err != nil {
					return err
				}
			}
		}
	}
	return checkCompute("capacity", c.Capacity.CPU, c.Capacity.Memory, c.Capacity.DiskType)
}

func checkCompute(field string, cpu, memory uint64, dt DiskType) error {
	switch {
	case cpu == 0:
		return fieldErr(join(field, "cpu"), "must be at least 1")
	case cpu > 1024:
		return fieldErr(join(field, "cpu"), "%d cores is more than any node has", cpu)
	case memory < MinMemoryMiB:
		return fieldErr(join(field, "memory"), "%d MiB is less than %d MiB", memory, MinMemoryMiB)
	case memory > 1<<30:
		return fieldErr(join(field, "memory"), "%d MiB is more than any node has", memory)
	case !dt.valid(true):
		return fieldErr(join(field, "disk_type"), "%q is not ssd or hdd", dt)
	}
	return nil
}

func join(prefix, field string) string {
	if prefix == "" {
		return field
	}
	return prefix + "." + field
}

func checkConnections(field string, l []NetworkConnection) error {
	if err := checkLen(field, len(l)); err != nil {
		return err
	}
	for i, n := range l {
		f := field + "[" + strconv.Itoa(i) + "]"
		if err := checkStr(f+".network_id", n.NetworkID, 64, true); err != nil {
			return err
		}
		if _, err := parseIPv4(f+".ipaddress", n.IPAddress); err != nil {
			return err
		}
	}
	return nil
}

func checkStats(field string, l []StatsAggregator) error {
	if err := checkLen(field, len(l)); err != nil {
		return err
	}
	for i, s := range l {
		f := field + "[" + strconv.Itoa(i) + "]"
		if err := checkStr(f+".type", s.Type, 64, true); err != nil {
			return err
		}
		if err := checkStr(f+".endpoint", s.Endpoint, MaxStringLen, false); err != nil {
			return err
		}
	}
	return nil
}

// Capacity implements Workload: CRU = cpu, MRU = memory, the writable
// layer on SRU or HRU.
func (c *Container) Resources() Capacity {
	disk := c.Capacity.DiskSize
	if disk == 0 {
		disk = DefaultContainerDiskMiB
	}
	return onDisk(Capacity{CRU: c.Capacity.CPU, MRU: c.Capacity.Memory * MiB}, c.Capacity.DiskType, disk*MiB)
}

func (c *Container) encode(e *encoder) {
	e.str(c.Flist)
	e.str(c.HubURL)
	e.strMap(c.Environment)
	e.strMap(c.SecretEnvironment)
	e.str(c.Entrypoint)
	e.boolean(c.Interactive)
	e.count(len(c.Volumes))
	for _, m := range c.Volumes {
		e.str(m.VolumeID)
		e.str(m.Mountpoint)
	}
	encodeConnections(e, c.NetworkConnection)
	encodeStats(e, c.Stats)
	e.count(len(c.Logs))
	for _, l := range c.Logs {
		e.str(l.Type)
		e.str(l.Data.Stdout)
		e.str(l.Data.Stderr)
		e.str(l.Data.SecretStdout)
		e.str(l.Data.SecretStderr)
	}
	e.u64(c.Capacity.CPU)
	e.u64(c.Capacity.Memory)
	e.u64(c.Capacity.DiskSize)
	e.str(string(c.Capacity.DiskType))
}

func encodeConnections(e *encoder, l []NetworkConnection) {
	e.count(len(l))
	for _, n := range l {
		e.str(n.NetworkID)
		e.str(n.IPAddress)
		e.boolean(n.PublicIP6)
		e.boolean(n.YggdrasilIP)
	}
}

func encodeStats(e *encoder, l []StatsAggregator) {
	e.count(len(l))
	for _, s := range l {
		e.str(s.Type)
		e.str(s.Endpoint)
	}
}

func (c *Container) secrets(fn SecretFunc) error {
	for k, v := range c.SecretEnvironment {
		if err := applySecret(fn, "secret_environment."+k, SecretUser, &v); err != nil {
			return err
		}
		c.SecretEnvironment[k] = v
	}
	for i := range c.Logs {
		f := "logs[" + strconv.Itoa(i) + "].data."
		if err := applySecret(fn, f+"secret_stdout", SecretUser, &c.Logs[i].Data.SecretStdout); err != nil {
			return err
		}
		if err := applySecret(fn, f+"secret_stderr", SecretUser, &c.Logs[i].Data.SecretStderr); err != nil {
			return err
		}
	}
	return nil
}

// Volume is a filesystem of Size GiB on an SSD or HDD pool.
type Volume struct {
	// Size in GiB.
	Size uint64   `json:"size"`
	Type DiskType `json:"type"`
	// Snapshots names the read-only snapshots the volume keeps: the node
	// takes the missing ones (of the content at that moment) and drops the
	// others. An update with a longer list takes a snapshot; one with a
	// shorter list drops one. Snapshots go with the volume.
	Snapshots []string `json:"snapshots,omitzero"`
	// Restore, when set, replaces the volume's content with that of one of
	// its snapshots, once, when this reservation is deployed (an update of
	// the volume). No container may have the volume mounted then.
	Restore string `json:"restore,omitempty"`
}

// MaxSnapshots bounds Volume.Snapshots.
const MaxSnapshots = 32

var snapshotName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Type implements Workload.
func (*Volume) WorkloadType() WorkloadType { return TypeVolume }

// Validate implements Workload.
func (v *Volume) Validate() error {
	switch {
	case v.Size == 0:
		return fieldErr("size", "must be at least 1 GiB")
	case v.Size > 1<<20:
		return fieldErr("size", "%d GiB is more than any node has", v.Size)
	case !v.Type.valid(false):
		return fieldErr("type", "%q is not ssd or hdd", v.Type)
	case len(v.Snapshots) > MaxSnapshots:
		return fieldErr("snapshots", "%d snapshots, at most %d", len(v.Snapshots), MaxSnapshots)
	case v.Restore != "" && !snapshotName.MatchString(v.Restore):
		return fieldErr("restore", "%q is not a snapshot name", v.Restore)
	}
	seen := map[string]bool{}
	for _, n := range v.Snapshots {
		if !snapshotName.MatchString(n) || seen[n] {
			return fieldErr("snapshots", "%q is not a snapshot name or is listed twice (letters, digits, '.', '_', '-'; at most 64)", n)
		}
		seen[n] = true
	}
	return nil
}

// Capacity implements Workload.
func (v *Volume) Resources() Capacity { return onDisk(Capacity{}, v.Type, v.Size*GiB) }

func (v *Volume) encode(e *encoder) {
	e.u64(v.Size)
	e.str(string(v.Type))
	if len(v.Snapshots) > 0 || v.Restore != "" {
		// Only when used: hashes of volumes without them are unchanged.
		e.strs(v.Snapshots)
		e.str(v.Restore)
	}
}

func (*Volume) secrets(SecretFunc) error { return nil }

// ZDB is a 0-db namespace of Size GiB.
type ZDB struct {
	// Size in GiB.
	Size uint64  `json:"size"`
	Mode ZDBMode `json:"mode"`
	// Password is hex ciphertext (SecretUser); empty: no password.
	Password string   `json:"password,omitempty"`
	DiskType DiskType `json:"disk_type"`
	// Public makes the namespace readable without password.
	Public          bool              `json:"public,omitempty"`
	StatsAggregator []StatsAggregator `json:"stats_aggregator,omitzero"`
}

// Type implements Workload.
func (*ZDB) WorkloadType() WorkloadType { return TypeZDB }

// Validate implements Workload.
func (z *ZDB) Validate() error {
	switch {
	case z.Size == 0:
		return fieldErr("size", "must be at least 1 GiB")
	case z.Size > 1<<20:
		return fieldErr("size", "%d GiB is more than any node has", z.Size)
	case z.Mode != ZDBModeSeq && z.Mode != ZDBModeUser:
		return fieldErr("mode", "%q is not seq or user", z.Mode)
	case !z.DiskType.valid(false):
		return fieldErr("disk_type", "%q is not ssd or hdd", z.DiskType)
	}
	if err := checkHex("password", z.Password); err != nil {
		return err
	}
	return checkStats("stats_aggregator", z.StatsAggregator)
}

// Capacity implements Workload.
func (z *ZDB) Resources() Capacity { return onDisk(Capacity{}, z.DiskType, z.Size*GiB) }

func (z *ZDB) encode(e *encoder) {
	e.u64(z.Size)
	e.str(string(z.Mode))
	e.str(z.Password)
	e.str(string(z.DiskType))
	e.boolean(z.Public)
	encodeStats(e, z.StatsAggregator)
}

func (z *ZDB) secrets(fn SecretFunc) error {
	return applySecret(fn, "password", SecretUser, &z.Password)
}

// PublicIP reserves one of the farm's public IPv4 addresses for a VM.
type PublicIP struct {
	// IPAddress is the address with its prefix, e.g. "185.69.166.7/24".
	IPAddress string `json:"ipaddress"`
}

// Type implements Workload.
func (*PublicIP) WorkloadType() WorkloadType { return TypePublicIP }

// Validate implements Workload.
func (p *PublicIP) Validate() error {
	_, err := parsePrefix("ipaddress", p.IPAddress, true)
	return err
}

// Capacity implements Workload: one IPV4U.
func (p *PublicIP) Resources() Capacity { return Capacity{IPV4U: 1} }

func (p *PublicIP) encode(e *encoder) { e.str(p.IPAddress) }

func (*PublicIP) secrets(SecretFunc) error { return nil }

// Debug ships the node's logs to a redis channel with zlf.
type Debug struct {
	Host string `json:"host"`
	Port uint16 `json:"port"`
	// Channel is the redis channel (empty: "<node id>-logs").
	Channel string `json:"channel,omitempty"`
}

// Type implements Workload.
func (*Debug) WorkloadType() WorkloadType { return TypeDebug }

// Validate implements Workload.
func (d *Debug) Validate() error {
	if err := checkStr("host", d.Host, 255, true); err != nil {
		return err
	}
	if d.Port == 0 {
		return fieldErr("port", "is required")
	}
	return checkStr("channel", d.Channel, 255, false)
}

// Capacity implements Workload: nothing.
func (*Debug) Resources() Capacity { return Capacity{} }

func (d *Debug) encode(e *encoder) {
	e.str(d.Host)
	e.u64(uint64(d.Port))
	e.str(d.Channel)
}

func (*Debug) secrets(SecretFunc) error { return nil }
