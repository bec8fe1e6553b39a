package container_test

import (
	"testing"

	"github.com/zos-go/zos/pkg/flist/flistfs/flistfstest"
)

// flistfsBin runs the flist code as flistfs for the tests' root filesystems
// (see flistfstest.Main).
var flistfsBin string

func TestMain(m *testing.M) { flistfstest.Main(m, &flistfsBin) }
