package btrfs

import (
	"cmp"
	"errors"
	"math"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"
)

// treeSearch returns every item of tree whose key lies between
// (minObj, minType, 0) and (maxObj, maxType, max) and whose type is in
// [minType, maxType].
func treeSearch(fd int, tree, minObj, maxObj uint64, minType, maxType uint32) ([]item, error) {
	var args searchArgs
	args.key = searchKey{treeID: tree, minObjectID: minObj, maxObjectID: maxObj,
		maxOffset: math.MaxUint64, maxTransid: math.MaxUint64, minType: minType, maxType: maxType}
	var out []item
	for {
		args.key.nrItems = 4096
		if err := ioctl(fd, iocTreeSearch, unsafe.Pointer(&args)); err != nil {
			return nil, err
		}
		n := args.key.nrItems
		if n == 0 {
			return out, nil
		}
		items, err := parseSearch(args.buf[:], n)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if it.typ >= minType && it.typ <= maxType {
				it.data = slices.Clone(it.data)
				out = append(out, it)
			}
		}
		last := items[len(items)-1]
		// continue right after the last key
		obj, typ, off := last.objectID, last.typ, last.offset
		switch {
		case off < math.MaxUint64:
			off++
		case typ < math.MaxUint8:
			typ, off = typ+1, 0
		case obj < math.MaxUint64:
			obj, typ, off = obj+1, 0, 0
		default:
			return out, nil
		}
		if obj > maxObj {
			return out, nil
		}
		args.key.minObjectID, args.key.minType, args.key.minOffset = obj, typ, off
		if typ > maxType {
			if obj == math.MaxUint64 || obj+1 > maxObj {
				return out, nil
			}
			args.key.minObjectID, args.key.minType, args.key.minOffset = obj+1, minType, 0
		}
	}
}

// ListSubvolumes lists every subvolume of the filesystem mounted at mnt
// (not only the top-level ones), ordered by id.
func ListSubvolumes(mnt string) ([]Subvolume, error) {
	var out []Subvolume
	err := withDir(mnt, func(fd int) error {
		items, err := treeSearch(fd, rootTreeID, TopLevelID, math.MaxUint64, rootRefKey, rootRefKey)
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
		items, err := treeSearch(fd, quotaTreeID, 0, 0, qgroupStatusKey, qgroupLimitKey)
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
