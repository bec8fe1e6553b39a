// Command flistfs serves one flist mount over FUSE: lazily fetched, verified
// blocks from a shared cache, with an overlay writable layer when -backend is
// given. The node runs one flistfs per mount as a zinit service; see package
// github.com/zos-go/zos/pkg/flist/flistfs for the flags and the behaviour.
package main

import (
	"os"

	"github.com/zos-go/zos/pkg/flist/flistfs"
)

func main() { os.Exit(flistfs.Main(os.Args[1:])) }
