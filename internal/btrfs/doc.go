// Package btrfs is the node's door to btrfs: subvolume create (with its
// quota limit in the same transaction), snapshot, delete and list, quota
// control (simple quotas or classic qgroups), qgroup create, limit, destroy
// and usage, filesystem and device info, all through the kernel's ioctls
// (include/uapi/linux/btrfs.h), plus reading a device's superblock. Only
// mkfs runs the btrfs-progs binary.
//
// github.com/dennwc/btrfs was considered for the subvolume part and not
// used: it flattens errno into strings (callers cannot tell EEXIST from
// EBUSY), does not return ids, cannot pass a qgroup limit at creation and
// has no qgroup API, so we would have needed our own ioctls anyway.
package btrfs
