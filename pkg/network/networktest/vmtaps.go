package networktest

import (
	"errors"
	"strings"
	"testing"

	"github.com/zos-go/zos/pkg"
	"github.com/zos-go/zos/pkg/network"
)

// testVMTaps checks network.VMTaps (skipped for a Networker without it):
// one tap per VM, derived names, bad input refused with nothing made,
// idempotent setup, removal one by one and by DeleteNR.
func testVMTaps(t *testing.T, e Env) {
	v, ok := e.Net.(network.VMTaps)
	if !ok {
		t.Skipf("%T does not implement network.VMTaps", e.Net)
	}
	n := e.Net
	nr := NR("VMT0netid0001", "vmtap", "10.9.0.0/16", "10.9.3.0/24", 41005, NewKey(), e.Encrypt)
	if _, err := v.SetupVMTap(nr.NetID, "100-1"); !errors.Is(err, network.ErrUnknownNetwork) {
		t.Errorf("SetupVMTap on an unknown network: %v; want ErrUnknownNetwork", err)
	}
	if _, err := n.CreateNR(nr); err != nil {
		t.Fatalf("CreateNR: %v", err)
	}
	t.Cleanup(func() { _ = n.DeleteNR(nr) })

	for _, bad := range []struct {
		id  pkg.NetID
		vm  string
		err error
	}{
		{nr.NetID, "", network.ErrInvalidName},
		{nr.NetID, "a/b", network.ErrInvalidName},
		{nr.NetID, "vm 1", network.ErrInvalidName},
		{nr.NetID, "-vm", network.ErrInvalidName},
		{nr.NetID, ".vm", network.ErrInvalidName},
		{nr.NetID, strings.Repeat("v", 65), network.ErrNameTooLong},
		{"", "100-1", network.ErrInvalidName},
		{"bad/id", "100-1", network.ErrInvalidName},
		{"ABCDEFGHIJKLMN", "100-1", network.ErrNameTooLong},
	} {
		if _, err := v.SetupVMTap(bad.id, bad.vm); !errors.Is(err, bad.err) {
			t.Errorf("SetupVMTap(%q, %q): %v; want %v", bad.id, bad.vm, err, bad.err)
		}
		if _, err := v.VMTapExists(bad.id, bad.vm); !errors.Is(err, bad.err) {
			t.Errorf("VMTapExists(%q, %q): %v; want %v", bad.id, bad.vm, err, bad.err)
		}
		if err := v.RemoveVMTap(bad.id, bad.vm); !errors.Is(err, bad.err) {
			t.Errorf("RemoveVMTap(%q, %q): %v; want %v", bad.id, bad.vm, err, bad.err)
		}
	}

	vms := []string{"100-1", "101-1", "k8s_master.1-b", strings.Repeat("v", 64)}
	names := map[string]bool{}
	for _, vm := range vms {
		name, err := v.SetupVMTap(nr.NetID, vm)
		if err != nil {
			t.Fatalf("SetupVMTap(%s): %v", vm, err)
		}
		if name != network.VMTapName(nr.NetID, vm) || len(name) > 15 || names[name] {
			t.Errorf("SetupVMTap(%s) = %q; want VMTapName %q, unique, at most 15 characters", vm, name, network.VMTapName(nr.NetID, vm))
		}
		names[name] = true
		if again, err := v.SetupVMTap(nr.NetID, vm); err != nil || again != name {
			t.Errorf("second SetupVMTap(%s) = %q, %v; want %q", vm, again, err, name)
		}
		if ok, err := v.VMTapExists(nr.NetID, vm); !ok || err != nil {
			t.Errorf("VMTapExists(%s) = %v, %v", vm, ok, err)
		}
	}
	// The seed's tap of the network lives beside the VMs' taps.
	if tap, err := n.SetupTap(nr.NetID); err != nil || tap != "t-"+string(nr.NetID) {
		t.Errorf("SetupTap beside VM taps = %q, %v", tap, err)
	}
	if ok, err := v.VMTapExists(nr.NetID, "102-1"); ok || err != nil {
		t.Errorf("VMTapExists of a VM without a tap = %v, %v", ok, err)
	}
	if err := v.RemoveVMTap(nr.NetID, vms[0]); err != nil {
		t.Errorf("RemoveVMTap: %v", err)
	}
	if ok, _ := v.VMTapExists(nr.NetID, vms[0]); ok {
		t.Errorf("tap of %s exists after RemoveVMTap", vms[0])
	}
	if ok, _ := v.VMTapExists(nr.NetID, vms[1]); !ok {
		t.Errorf("RemoveVMTap(%s) removed the tap of %s", vms[0], vms[1])
	}
	if err := v.RemoveVMTap(nr.NetID, vms[0]); err != nil {
		t.Errorf("second RemoveVMTap: %v", err)
	}
	if err := n.DeleteNR(nr); err != nil {
		t.Fatalf("DeleteNR: %v", err)
	}
	for _, vm := range vms[1:] {
		if ok, err := v.VMTapExists(nr.NetID, vm); ok || err != nil {
			t.Errorf("VMTapExists(%s) after DeleteNR = %v, %v", vm, ok, err)
		}
	}
	if ok, _ := n.TapExists(nr.NetID); ok {
		t.Errorf("seed tap exists after DeleteNR")
	}
}
