package container_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/container"
	"github.com/zos-go/zos/pkg/container/containertest"
	"github.com/zos-go/zos/pkg/container/logger"
	"github.com/zos-go/zos/pkg/container/stats"
)

// cgroupValue reads a file of the container's cgroup (v1 controller dir,
// or the unified tree).
func cgroupValue(t *testing.T, cfg container.Config, controller, ns, id, v1file, v2file string) string {
	t.Helper()
	p := filepath.Join(cfg.CgroupParent, ns, id)
	try := []string{filepath.Join("/sys/fs/cgroup", controller, p, v1file), filepath.Join("/sys/fs/cgroup", p, v2file)}
	for _, f := range try {
		if b, err := os.ReadFile(f); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	t.Fatalf("no cgroup file among %v", try)
	return ""
}

func TestMemoryLimitKillsAllocator(t *testing.T) {
	testutil.CheckLeaks(t)
	e := setup(t)
	m, _ := containertest.NewModule(t, e.cfg)
	// The shell keeps the whole 100 MB command output in memory.
	c := e.container("hog", `sh -c 'echo allocating; x=$(head -c 100000000 /dev/zero | tr "\0" a); echo survived ${#x}; exec sleep 3600'`)
	c.Memory = 32 << 20
	ns := run(t, m, c)
	var st container.Status
	testutil.WaitFor(t, 30*time.Second, "out-of-memory exit recorded", func() error {
		st = status(t, m, ns, "hog")
		if !st.OOMKilled {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	if !strings.Contains(st.Reason, "out-of-memory") || st.ExitCode != 137 {
		t.Errorf("status after the kill: %+v", st)
	}
	log := waitLog(t, m, ns, "hog", "allocating")
	if strings.Contains(log, "survived") {
		t.Fatalf("the allocation succeeded under a 32 MiB limit: %q", log)
	}
	// The limit is what the cgroup holds once the task runs again.
	testutil.WaitFor(t, 10*time.Second, "task restarted", func() error {
		if s := status(t, m, ns, "hog"); s.State != container.StateRunning {
			return fmt.Errorf("%+v", s)
		}
		return nil
	})
	if got := cgroupValue(t, e.cfg, "memory", ns, "hog", "memory.limit_in_bytes", "memory.max"); got != strconv.Itoa(32<<20) {
		t.Errorf("memory limit in the cgroup: %s", got)
	}
}

func TestCPULimitAndStats(t *testing.T) {
	testutil.CheckLeaks(t)
	e := setup(t)
	m, _ := containertest.NewModule(t, e.cfg)
	addr := testutil.RedisServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	sub := rdb.Subscribe(context.Background(), "stats")
	defer sub.Close()
	if _, err := sub.Receive(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := e.container("spin", `sh -c 'while :; do :; done & while :; do :; done & while :; do :; done & wait'`)
	c.CPU = 1
	c.Stats = []stats.Stats{{Type: stats.RedisType, Data: stats.Redis{Endpoint: "redis://" + addr + "/stats"}}}
	ns := run(t, m, c)
	if q := cgroupValue(t, e.cfg, "cpu", ns, "spin", "cpu.cfs_quota_us", "cpu.max"); q != "100000" && q != "100000 100000" {
		t.Errorf("cpu quota %q, want one CPU per 100 ms period", q)
	}
	// Three busy loops, one CPU: the cgroup's CPU time grows at most one
	// second per second (plus scheduling slack).
	read := func() (time.Time, uint64) {
		v := cgroupValue(t, e.cfg, "cpuacct", ns, "spin", "cpuacct.usage", "cpu.stat")
		if f := strings.Fields(v); len(f) > 1 { // v2: usage_usec N
			n, _ := strconv.ParseUint(f[1], 10, 64)
			return time.Now(), n * 1000
		}
		n, _ := strconv.ParseUint(v, 10, 64)
		return time.Now(), n
	}
	time.Sleep(300 * time.Millisecond)
	t0, u0 := read()
	time.Sleep(2 * time.Second)
	t1, u1 := read()
	cores := float64(u1-u0) / float64(t1.Sub(t0).Nanoseconds())
	t.Logf("container used %.2f cores with a limit of 1", cores)
	if cores > 1.15 {
		t.Errorf("container used %.2f cores, limit 1", cores)
	}

	// Stats arrive on the channel as the original's JSON document.
	ch := sub.Channel()
	var got stats.Metrics
	for i := 0; i < 3; i++ {
		select {
		case msg := <-ch:
			if err := json.Unmarshal([]byte(msg.Payload), &got); err != nil {
				t.Fatalf("stats payload %q: %v", msg.Payload, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no stats published")
		}
	}
	if got.MemoryLimit != c.Memory || got.CPUUsage == 0 || got.PidsCurrent < 4 || got.MemoryUsage == 0 || got.Timestamp < time.Now().Add(-time.Minute).Unix() {
		t.Errorf("stats %+v", got)
	}
}

func TestRedisLogs(t *testing.T) {
	testutil.CheckLeaks(t)
	e := setup(t)
	m, _ := containertest.NewModule(t, e.cfg)
	addr := testutil.RedisServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	sub := rdb.Subscribe(context.Background(), "out", "err")
	defer sub.Close()
	if _, err := sub.Receive(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := e.container("talk", `sh -c 'sleep 0.5; echo to-stdout; echo to-stderr >&2; exec sleep 3600'`)
	c.Logs = []logger.Logs{{Type: logger.RedisType, Data: logger.LogsRedis{Stdout: "redis://" + addr + "/out", Stderr: "redis://" + addr + "/err"}}}
	ns := run(t, m, c)
	got := map[string]string{}
	for len(got) < 2 {
		select {
		case msg := <-sub.Channel():
			got[msg.Channel] = msg.Payload
		case <-time.After(15 * time.Second):
			t.Fatalf("messages received: %v", got)
		}
	}
	if got["out"] != "to-stdout" || got["err"] != "to-stderr" {
		t.Errorf("published %v", got)
	}
	log := waitLog(t, m, ns, "talk", "to-stderr")
	if !strings.Contains(log, "to-stdout\n") {
		t.Errorf("ring %q lacks stdout", log)
	}
}
