package btrfs

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Tree ids, item types and qgroup status flags of the on-disk format.
const (
	rootTreeID  = 1
	quotaTreeID = 8
	// TopLevelID is the id of a filesystem's top-level subvolume.
	TopLevelID = 5

	rootRefKey       = 156
	qgroupStatusKey  = 240
	qgroupInfoKey    = 242
	qgroupLimitKey   = 244
	qgroupStatusOn   = 1 << 0
	qgroupStatusScan = 1 << 1
	qgroupStatusInc  = 1 << 2
	qgroupStatusSimp = 1 << 3
)

// item is one result of a tree search.
type item struct {
	objectID uint64
	offset   uint64
	typ      uint32
	data     []byte
}

// errBadSearch is returned for a tree-search buffer that does not parse.
var errBadSearch = errors.New("malformed tree search result")

// parseSearch splits a BTRFS_IOC_TREE_SEARCH result buffer of n items.
func parseSearch(buf []byte, n uint32) ([]item, error) {
	out := make([]item, 0, n)
	for i := uint32(0); i < n; i++ {
		if len(buf) < 32 {
			return out, fmt.Errorf("item %d header: %w", i, errBadSearch)
		}
		it := item{
			objectID: binary.LittleEndian.Uint64(buf[8:16]),
			offset:   binary.LittleEndian.Uint64(buf[16:24]),
			typ:      binary.LittleEndian.Uint32(buf[24:28]),
		}
		l := binary.LittleEndian.Uint32(buf[28:32])
		buf = buf[32:]
		if uint64(len(buf)) < uint64(l) {
			return out, fmt.Errorf("item %d of %d bytes: %w", i, l, errBadSearch)
		}
		it.data = buf[:l]
		buf = buf[l:]
		out = append(out, it)
	}
	return out, nil
}

// Subvolume is a subvolume as listed by ListSubvolumes.
type Subvolume struct {
	// ID is the subvolume (tree) id; its level-0 qgroup has the same id.
	ID uint64
	// ParentID is the id of the subvolume that holds it.
	ParentID uint64
	// DirID is the inode, in the parent, of the directory holding it
	// (256 for the parent's root directory).
	DirID uint64
	// Name is its name in that directory.
	Name string
}

// TopLevel reports whether the subvolume sits in the root directory of the
// top-level subvolume (<mnt>/<name>).
func (s Subvolume) TopLevel() bool { return s.ParentID == TopLevelID && s.DirID == firstFreeObjectID }

// parseRootRef decodes a ROOT_REF item: key (parent, 156, child), data
// {dirid u64, sequence u64, name_len u16, name}.
func parseRootRef(it item) (Subvolume, error) {
	if len(it.data) < 18 {
		return Subvolume{}, fmt.Errorf("root ref of %d bytes: %w", len(it.data), errBadSearch)
	}
	n := int(binary.LittleEndian.Uint16(it.data[16:18]))
	if len(it.data) < 18+n {
		return Subvolume{}, fmt.Errorf("root ref name of %d bytes: %w", n, errBadSearch)
	}
	return Subvolume{ID: it.offset, ParentID: it.objectID,
		DirID: binary.LittleEndian.Uint64(it.data[0:8]), Name: string(it.data[18 : 18+n])}, nil
}

// Qgroup is the accounting of one qgroup.
type Qgroup struct {
	// ID is the qgroup id (level << 48 | id); level-0 ids are subvolume ids.
	ID uint64
	// ReferencedBytes and ExclusiveBytes are as of the last commit.
	ReferencedBytes uint64
	ExclusiveBytes  uint64
	// MaxReferencedBytes is the limit; 0 when there is none.
	MaxReferencedBytes uint64
}

// QgroupString formats a qgroup id as level/id ("0/257").
func QgroupString(id uint64) string { return fmt.Sprintf("%d/%d", id>>48, id&(1<<48-1)) }

// QuotaStatus tells whether and how quotas are enabled.
type QuotaStatus struct {
	Enabled bool
	// Simple is set for simple quotas (owner-based accounting).
	Simple bool
	// Inconsistent is set when classic qgroup numbers need a rescan.
	Inconsistent bool
}

// parseQuota folds quota-tree items into the status and qgroups.
func parseQuota(items []item) (QuotaStatus, map[uint64]*Qgroup, error) {
	var st QuotaStatus
	groups := map[uint64]*Qgroup{}
	get := func(id uint64) *Qgroup {
		g := groups[id]
		if g == nil {
			g = &Qgroup{ID: id}
			groups[id] = g
		}
		return g
	}
	for _, it := range items {
		switch it.typ {
		case qgroupStatusKey:
			if len(it.data) < 24 {
				return st, nil, fmt.Errorf("qgroup status of %d bytes: %w", len(it.data), errBadSearch)
			}
			flags := binary.LittleEndian.Uint64(it.data[16:24])
			st.Enabled = flags&qgroupStatusOn != 0
			st.Simple = flags&qgroupStatusSimp != 0
			st.Inconsistent = flags&qgroupStatusInc != 0
		case qgroupInfoKey:
			if len(it.data) < 40 {
				return st, nil, fmt.Errorf("qgroup info of %d bytes: %w", len(it.data), errBadSearch)
			}
			g := get(it.offset)
			g.ReferencedBytes = binary.LittleEndian.Uint64(it.data[8:16])
			g.ExclusiveBytes = binary.LittleEndian.Uint64(it.data[24:32])
		case qgroupLimitKey:
			if len(it.data) < 40 {
				return st, nil, fmt.Errorf("qgroup limit of %d bytes: %w", len(it.data), errBadSearch)
			}
			g := get(it.offset)
			if binary.LittleEndian.Uint64(it.data[0:8])&qgroupLimitMaxRfer != 0 {
				g.MaxReferencedBytes = binary.LittleEndian.Uint64(it.data[8:16])
			}
		}
	}
	return st, groups, nil
}
