package engine

import (
	"strconv"
)

// reload drops the in-memory state and replays the files again.
func (ns *Namespace) reload() error {
	ns.lock()
	defer ns.mu.Unlock()
	if ns.closed {
		return ErrClosed
	}
	ns.closeFiles()
	ns.mem, ns.seqFirst, ns.nextSeq, ns.idxLast = nil, nil, 0, nil
	ns.entries, ns.payloadBytes = 0, 0
	if err := ns.load(); err != nil {
		ns.closed = true
		ns.closedNow.Store(true)
		ns.closeFiles()
		return err
	}
	ns.modeNow.Store(uint32(ns.mode))
	return nil
}

// SetProperty changes a namespace property (NSSET) and persists the
// descriptor: maxsize (bytes), password ("*" clears), public, worm, lock and
// freeze (0/1), mode (user/seq, only on a fresh namespace of a mixed server).
// Values follow 0-db: a flag is on when the value starts with '1'.
func (ns *Namespace) SetProperty(prop, value string) error {
	if ns.name == DefaultNamespace {
		return ErrDefaultUpdate
	}
	ns.lock()
	defer ns.mu.Unlock()
	if ns.closed {
		return ErrClosed
	}
	on := len(value) > 0 && value[0] == '1'
	d := ns.desc
	switch prop {
	case "maxsize":
		n, _ := strconv.ParseUint(leadingDigits(value), 10, 64)
		d.MaxSize = n
	case "password":
		if value == "*" {
			d.Password = ""
		} else {
			d.Password = value
		}
	case "public":
		d.Public = on
	case "worm":
		d.Worm = on
	case "lock":
		ns.locked = on
		return nil
	case "freeze":
		ns.frozen = on
		return nil
	case "mode":
		return ns.setModeLocked(value)
	default:
		return ErrBadProperty
	}
	if err := writeDescriptor(ns.idxDir, d); err != nil {
		ns.log.Error("descriptor write failed", "err", err)
		return ErrWriteIndex
	}
	ns.desc = d
	return nil
}

// leadingDigits mimics atoll: the digits at the start of s.
func leadingDigits(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

func (ns *Namespace) setModeLocked(value string) error {
	if !ns.eng.cfg.Mixed {
		return ErrSingleMode
	}
	if !ns.freshLocked() {
		return ErrNotFresh
	}
	var m Mode
	switch value {
	case "user":
		m = ModeUser
	case "seq":
		m = ModeSeq
	default:
		return ErrBadModeValue
	}
	if _, err := ns.idxFiles[0].WriteAt([]byte{byte(m)}, IndexHeaderSize-1); err != nil {
		return ErrWriteIndex
	}
	if err := fdatasync(ns.idxFiles[0]); err != nil {
		return ErrWriteIndex
	}
	ns.mode = m
	ns.modeNow.Store(uint32(m))
	ns.mem, ns.seqFirst, ns.nextSeq = nil, nil, 0
	if m == ModeUser {
		ns.mem = newMemIndex()
	} else {
		ns.seqFirst = []uint64{0}
	}
	return nil
}
