package zinit_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/zinit"
	"github.com/zos-go/zos/pkg/zinit/zinittest"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func waitState(t *testing.T, cl *zinit.Client, name string, want zinit.PossibleState) zinit.ServiceStatus {
	t.Helper()
	st, err := cl.WaitStatus(ctxT(t, 15*time.Second), name, 20*time.Millisecond, func(st zinit.ServiceStatus) bool {
		return st.State.Is(want)
	})
	if err != nil {
		t.Fatalf("service %s: want %s: %v", name, want, err)
	}
	return st
}

func TestClientLifecycle(t *testing.T) {
	testutil.RequireTools(t, "sh", "sleep")
	testutil.CheckLeaks(t)
	cl, _ := zinittest.Start(t)
	name := testutil.Name(t, "svc")
	if err := cl.AddService(name, zinit.InitService{Exec: `sh -c "echo started; exec sleep 100"`}); err != nil {
		t.Fatal(err)
	}
	if err := cl.Monitor(name); err != nil {
		t.Fatal(err)
	}
	if err := cl.Monitor(name); !errors.Is(err, zinit.ErrAlreadyMonitored) {
		t.Fatalf("second monitor: %v, want ErrAlreadyMonitored", err)
	}
	st := waitState(t, cl, name, zinit.ServiceStateRunning)
	if st.Pid <= 0 || !testutil.ProcessAlive(st.Pid) || st.Target != zinit.ServiceTargetUp {
		t.Fatalf("status %+v: want a live pid and target up", st)
	}
	list, err := cl.List()
	if err != nil || !list[name].Is(zinit.ServiceStateRunning) {
		t.Fatalf("list = %v, %v", list, err)
	}
	testutil.WaitFor(t, 5*time.Second, "log line", func() error {
		lines, err := cl.LogSnapshot(t.Context(), name)
		if err != nil {
			return err
		}
		for _, l := range lines {
			if l.Text == "started" && !l.Stderr {
				return nil
			}
		}
		return errors.New("no line 'started'")
	})
	if err := cl.Forget(name); !errors.Is(err, zinit.ErrTargetNotDown) {
		t.Fatalf("forget running service: %v, want ErrTargetNotDown", err)
	}
	if err := cl.Destroy(ctxT(t, 10*time.Second), name); err != nil {
		t.Fatal(err)
	}
	if testutil.ProcessAlive(st.Pid) {
		t.Fatalf("pid %d alive after Destroy", st.Pid)
	}
	if _, err := cl.Status(name); !errors.Is(err, zinit.ErrUnknownService) {
		t.Fatalf("status after destroy: %v, want ErrUnknownService", err)
	}
	if _, err := zinit.ReadService(cl.ConfigDir(), name); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("service file after destroy: %v", err)
	}
}
