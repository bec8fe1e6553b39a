package network

import (
	"slices"
	"testing"
)

func TestProcessSupervisor(t *testing.T) {
	s := ProcessSupervisor{Dir: t.TempDir()}
	ctx := t.Context()
	if err := s.Start(ctx, "svc", []string{"sleep", "60"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(ctx, "svc") })
	pid := s.Pid("svc")
	if pid == 0 {
		t.Fatal("not running")
	}
	if err := s.Start(ctx, "svc", []string{"sleep", "60"}); err != nil || s.Pid("svc") != pid {
		t.Errorf("same argv restarted the service (%d → %d, %v)", pid, s.Pid("svc"), err)
	}
	if err := s.Start(ctx, "svc", []string{"sleep", "61"}); err != nil || s.Pid("svc") == pid || s.Pid("svc") == 0 {
		t.Errorf("new argv did not restart the service (%d → %d, %v)", pid, s.Pid("svc"), err)
	}
	if l, _ := s.List(ctx, "sv"); !slices.Equal(l, []string{"svc"}) {
		t.Errorf("List = %v", l)
	}
	if err := s.Stop(ctx, "svc"); err != nil {
		t.Fatal(err)
	}
	if s.Pid("svc") != 0 {
		t.Errorf("running after Stop")
	}
	if l, _ := s.List(ctx, ""); len(l) != 0 {
		t.Errorf("List after Stop = %v", l)
	}
	if err := s.Stop(ctx, "svc"); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := s.Start(ctx, "bad", []string{"/nonexistent/prog"}); err == nil {
		t.Errorf("missing program started")
	}
}
