package spool

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// quarantineSuffix is appended to the name of a segment Open will not read
// (a format version this package does not know): it is moved aside, kept
// for a version that reads it, and its samples are counted as lost.
const quarantineSuffix = ".quarantined"

func (s *Spool) segPath(id uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%016x.seg", id))
}

// listSegments returns the ids of the segment files in the directory,
// ascending, and logs every other file it finds there (once per Open).
func (s *Spool) listSegments() ([]uint64, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var ids []uint64
	for _, e := range ents {
		n := e.Name()
		path := filepath.Join(s.dir, n)
		switch {
		case n == cursorFile || n == DeadLetterName:
			continue
		case strings.HasSuffix(n, quarantineSuffix):
			s.log.Warn("spool: a quarantined segment is still in the directory; it is not read (rename it back to .seg for a version that reads its format)",
				"file", path)
			continue
		}
		if name, ok := strings.CutSuffix(n, ".seg"); ok && len(name) == 16 && e.Type().IsRegular() {
			if id, err := strconv.ParseUint(name, 16, 64); err == nil && id > 0 {
				ids = append(ids, id)
				continue
			}
		}
		s.log.Warn("spool: ignoring a file that is not part of the spool", "file", path)
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
	c, fresh, err := readCursor(cur)
	if err != nil {
		return fmt.Errorf("spool: reading %s: %w", cur.Name(), err)
	}
	if !fresh && c.gen == 0 {
		s.log.Warn("spool: the cursor file is damaged; replaying from the oldest segment (acknowledged samples may be delivered again, none are lost)",
			"file", cur.Name())
	}
	s.curState = c
	s.maxSeq = c.maxSeq
	ids, err := s.listSegments()
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
	run := lossRun{s: s}
	if c.gen > 0 {
		// Segments from the cursor's on must all be there.
		run.prevID = c.seg - 1
		if c.rnOK {
			run.open, run.rn = true, c.rn
		}
	} else if fresh && len(keep) > 0 && keep[0] != 1 {
		s.log.Warn("spool: the oldest segments are missing, or the cursor file was removed; samples lost with them cannot be counted",
			"first_segment", s.segPath(keep[0]))
	}
	var idx uint64
	lastID := uint64(0)
	for i, id := range keep {
		lastID = id
		head := i == 0 && c.gen > 0 && id == c.seg
		from := int64(segHeaderLen)
		if head {
			from = c.off
		}
		seg, ok, err := s.recoverSegment(&run, id, from, i == len(keep)-1, head, idx)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if len(s.segs) == 0 {
			s.head = position{seg: id, off: max(from, segHeaderLen), idx: idx, rn: seg.rn, rnOK: seg.rnOK}
			if s.head.off > seg.size {
				s.head.off = seg.size
			}
		}
		s.segs = append(s.segs, seg)
		s.used += seg.size
		idx += seg.count
	}
	run.finish()
	if s.active == nil {
		// No segment, or the last one was removed or quarantined.
		id := lastID + 1
		if c.gen > 0 {
			id = max(id, c.seg+1)
		}
		rn, cont := run.next()
		f, err := s.createSegment(id, rn, cont)
		if err != nil {
			return err
		}
		s.active = f
		seg := segment{id: id, size: segStartLen, first: idx, rn: rn, rnOK: true}
		if len(s.segs) == 0 {
			s.head = startOf(seg)
		}
		s.segs = append(s.segs, seg)
		s.used += seg.size
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

// lossRun counts the samples lost to damage between two segments whose
// start records give their record numbers (or the cursor's position and
// the next such segment): the difference of the record numbers minus the
// records found readable in between. Where no record number closes a run
// (the damage is in the last segments, or the files predate record
// numbers), the count is a lower bound: one per damaged region of a
// segment, one per missing segment.
type lossRun struct {
	s      *Spool
	open   bool     // rn is known
	rn     uint64   // record number at the start of the run
	found  uint64   // records readable since
	lower  uint64   // lower bound of the records lost since
	files  []string // damaged or missing files in the run
	prevID uint64   // the last segment id seen; 0: none
}

// gap notes the segment ids missing between the last one seen and id.
func (r *lossRun) gap(id uint64) {
	if r.prevID > 0 || r.open {
		if id > r.prevID+1 {
			first, last := r.prevID+1, id-1
			r.s.log.Warn("spool: segments are missing: deleted or lost by the file system",
				"first", r.s.segPath(first), "last", r.s.segPath(last), "segments", last-first+1)
			r.lower += last - first + 1 // a sealed segment holds at least one sample
			r.note(r.s.segPath(first))
			if last != first {
				r.note(r.s.segPath(last))
			}
		}
	}
	r.prevID = id
}

// note records a damaged file in the run.
func (r *lossRun) note(path string) {
	if len(r.files) < 8 {
		r.files = append(r.files, filepath.Base(path))
	}
}

// anchor closes the run at a segment whose start record holds record
// number rn, counting what was lost, and opens a new run there.
func (r *lossRun) anchor(rn uint64, continues bool) {
	switch {
	case r.open && continues && rn >= r.rn+r.found:
		r.report(rn-r.rn-r.found, true)
	case r.open && continues:
		r.s.log.Warn("spool: record numbers run backwards; counting what was seen", "segment", r.files)
		r.report(r.lower, false)
	default:
		r.report(r.lower, false)
	}
	r.open, r.rn, r.found, r.lower, r.files = true, rn, 0, 0, nil
}

// finish closes the last run, which no record number ends.
func (r *lossRun) finish() { r.report(r.lower, false) }

// next returns the record number that follows the run, for a new segment.
func (r *lossRun) next() (uint64, bool) { return r.rn + r.found + r.lower, r.open }

func (r *lossRun) report(lost uint64, exact bool) {
	if lost == 0 {
		return
	}
	r.s.addLost(lost)
	msg := "spool: samples lost to damage"
	if !exact {
		msg = "spool: samples lost to damage (at least this many)"
	}
	r.s.log.Warn(msg, "samples", lost, "files", strings.Join(r.files, ","), "dir", r.s.dir)
}

// segFile is what Open learned of a segment file before reading its
// records.
type segFile struct {
	id      uint64
	path    string
	f       *os.File
	size    int64
	version uint32 // 0: the header is damaged
	rn      uint64 // from the start record, when rnOK
	rnOK    bool
	cont    bool
}

// inspect opens segment id and reads its header and start record.
func (s *Spool) inspect(id uint64) (segFile, error) {
	sf := segFile{id: id, path: s.segPath(id)}
	f, err := os.OpenFile(sf.path, os.O_RDWR, 0)
	if err != nil {
		return sf, fmt.Errorf("spool: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return sf, fmt.Errorf("spool: %w", err)
	}
	sf.f, sf.size = f, fi.Size()
	if sf.size >= segHeaderLen {
		hdr := make([]byte, segStartLen)
		n, err := f.ReadAt(hdr, 0)
		if err != nil && err != io.EOF {
			_ = f.Close()
			return sf, fmt.Errorf("spool: %s: %w", sf.path, err)
		}
		if string(hdr[:8]) == string(segMagic[:]) {
			sf.version = binary.LittleEndian.Uint32(hdr[8:12])
		}
		if n == segStartLen && (sf.version == formatVersion || sf.version == 0) {
			sf.rn, sf.cont, sf.rnOK = parseStart(hdr[segHeaderLen:])
		}
	}
	return sf, nil
}

// recoverSegment inspects and validates segment id from offset from,
// counting its records and the damage found, and accounting in run for the
// samples lost before it. The last segment becomes the active one: a torn
// or damaged tail is truncated. ok is false when the file was removed (an
// empty leftover) or quarantined.
func (s *Spool) recoverSegment(run *lossRun, id uint64, from int64, last, head bool, first uint64) (segment, bool, error) {
	run.gap(id)
	sf, err := s.inspect(id)
	if err != nil {
		return segment{}, false, err
	}
	f, path, size := sf.f, sf.path, sf.size
	if size < segHeaderLen || (sf.version == formatVersion && size < segStartLen) {
		if last {
			// Created just before a crash: write its header again.
			rn, cont := run.next()
			if err := f.Truncate(0); err == nil {
				_, err = f.WriteAt(appendStart(appendSegHeader(nil), rn, cont), 0)
			}
			if err != nil {
				_ = f.Close()
				return segment{}, false, fmt.Errorf("spool: %w", err)
			}
			s.log.Info("spool: rewrote the header of a segment left incomplete by a crash", "segment", path, "bytes", size)
			s.active = f
			return segment{id: id, size: segStartLen, first: first, rn: rn, rnOK: true}, true, nil
		}
		// A crash leaves an incomplete segment only at the end: a later
		// segment exists, so this one was cut short after it was written.
		_ = f.Close()
		s.log.Warn("spool: removing a segment cut short before its first record (damage: later segments exist)",
			"segment", path, "bytes", size)
		run.note(path)
		run.lower++
		if err := os.Remove(path); err != nil {
			return segment{}, false, fmt.Errorf("spool: %w", err)
		}
		return segment{}, false, nil
	}
	if sf.version != 0 && (sf.version < oldestFormatVersion || sf.version > formatVersion) {
		// Reading a format this package does not know could deliver
		// wrong samples; refusing to start would stop every other
		// sample. Move it aside, keep it, count its samples as lost.
		_ = f.Close()
		to := path + quarantineSuffix
		if err := os.Rename(path, to); err != nil {
			return segment{}, false, fmt.Errorf("spool: %s has format version %d, this package reads versions %d to %d, and moving it aside failed: %w",
				path, sf.version, oldestFormatVersion, formatVersion, err)
		}
		s.log.Warn("spool: segment has a format version this package does not read; moved aside and its samples counted as lost",
			"segment", path, "version", sf.version, "moved_to", to)
		run.note(path)
		run.lower++
		return segment{}, false, nil
	}
	if sf.version == 0 {
		s.log.Warn("spool: segment header damaged; reading its records anyway", "segment", path)
		run.note(path)
	}
	if sf.rnOK && !head {
		run.anchor(sf.rn, sf.cont)
	}
	seg, err := s.scanSegment(sf, from, last, first)
	if err != nil {
		_ = f.Close()
		return segment{}, false, err
	}
	switch {
	case head && run.open:
		seg.rn, seg.rnOK = run.rn, true
	case !head && sf.rnOK:
		seg.rn, seg.rnOK = sf.rn, true
	}
	run.found += seg.count
	if seg.lost > 0 {
		run.lower += seg.lost
		run.note(path)
	}
	if last {
		s.active = f
	} else {
		_ = f.Close()
	}
	return seg, true, nil
}

// scanSegment counts the records of a segment from offset from, or trusts
// its seal. It truncates a torn or damaged tail of the last segment. The
// damaged regions it skips are counted in the segment's lost (one each: a
// lower bound); the caller closes sf.f.
func (s *Spool) scanSegment(sf segFile, from int64, last bool, first uint64) (segment, error) {
	f, path, size, id := sf.f, sf.path, sf.size, sf.id
	partial := from > segHeaderLen
	if !last && !partial {
		// A sealed segment says how many records it holds: trust it,
		// and leave damage inside to be found (and counted) on replay.
		rec := make([]byte, sealRecordLen)
		if size >= segHeaderLen+sealRecordLen {
			if _, err := f.ReadAt(rec, size-sealRecordLen); err == nil {
				if count, maxSeq, ok := parseSeal(rec); ok {
					s.maxSeq = max(s.maxSeq, maxSeq)
					return segment{id: id, size: size, first: first, count: count, sealed: true}, nil
				}
			}
		}
		s.log.Warn("spool: segment has no valid seal; reading it whole", "segment", path)
	}
	if sf.version == formatVersion && !sf.rnOK && from <= segHeaderLen {
		// A damaged start record is not a lost sample: skip its bytes.
		from = segStartLen
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
			return segment{}, fmt.Errorf("spool: reading %s: %w", path, err)
		}
		if isSeal(p) {
			sealEnd = s.rd.pos()
			sealAt = sealEnd - sealRecordLen
			continue
		}
		if isStart(p) {
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
				return segment{}, fmt.Errorf("spool: truncating %s: %w", path, err)
			}
			size = end
		}
	}
	sealed := sealEnd == size
	if last && sealed {
		// Sealed just before a crash, before its successor existed (or
		// its successor was deleted: the samples it held cannot be
		// counted): unseal it and go on appending to it.
		s.log.Warn("spool: the last segment is sealed but has no successor; appending to it again",
			"segment", path)
		if err := f.Truncate(sealAt); err != nil {
			return segment{}, fmt.Errorf("spool: truncating %s: %w", path, err)
		}
		size, sealed = sealAt, false
	}
	if corrupt > 0 {
		s.log.Warn("spool: skipped damaged records", "segment", path, "regions", corrupt)
	}
	return segment{id: id, size: size, first: first, count: count, sealed: sealed, partial: partial, lost: corrupt}, nil
}

// createSegment creates segment id with its header and start record.
func (s *Spool) createSegment(id, rn uint64, continues bool) (*os.File, error) {
	f, err := os.OpenFile(s.segPath(id), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating a segment: %w", err)
	}
	if _, err := f.WriteAt(appendStart(appendSegHeader(nil), rn, continues), 0); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("creating a segment: %w", err)
	}
	return f, nil
}
