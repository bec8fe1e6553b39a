package stats

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zos-go/zos/internal/testutil"
)

func TestPublisher(t *testing.T) {
	addr := testutil.RedisServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	sub := rdb.Subscribe(context.Background(), "metrics")
	defer sub.Close()
	if _, err := sub.Receive(context.Background()); err != nil {
		t.Fatal(err)
	}
	p, err := NewPublisher([]Stats{{Type: RedisType, Data: Redis{Endpoint: "redis://" + addr + "/metrics"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	want := Metrics{Timestamp: 1700000000, MemoryUsage: 10, MemoryLimit: 20, MemoryCache: 3, CPUUsage: 123456789, PidsCurrent: 4}
	if err := p.Publish(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-sub.Channel():
		var raw map[string]any
		if err := json.Unmarshal([]byte(m.Payload), &raw); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"timestamp", "memory_usage", "memory_limit", "memory_cache", "cpu_usage", "pids_current"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("payload %s lacks %q", m.Payload, k)
			}
		}
		var got Metrics
		_ = json.Unmarshal([]byte(m.Payload), &got)
		if got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing published")
	}
	if _, err := NewPublisher([]Stats{{Type: "influx"}}); err == nil {
		t.Error("unknown type accepted")
	}
	if _, err := NewPublisher([]Stats{{Type: RedisType, Data: Redis{Endpoint: "redis://h"}}}); err == nil {
		t.Error("endpoint without channel accepted")
	}
	down, _ := NewPublisher([]Stats{{Type: RedisType, Data: Redis{Endpoint: "redis://127.0.0.1:1/x"}}})
	defer down.Close()
	if err := down.Publish(context.Background(), want); err == nil {
		t.Error("publishing to a closed port succeeded")
	}
}
