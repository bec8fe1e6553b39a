package vm

import (
	"context"

	"github.com/zos-go/zos/pkg"
)

// Manager is what the module offers: the seed's VMModule plus the state of
// each VM. Module and vmtest.Fake implement it.
type Manager interface {
	pkg.VMModule
	// Status returns the state of one VM; ErrNotFound when unknown.
	Status(ctx context.Context, name string) (Status, error)
	// List returns the state of every VM, by name.
	List(ctx context.Context) ([]Status, error)
}
