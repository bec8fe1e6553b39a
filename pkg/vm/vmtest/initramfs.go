package vmtest

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// GuestInit is the /init of the test guest (busybox sh). It loads the
// virtio modules, configures the network from the kernel command line
// (old style "ip=" or new style "net_eth<i>="/"net_dns=", spec §2.3),
// reports what it sees on the serial console (lines starting with
// "ZOSVM "), serves HTTP on port 80 and prints Marker.
const GuestInit = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /sbin /usr/bin /usr/sbin /www /etc
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
for m in @MODULES@; do
	[ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko 2>/dev/null
done
say() { echo "ZOSVM $*" > /dev/console; }
say cmdline $(cat /proc/cmdline)
say cpus=$(grep -c ^processor /proc/cpuinfo) mem_kb=$(awk '/^MemTotal/{print $2}' /proc/meminfo)
for b in /sys/block/vd*; do
	[ -e "$b" ] || continue
	d=$(basename $b)
	say disk $d sectors=$(cat $b/size) ro=$(cat $b/ro) head=$(head -c 32 /dev/$d | tr -cd 'A-Za-z0-9_.:-')
done
mask2cidr() {
	n=0
	for o in $(echo $1 | tr . ' '); do
		while [ $o -gt 0 ]; do n=$((n + (o & 1))); o=$((o >> 1)); done
	done
	echo $n
}
ip link set lo up
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	ip=*)
		old=$IFS; IFS=:; set -- ${arg#ip=}; IFS=$old
		addr=$1; gw=$3; mask=$4; dns0=$8; dns1=$9
		ip link set eth0 up
		ip addr add $addr/$(mask2cidr $mask) dev eth0
		[ -n "$gw" ] && ip route add default via $gw
		for d in $dns0 $dns1; do echo "nameserver $d" >> /etc/resolv.conf; done
		say net eth0 ip4=$addr/$(mask2cidr $mask) gw4=$gw
		;;
	net_eth*=*)
		dev=${arg%%=*}; dev=${dev#net_}
		old=$IFS; IFS=,; set -- ${arg#*=}; IFS=$old
		ip link set $dev up
		[ -n "$1" ] && ip addr add $1 dev $dev
		[ -n "$2" ] && ip route add default via $2 dev $dev 2>/dev/null
		say net $dev ip4=$1 gw4=$2 rest=$3,$4,$5,$6
		;;
	net_dns=*)
		for d in $(echo ${arg#net_dns=} | tr , ' '); do echo "nameserver $d" >> /etc/resolv.conf; done
		;;
	esac
done
for i in /sys/class/net/eth*; do
	[ -e "$i" ] || continue
	n=$(basename $i)
	say iface $n mac=$(cat $i/address) addrs=$(ip -o -4 addr show dev $n | awk '{print $4}' | tr '\n' ' ')
done
say dns $(awk '{print $2}' /etc/resolv.conf 2>/dev/null | tr '\n' ' ')
echo "hello from the zos test guest" > /www/index.html
httpd -p 80 -h /www
echo "@MARKER@" > /dev/console
while true; do sleep 3600; done
`

// Initramfs writes a gzip-compressed initramfs to dir/initrd.gz with a
// static busybox (from busybox-static), the virtio modules of k and
// GuestInit, and returns its path.
func Initramfs(t testing.TB, k GuestKernel, dir string) string {
	t.Helper()
	b, err := BuildInitramfs(k)
	if err != nil {
		t.Fatalf("initramfs: %v", err)
	}
	out := filepath.Join(dir, "initrd.gz")
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatalf("initramfs: %v", err)
	}
	return out
}

// BuildInitramfs returns the gzip-compressed test initramfs for k.
func BuildInitramfs(k GuestKernel) ([]byte, error) {
	bb, err := staticBusybox()
	if err != nil {
		return nil, err
	}
	var w cpioWriter
	for _, d := range []string{"bin", "dev", "proc", "sys", "lib", "lib/modules", "tmp"} {
		w.dir(d)
	}
	w.node("dev/console", 0o020600, 5, 1)
	w.file("bin/busybox", 0o755, bb)
	init := strings.NewReplacer("@MODULES@", strings.Join(guestModules, " "), "@MARKER@", Marker).Replace(GuestInit)
	w.file("init", 0o755, []byte(init))
	paths := map[string]string{}
	err = filepath.WalkDir(filepath.Join(k.Modules, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name, ok := strings.CutSuffix(d.Name(), ".ko"); ok {
			paths[name] = p
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, m := range guestModules {
		p, ok := paths[m]
		if !ok {
			continue // built in
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		w.file("lib/modules/"+m+".ko", 0o644, b)
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if _, err := zw.Write(w.finish()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return gz.Bytes(), nil
}

// staticBusybox returns the bytes of a statically linked busybox.
func staticBusybox() ([]byte, error) {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		static := true
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				static = false
			}
		}
		f.Close()
		if static {
			return os.ReadFile(p)
		}
	}
	return nil, errors.New("no static busybox (install busybox-static)")
}

// cpioWriter builds a "newc" cpio archive in memory.
type cpioWriter struct {
	buf bytes.Buffer
	ino int
}

func (w *cpioWriter) header(name string, mode uint32, size int, major, minor uint32) {
	w.ino++
	nlink := 1
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	fmt.Fprintf(&w.buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		w.ino, mode, 0, 0, nlink, 0, size, 0, 0, major, minor, len(name)+1, 0)
	w.buf.WriteString(name)
	w.buf.WriteByte(0)
	w.pad()
}

func (w *cpioWriter) pad() {
	for w.buf.Len()%4 != 0 {
		w.buf.WriteByte(0)
	}
}

func (w *cpioWriter) dir(name string) { w.header(name, 0o040755, 0, 0, 0) }

func (w *cpioWriter) node(name string, mode, major, minor uint32) {
	w.header(name, mode, 0, major, minor)
}

func (w *cpioWriter) file(name string, perm uint32, data []byte) {
	w.header(name, 0o100000|perm, len(data), 0, 0)
	w.buf.Write(data)
	w.pad()
}

func (w *cpioWriter) finish() []byte {
	w.header("TRAILER!!!", 0, 0, 0, 0)
	return w.buf.Bytes()
}
