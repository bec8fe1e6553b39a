package btrfs

import (
	"cmp"
	"errors"
	"math"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"
)

// key is a btrfs key; keys sort by (objectID, typ, offset).
type key struct {
	obj uint64
	typ uint32
	off uint64
}

// next returns the key right after k, false if k is the last key.
func (k key) next() (key, bool) {
	switch {
	case k.off < math.MaxUint64:
		k.off++
	case k.typ < math.MaxUint8:
		k.typ, k.off = k.typ+1, 0
	case k.obj < math.MaxUint64:
		k.obj, k.typ, k.off = k.obj+1, 0, 0
	default:
		return k, false
	}
	return k, true
}

func (k key) after(o key) bool {
	if k.obj != o.obj {
		return k.obj > o.obj
	}
	if k.typ != o.typ {
		return k.typ > o.typ
	}
	return k.off > o.off
}

// treeSearch returns every item of tree whose key lies between min and max
// (in key order) and whose type is in [min.typ, max.typ].
func treeSearch(fd int, tree uint64, min, max key) ([]item, error) {
	var args searchArgs
	var out []item
	cur := min
	for !cur.after(max) {
		args.key = searchKey{treeID: tree, minObjectID: cur.obj, maxObjectID: max.obj,
			minType: cur.typ, maxType: max.typ, minOffset: cur.off, maxOffset: max.off,
			maxTransid: math.MaxUint64, nrItems: 4096}
		if err := ioctl(fd, iocTreeSearch, unsafe.Pointer(&args)); err != nil {
			return nil, err
		}
		n := args.key.nrItems
		if n == 0 {
			break
		}
		items, err := parseSearch(args.buf[:], n)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if it.typ >= min.typ && it.typ <= max.typ {
				it.data = slices.Clone(it.data)
				out = append(out, it)
			}
		}
		last := items[len(items)-1]
		var ok bool
		if cur, ok = (key{last.objectID, last.typ, last.offset}).next(); !ok {
			break
		}
	}
	return out, nil
}

// ListSubvolumes lists every subvolume of the filesystem mounted at mnt
// (not only the top-level ones), ordered by id.
func ListSubvolumes(mnt string) ([]Subvolume, error) {
	var out []Subvolume
	err := withDir(mnt, func(fd int) error {
		items, err := treeSearch(fd, rootTreeID, key{TopLevelID, rootRefKey, 0}, key{math.MaxUint64, rootRefKey, math.MaxUint64})
		if err != nil {
			return err
		}
		for _, it := range items {
			s, err := parseRootRef(it)
			if err != nil {
				return err
			}
			out = append(out, s)
		}
		return nil
	})
	slices.SortFunc(out, func(a, b Subvolume) int { return cmp.Compare(a.ID, b.ID) })
	return out, opErr("subvolume list", mnt, err)
}

// Quota returns the quota status and qgroups of the filesystem mounted at
// mnt. With quotas disabled it returns a zero status and no qgroups.
func Quota(mnt string) (QuotaStatus, map[uint64]*Qgroup, error) {
	var (
		st     QuotaStatus
		groups map[uint64]*Qgroup
	)
	err := withDir(mnt, func(fd int) error {
		items, err := treeSearch(fd, quotaTreeID, key{0, qgroupStatusKey, 0}, key{0, qgroupLimitKey, math.MaxUint64})
		if errors.Is(err, unix.ENOENT) {
			groups = map[uint64]*Qgroup{}
			return nil
		}
		if err != nil {
			return err
		}
		st, groups, err = parseQuota(items)
		return err
	})
	return st, groups, opErr("qgroup show", mnt, err)
}

// QgroupOf returns the accounting of one qgroup; ENOENT (os.ErrNotExist)
// when it does not exist.
func QgroupOf(mnt string, id uint64) (Qgroup, error) {
	var g Qgroup
	err := withDir(mnt, func(fd int) error {
		info, err := treeSearch(fd, quotaTreeID, key{0, qgroupInfoKey, id}, key{0, qgroupInfoKey, id})
		if err != nil {
			return err
		}
		if len(info) == 0 {
			return unix.ENOENT
		}
		limit, err := treeSearch(fd, quotaTreeID, key{0, qgroupLimitKey, id}, key{0, qgroupLimitKey, id})
		if err != nil {
			return err
		}
		_, groups, err := parseQuota(append(info, limit...))
		if err != nil {
			return err
		}
		if groups[id] == nil {
			return unix.ENOENT
		}
		g = *groups[id]
		return nil
	})
	return g, opErr("qgroup show "+QgroupString(id), mnt, err)
}
