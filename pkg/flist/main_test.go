package flist

import (
	"testing"

	"github.com/zos-go/zos/pkg/flist/flistfs/flistfstest"
)

// flistfsBin runs the code under test as flistfs (see flistfstest.Main).
var flistfsBin string

func TestMain(m *testing.M) { flistfstest.Main(m, &flistfsBin) }
