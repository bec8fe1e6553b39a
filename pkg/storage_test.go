package pkg_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/zos-go/zos/pkg"
)

func TestRaidProfileValidate(t *testing.T) {
	tests := []struct {
		profile pkg.RaidProfile
		ok      bool
	}{
		{pkg.Single, true},
		{pkg.Raid1, true},
		{pkg.Raid10, true},
		{pkg.Raid0, true}, // refused by the original; built by zos
		{"", false},
		{"SINGLE", false},
		{"raid5", false},
		{"raid6", false},
		{" single", false},
	}
	for _, tt := range tests {
		t.Run(string(tt.profile), func(t *testing.T) {
			err := tt.profile.Validate()
			if tt.ok {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, errors.ErrUnsupported) {
				t.Fatalf("Validate() = %v, want an error wrapping errors.ErrUnsupported", err)
			}
		})
	}
}

func TestRaidProfileValues(t *testing.T) {
	for p, want := range map[pkg.RaidProfile]string{
		pkg.Single: "single", pkg.Raid0: "raid0", pkg.Raid1: "raid1", pkg.Raid10: "raid10",
	} {
		if string(p) != want {
			t.Errorf("profile %q, want %q", p, want)
		}
	}
	if pkg.SSDDevice != "ssd" || pkg.HDDDevice != "hdd" {
		t.Errorf("device types = %q, %q; want ssd, hdd", pkg.SSDDevice, pkg.HDDDevice)
	}
}

func TestStorageErrors(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{pkg.ErrNotEnoughSpace{DeviceType: pkg.SSDDevice}, "Not enough space left in pools of this type ssd"},
		{pkg.ErrNotEnoughSpace{DeviceType: pkg.HDDDevice}, "Not enough space left in pools of this type hdd"},
		{pkg.ErrInvalidDeviceType{DeviceType: "nvme"}, "invalid device type 'nvme'. type unknown"},
		{pkg.ErrInvalidDeviceType{}, "invalid device type ''. type unknown"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestStorageErrorsMatchAfterWrapping(t *testing.T) {
	err := fmt.Errorf("filesystem %q: %w", "vol1", pkg.ErrNotEnoughSpace{DeviceType: pkg.HDDDevice})
	e, ok := errors.AsType[pkg.ErrNotEnoughSpace](err)
	if !ok || e.DeviceType != pkg.HDDDevice {
		t.Fatalf("AsType[ErrNotEnoughSpace](%v) = %+v, %v", err, e, ok)
	}
	if _, ok := errors.AsType[pkg.ErrInvalidDeviceType](err); ok {
		t.Error("ErrNotEnoughSpace matched as ErrInvalidDeviceType")
	}
	err = fmt.Errorf("zdb allocate: %w", pkg.ErrInvalidDeviceType{DeviceType: "tape"})
	if e, ok := errors.AsType[pkg.ErrInvalidDeviceType](err); !ok || e.DeviceType != "tape" {
		t.Fatalf("AsType[ErrInvalidDeviceType](%v) = %+v, %v", err, e, ok)
	}
	// the seed's error structs are comparable values, so errors.Is works too
	if !errors.Is(err, pkg.ErrInvalidDeviceType{DeviceType: "tape"}) {
		t.Error("errors.Is does not match an equal ErrInvalidDeviceType")
	}
}

func TestPolicies(t *testing.T) {
	if pkg.DefaultPolicy != (pkg.StoragePolicy{Raid: pkg.Single, Disks: 0, MaxPools: 0}) {
		t.Errorf("DefaultPolicy = %+v", pkg.DefaultPolicy)
	}
	if err := pkg.DefaultPolicy.Raid.Validate(); err != nil {
		t.Errorf("DefaultPolicy raid invalid: %v", err)
	}
	if pkg.NullPolicy != (pkg.StoragePolicy{}) {
		t.Errorf("NullPolicy = %+v, want zero", pkg.NullPolicy)
	}
	// NullPolicy "creates no pools": its raid profile is not buildable
	if err := pkg.NullPolicy.Raid.Validate(); err == nil {
		t.Error("NullPolicy has a valid raid profile")
	}
}

func TestMountOptions(t *testing.T) {
	want := pkg.MountOptions{ReadOnly: false, Limit: 256, Type: pkg.SSDDevice}
	if pkg.DefaultMountOptions != want {
		t.Errorf("DefaultMountOptions = %+v, want %+v", pkg.DefaultMountOptions, want)
	}
	if pkg.ReadOnlyMountOptions != (pkg.MountOptions{ReadOnly: true}) {
		t.Errorf("ReadOnlyMountOptions = %+v", pkg.ReadOnlyMountOptions)
	}
}

func TestZDBModes(t *testing.T) {
	modes := []pkg.ZDBMode{pkg.ZDBModeUser, pkg.ZDBModeSeq}
	if modes[0] != "user" || modes[1] != "seq" {
		t.Errorf("modes = %q", modes)
	}
}
