package storagetest

import (
	"testing"

	"github.com/zos-go/zos/pkg/storage"
)

func TestFakeConformance(t *testing.T) {
	Run(t, func(t *testing.T) storage.Storage {
		f := NewFake(t.TempDir(), 1<<30)
		f.MonitorInterval = 5e6
		return f
	})
}
