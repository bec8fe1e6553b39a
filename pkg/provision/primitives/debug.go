package primitives

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/zos-go/zos/internal/zinit/proto"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/provision"
	"github.com/zos-go/zos/pkg/zinit"
)

// Services is the part of the zinit client the zdb and debug provisioners
// use; *zinit.Client implements it.
type Services interface {
	AddService(name string, s zinit.InitService) error
	Monitor(service string) error
	Start(service string) error
	Status(service string) (zinit.ServiceStatus, error)
	Get(name string) (zinit.InitService, error)
	List() (map[string]zinit.ServiceState, error)
	Destroy(ctx context.Context, service string) error
}

var _ Services = (*zinit.Client)(nil)

// ensureService makes zinit run service name with the file want: a service
// zinit does not know is written and monitored; a known one whose file
// differs (an upgrade, another port) is destroyed and monitored again; one
// that was stopped is started.
func ensureService(ctx context.Context, svc Services, name string, want zinit.InitService) error {
	st, err := svc.Status(name)
	switch {
	case errors.Is(err, zinit.ErrUnknownService):
		return monitorService(svc, name, want)
	case err != nil:
		return fmt.Errorf("service %s: %w: %w", name, provision.ErrTemporary, err)
	}
	cur, err := svc.Get(name)
	if err != nil || !sameService(cur, want) {
		if err := svc.Destroy(ctx, name); err != nil {
			return fmt.Errorf("service %s: replace: %w: %w", name, provision.ErrTemporary, err)
		}
		return monitorService(svc, name, want)
	}
	if st.Target == zinit.ServiceTargetDown {
		if err := svc.Start(name); err != nil {
			return fmt.Errorf("service %s: start: %w: %w", name, provision.ErrTemporary, err)
		}
	}
	return nil
}

func monitorService(svc Services, name string, want zinit.InitService) error {
	if err := svc.AddService(name, want); err != nil {
		return fmt.Errorf("service %s: %w", name, err)
	}
	if err := svc.Monitor(name); err != nil && !errors.Is(err, zinit.ErrAlreadyMonitored) {
		return fmt.Errorf("service %s: monitor: %w: %w", name, provision.ErrTemporary, err)
	}
	return nil
}

// sameService compares service files as zinit reads them back (empty and
// nil lists and maps are the same).
func sameService(a, b zinit.InitService) bool {
	norm := func(s zinit.InitService) zinit.InitService {
		if len(s.After) == 0 {
			s.After = nil
		}
		if len(s.Env) == 0 {
			s.Env = nil
		}
		return s
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// destroyService removes a service; one zinit does not know is not an
// error.
func destroyService(ctx context.Context, svc Services, name string) error {
	if err := svc.Destroy(ctx, name); err != nil && !errors.Is(err, zinit.ErrUnknownService) {
		return fmt.Errorf("service %s: %w: %w", name, provision.ErrTemporary, err)
	}
	return nil
}

// DebugConfig configures the debug provisioner.
type DebugConfig struct {
	// NodeID names the default channel, "<node id>-logs".
	NodeID string
	// Command is the log shipper (cmd/zos-logship) and its leading
	// arguments.
	Command []string
	// ServicePrefix is put in front of the zinit service names
	// ("<prefix>debug-<name>"); the development grid sets one per node.
	ServicePrefix string
	// ZinitSocket and ZinitLogSocket are passed to the shipper (empty: its
	// defaults, the node's zinit).
	ZinitSocket    string
	ZinitLogSocket string
	// After lists the zinit services the shipper starts after (the
	// original: networkd).
	After []string
}

// DefaultDebugConfig returns the configuration of a real node; NodeID must
// be set.
func DefaultDebugConfig() DebugConfig {
	return DebugConfig{Command: []string{"zos-logship"}}
}

// Validate reports an unusable configuration.
func (c DebugConfig) Validate() error {
	switch {
	case c.NodeID == "":
		return errors.New("debug: node id not set")
	case len(c.Command) == 0 || c.Command[0] == "":
		return errors.New("debug: shipper command not set")
	}
	if err := zinitName(c.ServicePrefix + "debug-1-1"); err != nil {
		return fmt.Errorf("debug: service prefix %q: %w", c.ServicePrefix, err)
	}
	return nil
}

// zinitName checks a service name the way zinit does.
func zinitName(name string) error {
	if name == "" || len(name) > 128 || name[0] == '.' {
		return zinit.ErrInvalidService
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._@-", c) >= 0) {
			return zinit.ErrInvalidService
		}
	}
	return nil
}

// Debug provisions debug workloads: a zinit service running the log
// shipper, which publishes every line of zinit's log (the node's services)
// to a redis channel. The original ran zlf; ours is cmd/zos-logship.
type Debug struct {
	cfg      DebugConfig
	services Services
}

var _ provision.Provisioner = (*Debug)(nil)

// NewDebug returns the debug provisioner; it starts nothing.
func NewDebug(cfg DebugConfig, services Services) (*Debug, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if services == nil {
		return nil, errors.New("debug: zinit client is required")
	}
	return &Debug{cfg: cfg, services: services}, nil
}

// ServiceName is the zinit service of the debug workload named name.
func (p *Debug) ServiceName(name string) string { return p.cfg.ServicePrefix + "debug-" + name }

// Channel is where the logs of w go: its channel, else "<node id>-logs".
func (p *Debug) Channel(w *gridtypes.Debug) string {
	if w.Channel != "" {
		return w.Channel
	}
	return p.cfg.NodeID + "-logs"
}

// ErrBadHost is wrapped when a debug workload's host is neither an IP
// address nor a DNS name.
var ErrBadHost = errors.New("not an IP address or host name")

// checkHost accepts an IP address or a DNS name, so the shipper's command
// line can only ever carry an address.
func checkHost(h string) error {
	if net.ParseIP(h) != nil {
		return nil
	}
	if h == "" || len(h) > 253 || strings.HasPrefix(h, "-") {
		return fmt.Errorf("host %q: %w", h, ErrBadHost)
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("host %q: %w", h, ErrBadHost)
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("host %q: %w", h, ErrBadHost)
			}
		}
	}
	return nil
}

// service returns the zinit service file of the shipper of w.
func (p *Debug) service(name string, w *gridtypes.Debug) zinit.InitService {
	args := slices.Clone(p.cfg.Command)
	args = append(args, "--host", w.Host, "--port", strconv.Itoa(int(w.Port)),
		"--channel", p.Channel(w), "--exclude", p.ServiceName(name))
	if p.cfg.ZinitSocket != "" {
		args = append(args, "--zinit-socket", p.cfg.ZinitSocket)
	}
	if p.cfg.ZinitLogSocket != "" {
		args = append(args, "--zinit-log-socket", p.cfg.ZinitLogSocket)
	}
	return zinit.InitService{Exec: proto.Join(args), After: p.cfg.After, Log: zinit.RingLogType}
}

// Provision implements provision.Provisioner: it makes sure the shipper
// runs. An update (another host or channel) restarts it with the new
// settings. The result data is null, as the original.
func (p *Debug) Provision(ctx context.Context, d *provision.Deployment) (any, error) {
	w, ok := d.Workload.(*gridtypes.Debug)
	if !ok {
		return nil, fmt.Errorf("debug %s: workload is a %T", d.Name, d.Workload)
	}
	if err := checkHost(w.Host); err != nil {
		return nil, err
	}
	if w.Port == 0 {
		return nil, errors.New("port: is required")
	}
	name := p.ServiceName(d.Name)
	if err := zinitName(name); err != nil {
		return nil, fmt.Errorf("debug %s: service %q: %w", d.Name, name, err)
	}
	if err := ensureService(ctx, p.services, name, p.service(d.Name, w)); err != nil {
		return nil, fmt.Errorf("debug %s: %w", d.Name, err)
	}
	return nil, nil
}

// Decommission implements provision.Provisioner: the shipper is stopped
// and its service forgotten and removed.
func (p *Debug) Decommission(ctx context.Context, d *provision.Deployment) error {
	name := p.ServiceName(d.Name)
	if zinitName(name) != nil {
		return nil // never provisioned
	}
	if err := destroyService(ctx, p.services, name); err != nil {
		return fmt.Errorf("debug %s: %w", d.Name, err)
	}
	return nil
}
