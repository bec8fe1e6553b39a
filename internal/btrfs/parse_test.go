package btrfs

import (
	"encoding/binary"
	"testing"
)

func searchItem(obj uint64, typ uint32, off uint64, data []byte) []byte {
	b := make([]byte, 32, 32+len(data))
	binary.LittleEndian.PutUint64(b[8:], obj)
	binary.LittleEndian.PutUint64(b[16:], off)
	binary.LittleEndian.PutUint32(b[24:], typ)
	binary.LittleEndian.PutUint32(b[28:], uint32(len(data)))
	return append(b, data...)
}

func rootRef(dirid uint64, name string) []byte {
	b := make([]byte, 18, 18+len(name))
	binary.LittleEndian.PutUint64(b, dirid)
	binary.LittleEndian.PutUint16(b[16:], uint16(len(name)))
	return append(b, name...)
}

func TestParseRootRefs(t *testing.T) {
	buf := append(searchItem(5, rootRefKey, 257, rootRef(256, "vol")), searchItem(5, rootRefKey, 258, rootRef(300, "snap"))...)
	items, err := parseSearch(buf, 2)
	if err != nil || len(items) != 2 {
		t.Fatalf("%v %v", items, err)
	}
	s0, _ := parseRootRef(items[0])
	s1, _ := parseRootRef(items[1])
	if s0 != (Subvolume{ID: 257, ParentID: 5, DirID: 256, Name: "vol"}) || !s0.TopLevel() || s1.TopLevel() || s1.Name != "snap" {
		t.Fatalf("%+v %+v", s0, s1)
	}
	if _, err := parseSearch(buf[:40], 2); err == nil {
		t.Fatal("truncated buffer parsed")
	}
}

func TestParseQuota(t *testing.T) {
	status := make([]byte, 40)
	binary.LittleEndian.PutUint64(status[16:], qgroupStatusOn|qgroupStatusSimp)
	info := make([]byte, 40)
	binary.LittleEndian.PutUint64(info[8:], 1000)
	binary.LittleEndian.PutUint64(info[24:], 900)
	limit := make([]byte, 40)
	binary.LittleEndian.PutUint64(limit, qgroupLimitMaxRfer)
	binary.LittleEndian.PutUint64(limit[8:], 4096)
	items := []item{{typ: qgroupStatusKey, data: status}, {typ: qgroupInfoKey, offset: 257, data: info},
		{typ: qgroupLimitKey, offset: 257, data: limit}}
	st, groups, err := parseQuota(items)
	if err != nil || !st.Enabled || !st.Simple || st.Inconsistent {
		t.Fatalf("%+v %v", st, err)
	}
	if g := groups[257]; g == nil || *g != (Qgroup{ID: 257, ReferencedBytes: 1000, ExclusiveBytes: 900, MaxReferencedBytes: 4096}) {
		t.Fatalf("%+v", groups)
	}
	if QgroupString(1<<48|7) != "1/7" {
		t.Fatal(QgroupString(1<<48 | 7))
	}
}

func FuzzParseSearch(f *testing.F) {
	f.Add(searchItem(5, rootRefKey, 257, rootRef(256, "vol")), uint32(1))
	f.Add(searchItem(0, qgroupInfoKey, 257, make([]byte, 40)), uint32(1))
	f.Add([]byte{1, 2, 3}, uint32(3))
	f.Fuzz(func(t *testing.T, buf []byte, n uint32) {
		items, err := parseSearch(buf, n%64)
		if err != nil {
			return
		}
		for _, it := range items {
			if s, err := parseRootRef(it); err == nil && len(s.Name) > len(it.data) {
				t.Fatal("name longer than item")
			}
		}
		_, _, _ = parseQuota(items)
	})
}

func FuzzParseSuperblock(f *testing.F) {
	sb := make([]byte, 4096)
	copy(sb[64:], superMagic)
	copy(sb[299:], "label")
	f.Add(sb)
	f.Add([]byte("_BHRfS_M"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSuperblock(b)
		if err == nil && len(s.Label) > 256 {
			t.Fatal("label over 256 bytes")
		}
	})
}
