package pkg_test

import (
	"testing"

	"github.com/zos-go/zos/pkg"
)

func TestStrIdentifierIdentity(t *testing.T) {
	for _, s := range []string{"", "3Xy6Pj1yM2SuzbmEnrA9C2NdMKxx7GAZLTjZkT8d3g5j", "with space", "ünïcødé"} {
		var id pkg.Identifier = pkg.StrIdentifier(s)
		if got := id.Identity(); got != s {
			t.Errorf("Identity() = %q, want %q", got, s)
		}
	}
}
