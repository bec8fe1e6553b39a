package networktest

import (
	"context"
	"testing"
	"time"
)

func TestFakeConformance(t *testing.T) {
	Run(t, func(t *testing.T) Env { return Env{Net: NewFake()} })
}

func TestFakeStreams(t *testing.T) {
	f := NewFake()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ch := f.ZOSAddresses(ctx)
	if got := <-ch; len(got) != 0 {
		t.Fatalf("first = %v", got)
	}
	cancel()
}
