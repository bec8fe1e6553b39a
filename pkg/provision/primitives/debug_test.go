package primitives

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/zos-go/zos/internal/zinit/proto"
	"github.com/zos-go/zos/pkg/gridtypes"
	"github.com/zos-go/zos/pkg/provision"
	"github.com/zos-go/zos/pkg/zinit"
)

// fakeZinit is a stateful in-memory zinit: service files, monitored
// services with their target and process. Hooks play the processes.
type fakeZinit struct {
	mu        sync.Mutex
	files     map[string]zinit.InitService // guarded by mu
	monitored map[string]*fakeService      // guarded by mu
	starts    map[string]int               // guarded by mu: process spawns per service
	// spawn is called when zinit starts a service's process; an error
	// leaves the service in state failure.
	spawn func(name string, s zinit.InitService) error
	// kill is called when the process of a service ends.
	kill func(name string, s zinit.InitService)
	// down makes Status fail as when zinit does not answer.
	down error
}

type fakeService struct {
	file    zinit.InitService
	target  zinit.ServiceTarget
	running bool
	failed  bool
}

func newFakeZinit() *fakeZinit {
	return &fakeZinit{files: map[string]zinit.InitService{}, monitored: map[string]*fakeService{}, starts: map[string]int{}}
}

func (f *fakeZinit) AddService(name string, s zinit.InitService) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if _, err := proto.Split(s.Exec); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	// zinit reads the file back from yaml: an empty list is nil
	if len(s.After) == 0 {
		s.After = nil
	}
	f.files[name] = s
	return nil
}

func (f *fakeZinit) runLocked(name string, svc *fakeService) {
	if svc.running {
		return
	}
	f.starts[name]++
	svc.failed = false
	if f.spawn != nil {
		if err := f.spawn(name, svc.file); err != nil {
			svc.failed = true
			return
		}
	}
	svc.running = true
}

func (f *fakeZinit) stopLocked(name string, svc *fakeService) {
	if svc.running && f.kill != nil {
		f.kill(name, svc.file)
	}
	svc.running = false
}

func (f *fakeZinit) Monitor(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.monitored[name]; ok {
		return fmt.Errorf("service %s: %w", name, zinit.ErrAlreadyMonitored)
	}
	file, ok := f.files[name]
	if !ok {
		return fmt.Errorf("service %s: %w", name, zinit.ErrInvalidService)
	}
	svc := &fakeService{file: file, target: zinit.ServiceTargetUp}
	f.monitored[name] = svc
	f.runLocked(name, svc)
	return nil
}

func (f *fakeZinit) Start(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	svc, ok := f.monitored[name]
	if !ok {
		return fmt.Errorf("service %s: %w", name, zinit.ErrUnknownService)
	}
	svc.target = zinit.ServiceTargetUp
	f.runLocked(name, svc)
	return nil
}

func (f *fakeZinit) Status(name string) (zinit.ServiceStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down != nil {
		return zinit.ServiceStatus{}, f.down
	}
	svc, ok := f.monitored[name]
	if !ok {
		return zinit.ServiceStatus{}, fmt.Errorf("service %s: %w", name, zinit.ErrUnknownService)
	}
	st := zinit.ServiceStatus{Name: name, Target: svc.target}
	state := "Success"
	switch {
	case svc.failed:
		state = "Failure"
	case svc.running:
		state, st.Pid = "Running", 100
	}
	if err := st.State.UnmarshalText([]byte(state)); err != nil {
		return zinit.ServiceStatus{}, err
	}
	return st, nil
}

func (f *fakeZinit) Get(name string) (zinit.InitService, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.monitored[name]; !ok {
		return zinit.InitService{}, fmt.Errorf("service %s: %w", name, zinit.ErrUnknownService)
	}
	return f.files[name], nil
}

func (f *fakeZinit) List() (map[string]zinit.ServiceState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]zinit.ServiceState{}
	for name := range f.monitored {
		out[name] = zinit.ServiceState{}
	}
	return out, nil
}

func (f *fakeZinit) Destroy(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if svc, ok := f.monitored[name]; ok {
		f.stopLocked(name, svc)
		delete(f.monitored, name)
	}
	delete(f.files, name)
	return nil
}

// crash kills the process of a service without zinit restarting it (as
// if zinit had not noticed yet).
func (f *fakeZinit) crash(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if svc, ok := f.monitored[name]; ok {
		f.stopLocked(name, svc)
	}
}

// powerCut ends every process and forgets every service and file (zinit's
// config directory is a tmpfs on a node).
func (f *fakeZinit) powerCut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for name, svc := range f.monitored {
		f.stopLocked(name, svc)
	}
	f.monitored = map[string]*fakeService{}
	f.files = map[string]zinit.InitService{}
}

func (f *fakeZinit) names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.monitored))
}

func (f *fakeZinit) file(name string) (zinit.InitService, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.files[name]
	return s, ok
}

func (f *fakeZinit) startCount(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.starts[name]
}

func reservation(t *testing.T, id uint64, w gridtypes.Workload) *gridtypes.Reservation {
	t.Helper()
	data, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	return &gridtypes.Reservation{ID: id, Version: gridtypes.CurrentVersion, NodeID: "node1", UserID: 7,
		Type: w.WorkloadType(), Data: data, NextAction: gridtypes.ActionDeploy}
}

func deployment(t *testing.T, id uint64, w gridtypes.Workload) *provision.Deployment {
	r := reservation(t, id, w)
	return &provision.Deployment{Name: r.GWID(), Reservation: r, Workload: w}
}

func newTestDebug(t *testing.T) (*Debug, *fakeZinit) {
	t.Helper()
	zi := newFakeZinit()
	cfg := DefaultDebugConfig()
	cfg.NodeID = "NodeAbc"
	cfg.Command = []string{"/bin/zos-logship", "--verbose"}
	cfg.ServicePrefix = "n1-"
	cfg.ZinitSocket = "/run/z/zinit.sock"
	p, err := NewDebug(cfg, zi)
	if err != nil {
		t.Fatal(err)
	}
	return p, zi
}

func execWords(t *testing.T, s zinit.InitService) []string {
	t.Helper()
	w, err := proto.Split(s.Exec)
	if err != nil {
		t.Fatalf("exec %q: %v", s.Exec, err)
	}
	return w
}

func TestDebugProvision(t *testing.T) {
	p, zi := newTestDebug(t)
	ctx := t.Context()
	d := deployment(t, 5, &gridtypes.Debug{Host: "10.1.0.2", Port: 6379})
	res, err := p.Provision(ctx, d)
	if err != nil || res != nil {
		t.Fatalf("provision: %v, %v", res, err)
	}
	if got := zi.names(); !slices.Equal(got, []string{"n1-debug-5-1"}) {
		t.Fatalf("services %v", got)
	}
	s, _ := zi.file("n1-debug-5-1")
	want := []string{"/bin/zos-logship", "--verbose", "--host", "10.1.0.2", "--port", "6379",
		"--channel", "NodeAbc-logs", "--exclude", "n1-debug-5-1", "--zinit-socket", "/run/z/zinit.sock"}
	if got := execWords(t, s); !slices.Equal(got, want) {
		t.Fatalf("exec %q, want %q", got, want)
	}

	// again: nothing restarted
	if _, err := p.Provision(ctx, d); err != nil {
		t.Fatal(err)
	}
	if n := zi.startCount("n1-debug-5-1"); n != 1 {
		t.Fatalf("started %d times", n)
	}
	// stopped by someone: started again
	zi.mu.Lock()
	zi.monitored["n1-debug-5-1"].target = zinit.ServiceTargetDown
	zi.mu.Unlock()
	zi.crash("n1-debug-5-1")
	if _, err := p.Provision(ctx, d); err != nil {
		t.Fatal(err)
	}
	if st, _ := zi.Status("n1-debug-5-1"); !st.State.Is(zinit.ServiceStateRunning) || st.Target != zinit.ServiceTargetUp {
		t.Fatalf("status %+v", st)
	}

	// an update to another channel restarts the shipper with it
	d.Workload = &gridtypes.Debug{Host: "redis.example.com", Port: 7000, Channel: "my logs; --host evil"}
	if _, err := p.Provision(ctx, d); err != nil {
		t.Fatal(err)
	}
	s, _ = zi.file("n1-debug-5-1")
	w := execWords(t, s)
	if !slices.Equal(w[2:8], []string{"--host", "redis.example.com", "--port", "7000", "--channel", "my logs; --host evil"}) {
		t.Fatalf("exec %q", w)
	}
	if n := zi.startCount("n1-debug-5-1"); n != 3 {
		t.Fatalf("started %d times, want 3", n)
	}

	if err := p.Decommission(ctx, d); err != nil {
		t.Fatal(err)
	}
	if got := zi.names(); len(got) != 0 {
		t.Fatalf("services left: %v", got)
	}
	if _, ok := zi.file("n1-debug-5-1"); ok {
		t.Fatal("service file left")
	}
	// decommission of something absent
	if err := p.Decommission(ctx, deployment(t, 6, &gridtypes.Debug{Host: "h", Port: 1})); err != nil {
		t.Fatal(err)
	}
}

func TestDebugBadInput(t *testing.T) {
	p, zi := newTestDebug(t)
	for _, host := range []string{"--zinit-socket", "a b", "x;y", "-a.b", "a..b", string(make([]byte, 300))} {
		_, err := p.Provision(t.Context(), deployment(t, 5, &gridtypes.Debug{Host: host, Port: 1}))
		if !errors.Is(err, ErrBadHost) {
			t.Errorf("host %q: %v", host, err)
		}
	}
	if _, err := p.Provision(t.Context(), deployment(t, 5, &gridtypes.Debug{Host: "::1"})); err == nil {
		t.Error("port 0 accepted")
	}
	if _, err := p.Provision(t.Context(), deployment(t, 5, &gridtypes.Volume{Size: 1})); err == nil {
		t.Error("volume accepted")
	}
	if got := zi.names(); len(got) != 0 {
		t.Fatalf("services made: %v", got)
	}
	zi.down = errors.New("zinit unreachable")
	_, err := p.Provision(t.Context(), deployment(t, 5, &gridtypes.Debug{Host: "::1", Port: 9}))
	if !errors.Is(err, provision.ErrTemporary) {
		t.Fatalf("zinit down: %v", err)
	}
}

func TestDebugConfigValidate(t *testing.T) {
	good := DefaultDebugConfig()
	good.NodeID = "n"
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*DebugConfig){
		"node":    func(c *DebugConfig) { c.NodeID = "" },
		"command": func(c *DebugConfig) { c.Command = nil },
		"prefix":  func(c *DebugConfig) { c.ServicePrefix = "a b" },
	} {
		c := good
		mod(&c)
		if c.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewDebug(good, nil); err == nil {
		t.Error("nil zinit accepted")
	}
}
