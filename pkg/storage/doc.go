// Package storage is the node's storage module (the seed's StorageModule):
// it turns free disks into btrfs pools, and hands out volumes (subvolumes
// with a quota limit), the node's cache filesystem, 0-db allocations and
// the area where virtual disk files live.
//
// # Pools
//
// Each scan (Scan, on demand, and periodically in Run) lists the configured
// devices (Config.Devices, plus free disks of /sys/block when
// Config.Discover is set), probes them, re-adopts the btrfs filesystems
// labelled <prefix>zos-<16 hex> (never reformatting them), leaves devices
// with foreign data alone (ForeignDevices), and groups the remaining free
// disks into pools per the policy (SSDs and HDDs never mixed):
// mkfs.btrfs -L <label> -d <profile> -m <profile>, mounted at
// <Root>/mnt/<label>, quotas enabled (simple quotas when the kernel has
// them). A device that fails its I/O probe, mkfs or mount is listed by
// BrokenDevices and never used. A pool whose mount disappears (an
// operator's umount) is mounted again at the next scan, its volumes as they
// were; if it cannot be (a device gone, another filesystem on its mount
// point) it is listed by BrokenPools and skipped until a scan succeeds, and
// the others go on working.
//
// # Volumes and capacity
//
// A volume is a top-level subvolume created with its quota limit in one
// ioctl (the limit is inherited at creation, so no crash can leave a
// volume without its limit). A pool's reservation is the sum of its
// volumes' limits, the 0-db namespace sizes of its zdb volumes and the
// apparent sizes of its vdisk files; all of it is read back from the pool
// itself on adoption, so a disk moved to another slot or machine keeps its
// accounting, and a volume is only placed where the reservations stay
// within the pool's size (device sizes divided by the raid copies).
//
// # Beyond the original
//
//   - bad names, sizes, types and modes are refused with typed errors
//     before anything is created; CreateFilesystem is idempotent by name,
//     and an existing name with another size or type gives ErrExists;
//   - ResizeFilesystem changes a volume's size in place (one qgroup limit
//     ioctl, committed before it returns, so the size read back on
//     adoption is the old or the new one): growing needs the room on the
//     volume's pool (pkg.ErrNotEnoughSpace), shrinking below the bytes the
//     volume holds gives ErrInUse;
//   - ResizeNamespace changes a 0-db namespace's reservation (its
//     descriptor's maxsize, replaced atomically), ReleaseNamespace gives it
//     back after 0-db deleted the namespace (the descriptor is renamed to
//     a marker first, so an interrupted release is finished by the next
//     adoption);
//   - ReleaseFilesystem removes the subvolume and its qgroup (a qgroup the
//     kernel still holds is removed by the next maintenance pass);
//   - a 0-db allocation's mode is recorded and never changes;
//   - read-only snapshots of volumes, restore and delete (Snapshotter);
//   - disks added while running are picked up by the next scan;
//   - Total reflects the pools as they are now, not as they were at boot.
//
// Not done: spinning idle HDDs down (hdparm), the v1 pool migration (wipefs
// of sp_ labels), expvar counters.
//
// The storagetest package has a Fake and the conformance suite that both
// the Module and the Fake pass.
package storage
