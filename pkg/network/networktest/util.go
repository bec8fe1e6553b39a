package networktest

import "github.com/zos-go/zos/pkg/types"

type typesIPNet = types.IPNet

func mustIPNet(s string) types.IPNet { return types.MustParseIPNet(s) }
