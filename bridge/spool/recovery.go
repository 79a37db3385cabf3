package spool

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

func (s *Spool) segPath(id uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%016x.seg", id))
}

// listSegments returns the ids of the segment files in dir, ascending.
func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var ids []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".seg")
		if !ok || len(name) != 16 || !e.Type().IsRegular() {
			continue
		}
		id, err := strconv.ParseUint(name, 16, 64)
		if err != nil {
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// recover rebuilds the state from the directory (see Open).
func (s *Spool) recover() error {
	cur, err := os.OpenFile(filepath.Join(s.dir, cursorFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.cur = cur
	if err := lockFile(cur); err != nil {
		return err
	}
	c, err := readCursor(cur)
	if err != nil {
		return fmt.Errorf("spool: reading %s: %w", cur.Name(), err)
	}
	s.curState = c
	s.maxSeq = c.maxSeq
	ids, err := listSegments(s.dir)
	if err != nil {
		return err
	}
	// Segments before the cursor's were acknowledged; a crash between
	// writing the cursor and deleting them leaves them behind.
	var keep []uint64
	for _, id := range ids {
		if c.gen > 0 && id < c.seg {
			if err := os.Remove(s.segPath(id)); err != nil {
				return fmt.Errorf("spool: removing acknowledged segment: %w", err)
			}
			continue
		}
		keep = append(keep, id)
	}
	var idx uint64
	for i, id := range keep {
		from := int64(segHeaderLen)
		if i == 0 && c.gen > 0 && id == c.seg {
			from = c.off
		}
		seg, ok, err := s.scanSegment(id, from, i == len(keep)-1, idx)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if len(s.segs) == 0 {
			s.head = position{seg: id, off: max(from, segHeaderLen), idx: idx}
			if s.head.off > seg.size {
				s.head.off = seg.size
			}
		}
		s.segs = append(s.segs, seg)
		s.used += seg.size
		idx += seg.count
	}
	if len(s.segs) == 0 {
		id := uint64(1)
		if c.gen > 0 {
			id = c.seg + 1
		}
		f, err := s.createSegment(id)
		if err != nil {
			return err
		}
		s.active = f
		s.segs = []segment{{id: id, size: segHeaderLen}}
		s.used = segHeaderLen
		s.head = position{seg: id, off: segHeaderLen}
	}
	s.wsize = s.segs[len(s.segs)-1].size
	s.rpos = s.head
	s.peekFrom = s.head.idx
	if err := s.active.Sync(); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		return err
	}
	// The head may sit at the end of a wholly acknowledged segment.
	gone := s.setHeadLocked(s.head)
	return s.removeSegments(gone)
}

// scanSegment validates segment id from offset from, counting its records.
// The last segment becomes the active one: a torn or damaged tail is
// truncated. ok is false when the file was an empty leftover and removed.
func (s *Spool) scanSegment(id uint64, from int64, last bool, first uint64) (segment, bool, error) {
	path := s.segPath(id)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return segment{}, false, fmt.Errorf("spool: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return segment{}, false, fmt.Errorf("spool: %w", err)
	}
	size := fi.Size()
	if size < segHeaderLen {
		if !last {
			_ = f.Close()
			s.log.Warn("spool: removing an empty segment left by a crash", "segment", path)
			if err := os.Remove(path); err != nil {
				return segment{}, false, fmt.Errorf("spool: %w", err)
			}
			return segment{}, false, nil
		}
		// Created just before a crash: write its header again.
		if err := f.Truncate(0); err == nil {
			_, err = f.WriteAt(appendSegHeader(nil), 0)
		}
		if err != nil {
			_ = f.Close()
			return segment{}, false, fmt.Errorf("spool: %w", err)
		}
		s.active = f
		return segment{id: id, size: segHeaderLen, first: first}, true, nil
	}
	hdr := make([]byte, segHeaderLen)
	if _, err := f.ReadAt(hdr, 0); err != nil {
		_ = f.Close()
		return segment{}, false, fmt.Errorf("spool: %s: %w", path, err)
	}
	if string(hdr[:8]) != string(segMagic[:]) {
		s.log.Warn("spool: segment header damaged; reading its records anyway", "segment", path)
	} else if v := uint32(hdr[8]) | uint32(hdr[9])<<8 | uint32(hdr[10])<<16 | uint32(hdr[11])<<24; v != formatVersion {
		_ = f.Close()
		return segment{}, false, fmt.Errorf("spool: %s: format version %d, this package reads version %d", path, v, formatVersion)
	}
	partial := from > segHeaderLen
	if !last && !partial {
		// A sealed segment says how many records it holds: trust it,
		// and leave damage inside to be found (and counted) on replay.
		rec := make([]byte, sealRecordLen)
		if size >= segHeaderLen+sealRecordLen {
			if _, err := f.ReadAt(rec, size-sealRecordLen); err == nil {
				if count, maxSeq, ok := parseSeal(rec); ok {
					_ = f.Close()
					s.maxSeq = max(s.maxSeq, maxSeq)
					return segment{id: id, size: size, first: first, count: count, sealed: true}, true, nil
				}
			}
		}
		s.log.Warn("spool: segment has no valid seal; reading it whole", "segment", path)
	}
	from = min(max(from, segHeaderLen), size)
	s.rd.reset(f, id, from)
	defer func() { s.rd.f, s.rd.src = nil, nil }()
	var count uint64
	sealAt, sealEnd := int64(-1), int64(-1)
	for {
		p, err := s.rd.next(size)
		if err == io.EOF {
			break
		}
		if err != nil {
			_ = f.Close()
			return segment{}, false, fmt.Errorf("spool: reading %s: %w", path, err)
		}
		if isSeal(p) {
			sealEnd = s.rd.pos()
			sealAt = sealEnd - sealRecordLen
			continue
		}
		count++
		s.maxSeq = max(s.maxSeq, payloadSeq(p))
	}
	corrupt := uint64(s.rd.skips)
	if end := s.rd.pos(); end < size {
		complete := s.rd.completeAt(size)
		if complete || !last {
			corrupt++
		}
		if last {
			s.log.Warn("spool: truncating the invalid tail of the last segment", "segment", path,
				"offset", end, "bytes", size-end, "torn_write", !complete)
			if err := f.Truncate(end); err != nil {
				_ = f.Close()
				return segment{}, false, fmt.Errorf("spool: truncating %s: %w", path, err)
			}
			size = end
		}
	}
	sealed := sealEnd == size
	if last && sealed {
		// Sealed just before a crash, before its successor existed:
		// unseal it and go on appending to it.
		if err := f.Truncate(sealAt); err != nil {
			_ = f.Close()
			return segment{}, false, fmt.Errorf("spool: truncating %s: %w", path, err)
		}
		size, sealed = sealAt, false
	}
	if corrupt > 0 {
		s.dropped.Add(corrupt)
		s.log.Warn("spool: skipped damaged records", "segment", path, "records", corrupt)
	}
	if last {
		s.active = f
	} else {
		_ = f.Close()
	}
	return segment{id: id, size: size, first: first, count: count, sealed: sealed, partial: partial}, true, nil
}

// createSegment creates segment id with its header.
func (s *Spool) createSegment(id uint64) (*os.File, error) {
	f, err := os.OpenFile(s.segPath(id), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if _, err := f.WriteAt(appendSegHeader(nil), 0); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("spool: %w", err)
	}
	return f, nil
}
