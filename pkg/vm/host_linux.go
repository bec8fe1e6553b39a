package vm

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/zos-go/zos/internal/netns"
)

// hostTapExists reports whether a tap named name exists in the named
// network namespace ns ("" = the current one).
func hostTapExists(ns, name string) (bool, error) {
	var found bool
	check := func() error {
		l, err := netlink.LinkByName(name)
		if errors.As(err, new(netlink.LinkNotFoundError)) {
			return nil
		}
		if err != nil {
			return err
		}
		if l.Type() != "tuntap" {
			return fmt.Errorf("%s is a %s, not a tap: %w", name, l.Type(), ErrInvalidVM)
		}
		found = true
		return nil
	}
	if ns == "" {
		return found, check()
	}
	if !netns.Exists(ns) {
		return false, fmt.Errorf("network namespace %s: %w", ns, netns.ErrNotExist)
	}
	return found, netns.Do(netns.Path(ns), check)
}

// hostMemoryMiB returns the host's total memory.
func hostMemoryMiB() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("meminfo: %w", err)
		}
		return kb >> 10, nil
	}
	return 0, errors.New("meminfo: no MemTotal")
}
