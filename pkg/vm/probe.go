package vm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"
)

// probeExit is what QEMU exits with when the probe firmware finishes: the
// isa-debug-exit device turns the byte 0x31 into (0x31<<1)|1.
const probeExit = 0x31<<1 | 1

// probeCode is the probe firmware, linked at 0xF0000 (the ISA shadow of the
// last 64 KiB of the BIOS): from the reset vector it enters protected mode,
// builds identity page tables (2 MiB pages), enters long mode, adds to one
// word in each page of 16 MiB, 64 times, then writes 0x31 to port 0xf4.
// Source (GNU as, "as --64; ld -Ttext=0xF0000 --oformat binary"):
//
//	.code16: cli; cld; xor ax,ax; mov ds,ax; lgdtl cs:gdtdesc; cr0 |= 1;
//	         ljmpl 0x08:pm32
//	.code32: ds=es=ss=0x10; zero 12 KiB at 0x10000; PML4[0]=0x11003;
//	         PDPT[0]=0x12003; PD[0..15]=i*2MiB|0x83; cr4 |= PAE;
//	         cr3=0x10000; EFER |= LME; cr0 |= PG; ljmpl 0x18:lm64
//	.code64: for edx=64..1: for rdi=1MiB; rdi<17MiB; rdi+=4096: [rdi]+=rdx
//	         mov al,0x31; out 0xf4,al; hlt
//	gdt: null, code32 0x00CF9A000000FFFF, data 0x00CF92000000FFFF,
//	     code64 0x00AF9A000000FFFF
//	reset (at 0xFFFF0): ljmpw 0xF000:_start
var probeCode = []byte{
	0xfa, 0xfc, 0x31, 0xc0, 0x8e, 0xd8, 0x2e, 0x66, 0x0f, 0x01, 0x16, 0xe8, 0x00, 0x0f, 0x20, 0xc0,
	0x66, 0x83, 0xc8, 0x01, 0x0f, 0x22, 0xc0, 0x66, 0xea, 0x1f, 0x00, 0x0f, 0x00, 0x08, 0x00, 0x66,
	0xb8, 0x10, 0x00, 0x8e, 0xd8, 0x8e, 0xc0, 0x8e, 0xd0, 0xbf, 0x00, 0x00, 0x01, 0x00, 0x31, 0xc0,
	0xb9, 0x00, 0x0c, 0x00, 0x00, 0xf3, 0xab, 0xc7, 0x05, 0x00, 0x00, 0x01, 0x00, 0x03, 0x10, 0x01,
	0x00, 0xc7, 0x05, 0x00, 0x10, 0x01, 0x00, 0x03, 0x20, 0x01, 0x00, 0xbf, 0x00, 0x20, 0x01, 0x00,
	0xb8, 0x83, 0x00, 0x00, 0x00, 0xb9, 0x10, 0x00, 0x00, 0x00, 0x89, 0x07, 0x05, 0x00, 0x00, 0x20,
	0x00, 0x83, 0xc7, 0x08, 0xe2, 0xf4, 0x0f, 0x20, 0xe0, 0x83, 0xc8, 0x20, 0x0f, 0x22, 0xe0, 0xb8,
	0x00, 0x00, 0x01, 0x00, 0x0f, 0x22, 0xd8, 0xb9, 0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32, 0x0d, 0x00,
	0x01, 0x00, 0x00, 0x0f, 0x30, 0x0f, 0x20, 0xc0, 0x0d, 0x00, 0x00, 0x00, 0x80, 0x0f, 0x22, 0xc0,
	0xea, 0x97, 0x00, 0x0f, 0x00, 0x18, 0x00, 0xba, 0x40, 0x00, 0x00, 0x00, 0x48, 0xc7, 0xc7, 0x00,
	0x00, 0x10, 0x00, 0x48, 0x01, 0x17, 0x48, 0x81, 0xc7, 0x00, 0x10, 0x00, 0x00, 0x48, 0x81, 0xff,
	0x00, 0x00, 0x10, 0x01, 0x72, 0xed, 0xff, 0xca, 0x75, 0xe2, 0xb0, 0x31, 0xe6, 0xf4, 0xf4, 0xeb,
	0xfd, 0x8d, 0xb4, 0x00, 0x00, 0x8d, 0x74, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xcf, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x92, 0xcf, 0x00,
	0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xaf, 0x00, 0x1f, 0x00, 0xc8, 0x00, 0x0f,
}

// probeReset is the reset vector (file offset 0xFFF0): ljmpw 0xF000:0.
var probeReset = []byte{0xea, 0x00, 0x00, 0x00, 0xf0}

// probeFirmware returns the 64 KiB probe BIOS image.
func probeFirmware() []byte {
	b := make([]byte, 64<<10)
	copy(b, probeCode)
	copy(b[0xfff0:], probeReset)
	return b
}

// ProbeResult is the outcome of one probe run.
type ProbeResult struct {
	Accel    string
	OK       bool
	Duration time.Duration
	Err      error
}

// probeOnce runs the probe VM under accel and reports whether it finished
// within timeout.
func (q *QEMU) probeOnce(ctx context.Context, accel, firmware string, timeout time.Duration) ProbeResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := []string{"-accel", accel, "-machine", "microvm", "-nodefaults", "-no-user-config",
		"-display", "none", "-m", "64", "-bios", firmware,
		"-device", "isa-debug-exit,iobase=0xf4,iosize=1"}
	if accel == AccelKVM {
		args = append(args, "-cpu", "host")
	}
	cmd := exec.CommandContext(ctx, q.Binary, args...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	r := ProbeResult{Accel: accel, Duration: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee) && ee.ExitCode() == probeExit:
		r.OK = true
	case ctx.Err() != nil:
		r.Err = fmt.Errorf("probe under %s: no exit after %v", accel, timeout)
	case err != nil:
		r.Err = fmt.Errorf("probe under %s: %w: %s", accel, err, tail(out, 512))
	default:
		r.Err = fmt.Errorf("probe under %s: exited 0 before the end", accel)
	}
	return r
}

// Probe implements Hypervisor. It runs a tiny firmware that enters long
// mode and touches 16 MiB of memory, under TCG and (unless want is TCG)
// under KVM. AccelAuto picks KVM only when it finished and was not slower
// than TCG: on nested hosts /dev/kvm often opens but runs guests
// pathologically slowly or not at all.
func (q *QEMU) Probe(ctx context.Context, want string) (string, error) {
	f, err := os.CreateTemp("", "zos-vm-probe-*.bin")
	if err != nil {
		return "", fmt.Errorf("vm probe: %w", err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(probeFirmware())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("vm probe: %w", err)
	}
	timeout := q.cfg.ProbeTimeout
	tcg := q.probeOnce(ctx, AccelTCG, f.Name(), timeout)
	if want == AccelTCG {
		if !tcg.OK {
			return "", fmt.Errorf("vm: %w: %w", tcg.Err, errors.ErrUnsupported)
		}
		return AccelTCG, nil
	}
	kvm := ProbeResult{Accel: AccelKVM, Err: errors.New("/dev/kvm cannot be opened")}
	if fd, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err == nil {
		fd.Close()
		kvm = q.probeOnce(ctx, AccelKVM, f.Name(), timeout)
	}
	if kvm.OK && tcg.OK && kvm.Duration > tcg.Duration {
		kvm.OK, kvm.Err = false, fmt.Errorf("probe under kvm took %v, under tcg %v", kvm.Duration, tcg.Duration)
	}
	q.log.InfoContext(ctx, "vm acceleration probed", "kvm_ok", kvm.OK, "kvm_ms", kvm.Duration.Milliseconds(),
		"kvm_err", errString(kvm.Err), "tcg_ok", tcg.OK, "tcg_ms", tcg.Duration.Milliseconds(), "tcg_err", errString(tcg.Err))
	switch {
	case kvm.OK:
		return AccelKVM, nil
	case want == AccelKVM:
		return "", fmt.Errorf("vm: %w: %w", kvm.Err, errors.ErrUnsupported)
	case tcg.OK:
		return AccelTCG, nil
	default:
		return "", fmt.Errorf("vm: no acceleration works: %w, %w: %w", kvm.Err, tcg.Err, errors.ErrUnsupported)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// tail returns the last n bytes of b as text.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
