package network_test

import (
	"errors"
	"testing"

	"github.com/zos-go/zos/internal/testutil"
	"github.com/zos-go/zos/pkg/network"
	"github.com/zos-go/zos/pkg/network/networktest"
)

// TestModuleConformance runs the suite the Fake passes against a real node
// (its own host namespace, real namespaces, links, nftables and userspace
// WireGuard processes).
func TestModuleConformance(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t, "ip", "nft")
	networktest.Run(t, func(t *testing.T) networktest.Env {
		nd := newGrid(t, 1).nodes[0]
		nd.start()
		t.Cleanup(func() {
			// Nothing of a refused or deleted resource may remain.
			if l := nsList(t, nd.cfg.NamePrefix+"n-"); len(l) != 0 {
				t.Errorf("namespaces left: %v", l)
			}
		})
		return networktest.Env{Net: nd.mod}
	})
}

// TestBadInputCreatesNothing checks, on a real node, that every refused
// resource leaves no namespace, bridge, process or file.
func TestBadInputCreatesNothing(t *testing.T) {
	testutil.CheckLeaks(t)
	testutil.RequireRoot(t, "ip", "nft")
	nd := newGrid(t, 1).nodes[0]
	nd.start()
	for _, tc := range networktest.BadNRs(nil) {
		if _, err := nd.mod.CreateNR(tc.NR); !errors.Is(err, tc.Err) {
			t.Errorf("%s: %v; want %v", tc.Name, err, tc.Err)
		}
	}
	if l := nsList(t, nd.cfg.NamePrefix+"n-"); len(l) != 0 {
		t.Errorf("namespaces made: %v", l)
	}
	if ok, _ := linkExists(nd.hostNS, "b-BAD0netid0001"); ok {
		t.Errorf("bridge made")
	}
	if svcs, _ := nd.sup.List(t.Context(), ""); len(svcs) != 0 {
		t.Errorf("processes started: %v", svcs)
	}
	// Undecryptable private key: valid hex, but not a key once decrypted.
	nr := networktest.NR("BADkey000001", "bad", "10.5.0.0/16", "10.5.1.0/24", 41001, networktest.NewKey(), nil)
	nr.WGPrivateKey = "00112233"
	if _, err := nd.mod.CreateNR(nr); !errors.Is(err, network.ErrInvalidKey) {
		t.Errorf("undecryptable key: %v", err)
	}
}
