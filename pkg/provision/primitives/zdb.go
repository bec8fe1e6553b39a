package primitives

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zos-go/zos/internal/atomicfile"
	"github.com/zos-go/zos/internal/netns"
	"github.com/zos-go/zos/internal/zinit/proto"
	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/network"
	"github.com/zos-go/zos/pkg/provision"
	"github.com/zos-go/zos/pkg/storage"
	"github.com/zos-go/zos/pkg/zdb"
	"github.com/zos-go/zos/pkg/zinit"
)

// ZDBStorage is what the zdb provisioner needs of the storage module;
// *storage.Module implements it.
type ZDBStorage interface {
	pkg.ZDBAllocater
	// ZDBReservations resizes a namespace's reservation on an update and
	// gives it back when the namespace goes.
	storage.ZDBReservations
	ReleaseFilesystem(name string) error
}

// ZDBConfig configures the zdb provisioner.
//
// Where the servers listen: the original ran each 0-db container in its own
// network namespace made by Networker.ZDBPrepare (a macvlan zdb0 on br-pub
// with a public IPv6 and a yggdrasil address), on port 9900. NetNS does the
// same (the server is started inside the namespace with NSEnter). Without
// NetNS — the development grid, where the node's host namespace is itself a
// network namespace and br-pub has no public IPv6 — the servers run in
// zinit's namespace on Listen, one port per allocation volume taken from
// Port..Port+Ports-1, and the result reports Addresses.
type ZDBConfig struct {
	// Command is the 0-db server (our cmd/zdb) and its leading arguments.
	Command []string
	// ServicePrefix is put in front of the zinit service names
	// ("<prefix>zdb-<volume id>"); the development grid sets one per node.
	ServicePrefix string
	// RunDir holds the admin socket of each server:
	// <RunDir>/zdb_<volume id>/zdb.sock.
	RunDir string
	// NetNS runs every server in a network namespace of its own, made by
	// Networker.ZDBPrepare, as the original.
	NetNS bool
	// NSEnter runs a program in a network namespace (util-linux nsenter).
	NSEnter string
	// Listen is the address the servers listen on.
	Listen string
	// Port is the TCP port of every server with NetNS; without, the first
	// of Ports ports handed out one per allocation volume.
	Port  uint16
	Ports uint16
	// Addresses are the IPs reported to the owner without NetNS (empty:
	// Listen, when it is not a wildcard).
	Addresses []string
	// ReadyTimeout bounds waiting for a started server to answer.
	ReadyTimeout time.Duration
	// AddrTimeout bounds waiting for zdb0's addresses with NetNS.
	AddrTimeout time.Duration
	// After lists the zinit services the servers start after.
	After []string
}

// DefaultZDBConfig returns the configuration of a real node: servers in
// their own namespaces on port 9900, as the original.
func DefaultZDBConfig() ZDBConfig {
	return ZDBConfig{
		Command:      []string{"zdb"},
		RunDir:       "/var/run",
		NetNS:        true,
		NSEnter:      "nsenter",
		Listen:       "::",
		Port:         9900,
		Ports:        100,
		ReadyTimeout: 2 * time.Minute,
		AddrTimeout:  2 * time.Minute,
	}
}

// Validate reports an unusable configuration.
func (c ZDBConfig) Validate() error {
	switch {
	case len(c.Command) == 0 || c.Command[0] == "":
		return errors.New("zdb: server command not set")
	case !filepath.IsAbs(c.RunDir):
		return fmt.Errorf("zdb: run dir %q is not absolute", c.RunDir)
	case net.ParseIP(c.Listen) == nil:
		return fmt.Errorf("zdb: listen address %q is not an IP", c.Listen)
	case c.Port == 0:
		return errors.New("zdb: port not set")
	case c.NetNS && c.NSEnter == "":
		return errors.New("zdb: nsenter command not set")
	case !c.NetNS && (c.Ports == 0 || int(c.Port)+int(c.Ports)-1 > 65535):
		return fmt.Errorf("zdb: port range %d+%d invalid", c.Port, c.Ports)
	case c.ReadyTimeout <= 0 || c.AddrTimeout <= 0:
		return errors.New("zdb: timeouts must be positive")
	}
	for _, a := range c.Addresses {
		if net.ParseIP(a) == nil {
			return fmt.Errorf("zdb: address %q is not an IP", a)
		}
	}
	if err := zinitName(c.ServicePrefix + "zdb-x"); err != nil {
		return fmt.Errorf("zdb: service prefix %q: %w", c.ServicePrefix, err)
	}
	return nil
}

// ZDB provisions 0-db namespaces. The storage module allocates the
// namespace on a zdb volume of the asked mode and disk type; one 0-db
// server (our cmd/zdb) per volume runs as a zinit service with its data
// and index on the volume; the namespace is then created and configured
// (password, public, maxsize) over the server's admin socket.
//
// Differences from the original, on purpose:
//   - each server has an admin password (random, kept in the volume) and
//     --protect: a client over the network is never an admin, so it cannot
//     list, delete or reconfigure other users' namespaces nor write to the
//     default namespace (the original ran 0-db without --admin, so every
//     client was admin);
//   - a password of "*" is refused (0-db reads it as "no password"), and
//     an update without password clears the old one;
//   - the server is a zinit service, not a container on a flist.
type ZDB struct {
	cfg      ZDBConfig
	storage  ZDBStorage
	services Services
	net      pkg.Networker
	log      *slog.Logger
	// dial returns a client of a server's admin socket; tests replace it.
	dial func(addr string) zdb.Client
	// portFree reports whether nothing listens on a port; tests replace
	// it.
	portFree func(port uint16) bool

	// releaseMu is held shared by Provision and exclusively by
	// Decommission, so a volume is only released when no namespace is
	// being added to it.
	releaseMu sync.RWMutex
	volMu     sync.Mutex
	vols      map[string]*sync.Mutex // guarded by volMu: one lock per volume
	portMu    sync.Mutex
	ports     map[uint16]string // guarded by portMu: ports handed out, to their volume
}

var _ provision.Provisioner = (*ZDB)(nil)

// NewZDB returns the zdb provisioner; it starts nothing. net is required
// with cfg.NetNS.
func NewZDB(cfg ZDBConfig, st ZDBStorage, services Services, net pkg.Networker, log *slog.Logger) (*ZDB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if st == nil || services == nil || log == nil {
		return nil, errors.New("zdb: storage, zinit client and logger are required")
	}
	if cfg.NetNS && net == nil {
		return nil, errors.New("zdb: network namespaces need the networker")
	}
	return &ZDB{
		cfg: cfg, storage: st, services: services, net: net, log: log,
		dial:     func(addr string) zdb.Client { return zdb.NewPool(addr, zdb.Options{}) },
		portFree: func(port uint16) bool { return portFree(cfg.Listen, port) },
		vols:     map[string]*sync.Mutex{},
		ports:    map[uint16]string{},
	}, nil
}

// ServiceName is the zinit service of the server of a volume.
func (z *ZDB) ServiceName(volumeID string) string { return z.cfg.ServicePrefix + "zdb-" + volumeID }

// SocketPath is the admin socket of the server of a volume.
func (z *ZDB) SocketPath(volumeID string) string {
	return filepath.Join(z.cfg.RunDir, "zdb_"+volumeID, "zdb.sock")
}

// zdbStateFile keeps a server's settings in its volume, so a restarted
// node serves a volume on the same port with the same admin password.
const zdbStateFile = ".zos-zdb.json"

// zdbState is the content of zdbStateFile.
type zdbState struct {
	Mode  gridtypes.ZDBMode `json:"mode"`
	Port  uint16            `json:"port"`
	Admin string            `json:"admin"`
}

// ErrBadState is wrapped when a volume's zdb state file is unusable.
var ErrBadState = errors.New("bad zdb state file")

func parseZDBState(b []byte) (zdbState, error) {
	var s zdbState
	if err := json.Unmarshal(b, &s); err != nil {
		return zdbState{}, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	if s.Mode != gridtypes.ZDBModeUser && s.Mode != gridtypes.ZDBModeSeq {
		return zdbState{}, fmt.Errorf("%w: mode %q", ErrBadState, s.Mode)
	}
	if len(s.Admin) < 16 || len(s.Admin) > 128 || strings.Trim(s.Admin, "0123456789abcdef") != "" {
		return zdbState{}, fmt.Errorf("%w: admin password malformed", ErrBadState)
	}
	return s, nil
}

func readZDBState(volumePath string) (zdbState, bool, error) {
	b, err := os.ReadFile(filepath.Join(volumePath, zdbStateFile))
	if errors.Is(err, os.ErrNotExist) {
		return zdbState{}, false, nil
	}
	if err != nil {
		return zdbState{}, false, err
	}
	s, err := parseZDBState(b)
	return s, err == nil, err
}

func (z *ZDB) volLock(volumeID string) func() {
	z.volMu.Lock()
	mu := z.vols[volumeID]
	if mu == nil {
		mu = &sync.Mutex{}
		z.vols[volumeID] = mu
	}
	z.volMu.Unlock()
	mu.Lock()
	return mu.Unlock
}

// checkZDB refuses what 0-db would misread; its errors name the field.
func checkZDB(w *gridtypes.ZDB) error {
	switch {
	case w.Password == "*":
		return errors.New(`password: "*" means no password to 0-db`)
	case len(w.Password) > 255:
		return fmt.Errorf("password: %d bytes, 0-db keeps at most 255", len(w.Password))
	case w.Mode != gridtypes.ZDBModeUser && w.Mode != gridtypes.ZDBModeSeq:
		return fmt.Errorf("mode: %q is not seq or user", w.Mode)
	case w.Size == 0:
		return errors.New("size: must be at least 1 GiB")
	}
	return nil
}

// allocErr sorts the storage module's errors: a node that is temporarily
// unable is retried, a request it can never satisfy fails.
func allocErr(name string, err error) error {
	if errors.Is(err, storage.ErrPoolBroken) || errors.Is(err, storage.ErrClosed) {
		return fmt.Errorf("zdb %s: %w: %w", name, provision.ErrTemporary, err)
	}
	return fmt.Errorf("zdb %s: %w", name, err)
}

// Provision implements provision.Provisioner. It is an ensure: after a
// power cut the server is started again and finds the namespace with its
// data and settings. The mode of a namespace never changes (an update to
// another mode fails with storage.ErrModeMismatch).
func (z *ZDB) Provision(ctx context.Context, d *provision.Deployment) (any, error) {
	w, ok := d.Workload.(*gridtypes.ZDB)
	if !ok {
		return nil, fmt.Errorf("zdb %s: workload is a %T", d.Name, d.Workload)
	}
	if err := checkZDB(w); err != nil {
		return nil, err
	}
	z.releaseMu.RLock()
	defer z.releaseMu.RUnlock()

	size := w.Size * gridtypes.GiB
	alloc, err := z.storage.Allocate(d.Name, deviceType(w.DiskType), size, pkg.ZDBMode(w.Mode))
	if err != nil {
		return nil, allocErr(d.Name, err)
	}
	// Allocate keeps the size of an existing namespace: an update changes
	// its reservation (and the descriptor on disk) before the server is
	// told. pkg.ErrNotEnoughSpace and storage.ErrInUse are permanent.
	if err := z.storage.ResizeNamespace(ctx, d.Name, size); err != nil {
		return nil, allocErr(d.Name, err)
	}
	unlock := z.volLock(alloc.VolumeID)
	defer unlock()
	srv, err := z.ensureServerLocked(ctx, alloc, w.Mode)
	if err != nil {
		return nil, fmt.Errorf("zdb %s: %w", d.Name, err)
	}
	defer srv.client.Close()

	c := srv.client
	exists, err := c.Exist(d.Name)
	if err != nil {
		return nil, fmt.Errorf("zdb %s: %w: %w", d.Name, provision.ErrTemporary, err)
	}
	if !exists {
		if err := c.CreateNamespace(d.Name); err != nil && !errors.Is(err, zdb.ErrNamespaceExists) {
			return nil, fmt.Errorf("zdb %s: %w: %w", d.Name, provision.ErrTemporary, err)
		}
		z.log.InfoContext(ctx, "zdb namespace created", "namespace", d.Name, "volume", alloc.VolumeID)
	}
	// maxsize first: the server rewrites its descriptor on every NSSET, so
	// its copy matches the reservation as soon as possible
	for _, set := range []func() error{
		func() error { return c.NamespaceSetSize(d.Name, size) },
		func() error { return c.NamespaceSetPassword(d.Name, w.Password) },
		func() error { return c.NamespaceSetPublic(d.Name, w.Public) },
	} {
		if err := set(); err != nil {
			return nil, fmt.Errorf("zdb %s: %w: %w", d.Name, provision.ErrTemporary, err)
		}
	}
	ips, err := z.addresses(ctx, srv.netns)
	if err != nil {
		return nil, fmt.Errorf("zdb %s: %w", d.Name, err)
	}
	return gridtypes.ZDBResult{Namespace: d.Name, IPs: ips, Port: srv.port}, nil
}

// Decommission implements provision.Provisioner: the namespace is deleted
// with its data and its reservation given back; a server left with only
// the default namespace is stopped and its volume released.
//
// The reservation of the namespace goes last (with the volume when it is
// the last namespace there), so a Decommission retried after a failure
// finds the namespace again and never leaks the volume or its server.
func (z *ZDB) Decommission(ctx context.Context, d *provision.Deployment) error {
	z.releaseMu.Lock()
	defer z.releaseMu.Unlock()
	alloc, err := z.storage.Find(d.Name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("zdb %s: %w: %w", d.Name, provision.ErrTemporary, err)
	}
	if _, err := os.Stat(alloc.VolumePath); errors.Is(err, os.ErrNotExist) {
		return nil // released already
	}
	unlock := z.volLock(alloc.VolumeID)
	defer unlock()
	st, ok, err := readZDBState(alloc.VolumePath)
	if err != nil {
		return fmt.Errorf("zdb %s: volume %s: %w", d.Name, alloc.VolumeID, err)
	}
	// no namespace but this one on disk (a namespace allocated but not
	// created on the server yet only shows there)
	last, ns := onlyNamespace(alloc.VolumePath, d.Name), ""
	if ok {
		srv, err := z.ensureServerLocked(ctx, alloc, st.Mode)
		if err != nil {
			return fmt.Errorf("zdb %s: %w", d.Name, err)
		}
		defer srv.client.Close()
		ns = srv.netns
		if err := srv.client.DeleteNamespace(d.Name); err != nil && !errors.Is(err, zdb.ErrNamespaceNotFound) {
			return fmt.Errorf("zdb %s: %w: %w", d.Name, provision.ErrTemporary, err)
		}
		z.log.InfoContext(ctx, "zdb namespace deleted", "namespace", d.Name, "volume", alloc.VolumeID)
		list, err := srv.client.Namespaces()
		if err != nil {
			return fmt.Errorf("zdb %s: %w: %w", d.Name, provision.ErrTemporary, err)
		}
		last = slices.Equal(list, []string{"default"}) && onlyNamespace(alloc.VolumePath, d.Name)
	}
	if last {
		// ReleaseFilesystem drops every reservation of the volume
		return z.releaseLocked(ctx, alloc, st.Port, ns)
	}
	if err := z.storage.ReleaseNamespace(ctx, d.Name); err != nil {
		return allocErr(d.Name, err)
	}
	return nil
}

// releaseLocked stops the server of a volume that holds no namespace any
// more, removes its network namespace ns (with NetNS) and releases the
// volume.
func (z *ZDB) releaseLocked(ctx context.Context, alloc pkg.Allocation, port uint16, ns string) error {
	if err := destroyService(ctx, z.services, z.ServiceName(alloc.VolumeID)); err != nil {
		return fmt.Errorf("zdb volume %s: %w", alloc.VolumeID, err)
	}
	if ns != "" {
		if err := z.net.ZDBDestroy(ns); err != nil && !notFound(err) && !errors.Is(err, netns.ErrNotExist) {
			return fmt.Errorf("zdb volume %s: %w: %w", alloc.VolumeID, provision.ErrTemporary, err)
		}
	}
	if err := os.RemoveAll(filepath.Dir(z.SocketPath(alloc.VolumeID))); err != nil {
		return fmt.Errorf("zdb volume %s: %w", alloc.VolumeID, err)
	}
	if err := z.storage.ReleaseFilesystem(alloc.VolumeID); err != nil && !notFound(err) {
		return fmt.Errorf("zdb volume %s: %w: %w", alloc.VolumeID, provision.ErrTemporary, err)
	}
	z.portMu.Lock()
	if z.ports[port] == alloc.VolumeID {
		delete(z.ports, port)
	}
	z.portMu.Unlock()
	z.log.InfoContext(ctx, "zdb volume released", "volume", alloc.VolumeID)
	return nil
}

// ZDBHardwareAddr is the MAC of the zdb0 interface of a volume's server,
// derived from its volume id as the original.
func ZDBHardwareAddr(volumeID string) net.HardwareAddr {
	return network.HardwareAddrFromInputBytes([]byte(volumeID))
}

// namespaceDirs lists the namespace directories of a volume other than
// default.
func namespaceDirs(volumePath string) []string {
	entries, _ := os.ReadDir(volumePath)
	var out []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != "default" && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

// onlyNamespace reports whether the volume holds no namespace directory
// but ns's (default aside).
func onlyNamespace(volumePath, ns string) bool {
	for _, n := range namespaceDirs(volumePath) {
		if n != ns {
			return false
		}
	}
	return true
}

// zdbServer is a running server and a client of its admin socket.
type zdbServer struct {
	client zdb.Client
	port   uint16
	netns  string // with NetNS
}

// ensureServerLocked makes sure the server of a volume runs and answers on
// its admin socket. Called with the volume's lock held.
func (z *ZDB) ensureServerLocked(ctx context.Context, alloc pkg.Allocation, mode gridtypes.ZDBMode) (zdbServer, error) {
	st, err := z.stateLocked(alloc, mode)
	if err != nil {
		return zdbServer{}, err
	}
	if st.Mode != mode {
		return zdbServer{}, fmt.Errorf("volume %s serves %s namespaces, not %s: %w", alloc.VolumeID, st.Mode, mode, storage.ErrModeMismatch)
	}
	srv := zdbServer{port: st.Port}
	if z.cfg.NetNS {
		srv.netns, err = z.net.ZDBPrepare(ZDBHardwareAddr(alloc.VolumeID))
		if err != nil {
			return zdbServer{}, fmt.Errorf("volume %s: network namespace: %w: %w", alloc.VolumeID, provision.ErrDependency, err)
		}
	}
	sock := z.SocketPath(alloc.VolumeID)
	if len(sock) > 107 {
		return zdbServer{}, fmt.Errorf("volume %s: socket path %s too long", alloc.VolumeID, sock)
	}
	if err := os.MkdirAll(filepath.Dir(sock), 0o750); err != nil {
		return zdbServer{}, fmt.Errorf("volume %s: %w", alloc.VolumeID, err)
	}
	var args []string
	if z.cfg.NetNS {
		args = append(args, z.cfg.NSEnter, "--net="+netns.Path(srv.netns), "--")
	}
	args = append(args, z.cfg.Command...)
	args = append(args,
		"--data", alloc.VolumePath, "--index", alloc.VolumePath, "--mode", string(st.Mode),
		"--listen", z.cfg.Listen, "--port", strconv.Itoa(int(st.Port)),
		"--socket", sock, "--dualnet", "--admin", st.Admin, "--protect")
	name := z.ServiceName(alloc.VolumeID)
	if err := ensureService(ctx, z.services, name, zinit.InitService{Exec: proto.Join(args), After: z.cfg.After}); err != nil {
		return zdbServer{}, fmt.Errorf("volume %s: %w", alloc.VolumeID, err)
	}
	srv.client = z.dial("unix://" + st.Admin + "@" + sock)
	if err := z.waitReady(ctx, srv.client, name); err != nil {
		srv.client.Close()
		return zdbServer{}, fmt.Errorf("volume %s: %w", alloc.VolumeID, err)
	}
	return srv, nil
}

// stateLocked reads the settings of a volume's server, or makes them: the
// mode of the volume, a port, a random admin password.
func (z *ZDB) stateLocked(alloc pkg.Allocation, mode gridtypes.ZDBMode) (zdbState, error) {
	st, ok, err := readZDBState(alloc.VolumePath)
	if err != nil {
		return zdbState{}, fmt.Errorf("volume %s: %w", alloc.VolumeID, err)
	}
	changed := !ok
	if !ok {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return zdbState{}, err
		}
		st = zdbState{Mode: mode, Admin: hex.EncodeToString(b[:])}
	}
	switch {
	case z.cfg.NetNS && st.Port != z.cfg.Port:
		st.Port, changed = z.cfg.Port, true
	case !z.cfg.NetNS:
		port, err := z.pickPort(alloc.VolumeID, st.Port)
		if err != nil {
			return zdbState{}, fmt.Errorf("volume %s: %w", alloc.VolumeID, err)
		}
		if port != st.Port {
			st.Port, changed = port, true
		}
	}
	if changed {
		b, err := json.Marshal(st)
		if err != nil {
			return zdbState{}, err
		}
		if err := atomicfile.WriteFile(filepath.Join(alloc.VolumePath, zdbStateFile), b, 0o600); err != nil {
			return zdbState{}, fmt.Errorf("volume %s: %w", alloc.VolumeID, err)
		}
	}
	return st, nil
}

// pickPort returns the port of a volume's server without NetNS: the one it
// had (cur) if it is still its own, else the lowest free one of the range.
// Ports of the other servers zinit runs count as taken.
func (z *ZDB) pickPort(volumeID string, cur uint16) (uint16, error) {
	z.portMu.Lock()
	defer z.portMu.Unlock()
	used := map[uint16]bool{}
	for p, v := range z.ports {
		if v != volumeID {
			used[p] = true
		}
	}
	list, err := z.services.List()
	if err != nil {
		return 0, fmt.Errorf("zinit: %w: %w", provision.ErrTemporary, err)
	}
	prefix, own := z.cfg.ServicePrefix+"zdb-", z.ServiceName(volumeID)
	_, running := list[own]
	for name := range list {
		if !strings.HasPrefix(name, prefix) || name == own {
			continue
		}
		if s, err := z.services.Get(name); err == nil {
			if p := execPort(s.Exec); p != 0 {
				used[p] = true
			}
		}
	}
	first, last := int(z.cfg.Port), int(z.cfg.Port)+int(z.cfg.Ports)-1
	// the port it had, unless another server took it, or (when its own
	// server is not running, after a reboot) something else listens there
	if cur != 0 && !used[cur] && int(cur) >= first && int(cur) <= last && (running || z.portFree(cur)) {
		z.ports[cur] = volumeID
		return cur, nil
	}
	for p := first; p <= last; p++ {
		if !used[uint16(p)] && z.portFree(uint16(p)) {
			z.ports[uint16(p)] = volumeID
			return uint16(p), nil
		}
	}
	return 0, fmt.Errorf("no free port in %d-%d: %w", first, last, provision.ErrTemporary)
}

// portFree reports whether nothing uses port on address listen here.
func portFree(listen string, port uint16) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(listen, strconv.Itoa(int(port))))
	if err != nil {
		return !errors.Is(err, syscall.EADDRINUSE)
	}
	l.Close()
	return true
}

// execPort returns the --port of a server's command line (0: none).
func execPort(exec string) uint16 {
	words, err := proto.Split(exec)
	if err != nil {
		return 0
	}
	for i, w := range words {
		if w == "--port" && i+1 < len(words) {
			if p, err := strconv.ParseUint(words[i+1], 10, 16); err == nil {
				return uint16(p)
			}
		}
	}
	return 0
}

// waitReady waits until the server answers PING on its admin socket.
func (z *ZDB) waitReady(ctx context.Context, c zdb.Client, service string) error {
	ctx, cancel := context.WithTimeout(ctx, z.cfg.ReadyTimeout)
	defer cancel()
	delay := 20 * time.Millisecond
	for {
		err := c.Connect()
		if err == nil {
			return nil
		}
		if st, serr := z.services.Status(service); serr == nil && st.State.Is(zinit.ServiceStateFailure) {
			return fmt.Errorf("service %s: %s: %w", service, st.State, provision.ErrTemporary)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("service %s not answering: %w: %w", service, provision.ErrTemporary, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

// addresses returns the IPs reported to the owner: with NetNS the public
// and yggdrasil addresses of zdb0 (waited for), else the configured ones.
func (z *ZDB) addresses(ctx context.Context, ns string) ([]string, error) {
	if !z.cfg.NetNS {
		out := slices.Clone(z.cfg.Addresses)
		if len(out) == 0 {
			if ip := net.ParseIP(z.cfg.Listen); ip != nil && !ip.IsUnspecified() {
				out = []string{ip.String()}
			}
		}
		if out == nil {
			out = []string{}
		}
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, z.cfg.AddrTimeout)
	defer cancel()
	for {
		ips, err := z.net.Addrs("zdb0", ns)
		var out []string
		for _, ip := range ips {
			if a, ok := netip.AddrFromSlice(ip); ok && a.Unmap().IsGlobalUnicast() && !a.Unmap().IsPrivate() {
				out = append(out, a.Unmap().String())
			}
		}
		if len(out) > 0 {
			slices.Sort(out)
			return out, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("zdb0 in %s has no public address yet (%v): %w", ns, err, provision.ErrDependency)
		case <-time.After(time.Second):
		}
	}
}
