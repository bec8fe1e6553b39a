package vm

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/zos-go/zos/internal/zinit/proto"
	"github.com/zos-go/zos/pkg/zinit"
)

// ZinitLauncher runs each QEMU as a zinit oneshot service: zinit keeps it
// running across agent restarts and never restarts it (keep-alive is the
// module's, with its own backoff). Its output goes to zinit's ring log.
type ZinitLauncher struct {
	Client *zinit.Client
}

var _ Launcher = ZinitLauncher{}

// Start implements Launcher: write the service file, then monitor it
// (which starts it). An ended service of that name is destroyed first.
func (z ZinitLauncher) Start(ctx context.Context, name string, argv []string) error {
	if len(argv) == 0 {
		return fmt.Errorf("service %s: empty command", name)
	}
	st, err := z.Client.StatusContext(ctx, name)
	switch {
	case errors.Is(err, zinit.ErrUnknownService):
	case err != nil:
		return fmt.Errorf("service %s: %w", name, err)
	case st.Pid > 0:
		return fmt.Errorf("service %s: %w", name, zinit.ErrServiceRunning)
	default:
		if err := z.Client.Destroy(ctx, name); err != nil {
			return err
		}
	}
	svc := zinit.InitService{Exec: proto.Join(argv), Oneshot: true, Log: zinit.RingLogType}
	if err := z.Client.AddService(name, svc); err != nil {
		return fmt.Errorf("service %s: %w", name, err)
	}
	if err := z.Client.Monitor(name); err != nil && !errors.Is(err, zinit.ErrAlreadyMonitored) {
		_ = z.Client.RemoveService(name)
		return fmt.Errorf("service %s: %w", name, err)
	}
	return nil
}

// Stop implements Launcher.
func (z ZinitLauncher) Stop(ctx context.Context, name string) error {
	return z.Client.Destroy(ctx, name)
}

// Status implements Launcher.
func (z ZinitLauncher) Status(ctx context.Context, name string) (Proc, error) {
	st, err := z.Client.StatusContext(ctx, name)
	if errors.Is(err, zinit.ErrUnknownService) {
		return Proc{}, fmt.Errorf("service %s: %w", name, ErrNoService)
	}
	if err != nil {
		return Proc{}, fmt.Errorf("service %s: %w", name, err)
	}
	switch {
	case st.State.Exited():
		return Proc{Exit: st.State.String()}, nil
	case st.Pid > 0:
		return Proc{PID: st.Pid, Running: true}, nil
	default: // monitored, not spawned yet
		return Proc{}, nil
	}
}

// List implements Launcher.
func (z ZinitLauncher) List(ctx context.Context, prefix string) ([]string, error) {
	all, err := z.Client.ListContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("services: %w", err)
	}
	var out []string
	for n := range all {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out, nil
}

// Output implements Launcher: the service's lines in zinit's ring log.
func (z ZinitLauncher) Output(ctx context.Context, name string) string {
	lines, err := z.Client.LogSnapshot(ctx, name)
	if err != nil {
		return ""
	}
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.Text)
		b.WriteByte('\n')
	}
	return b.String()
}
