package spool

import (
	"errors"
	"fmt"
	"os"
)

// setHeadLocked moves the head to h and takes out of the list the segments
// wholly before it (the head moves to the next segment's start when it sits
// at the end of a sealed one). It returns them for removeSegments. mu held
// (or no concurrency yet).
func (s *Spool) setHeadLocked(h position) []segment {
	s.head = h
	var gone []segment
	for len(s.segs) > 1 {
		old, next := s.segs[0], s.segs[1]
		if old.id == s.head.seg {
			if s.head.off < old.dataEnd() {
				break
			}
			// Records of old that the reader never found were damaged
			// after Open validated them.
			s.countMissingLocked(old.id, s.head.idx, next.first)
			s.head = startOf(next)
		} else if old.id > s.head.seg {
			break
		}
		s.segs = s.segs[1:]
		s.used -= old.size
		gone = append(gone, old)
	}
	if len(gone) > 0 {
		close(s.room)
		s.room = make(chan struct{})
	}
	return gone
}

// countMissingLocked counts as dropped the records [from, to) of segment id
// that could not be read, once per segment. mu held.
func (s *Spool) countMissingLocked(id, from, to uint64) {
	if id <= s.missingSeg {
		return
	}
	s.missingSeg = id
	if to > from {
		s.addLost(to - from)
		s.log.Warn("spool: records damaged since the spool was opened were skipped",
			"segment", s.segPath(id), "records", to-from)
	}
}

// removeSegments persists the head in the cursor file, then deletes the
// files of gone. rmu held (or no concurrency yet).
func (s *Spool) removeSegments(gone []segment) error {
	if len(gone) == 0 {
		return nil
	}
	if err := s.persistHead(); err != nil {
		return err
	}
	var errs []error
	for _, g := range gone {
		if s.rd.f != nil && s.rd.id == g.id {
			s.rd.close()
			s.rlimit = -1
		}
		if err := os.Remove(s.segPath(g.id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("spool: %w", err))
		}
	}
	return errors.Join(errs...)
}

// persistHead writes the head to the cursor file. rmu held.
func (s *Spool) persistHead() error {
	s.mu.Lock()
	h, m := s.head, s.maxSeq
	s.mu.Unlock()
	c := s.curState
	if c.gen > 0 && c.seg == h.seg && c.off == h.off && c.maxSeq == m && c.rnOK == h.rnOK && c.rn == h.rn {
		return nil
	}
	c.gen++
	c.seg, c.off, c.maxSeq, c.rn, c.rnOK = h.seg, h.off, m, h.rn, h.rnOK
	if err := writeCursor(s.cur, c); err != nil {
		return fmt.Errorf("spool: writing the cursor: %w", err)
	}
	s.curState = c
	s.ackDirty.Store(true)
	return nil
}
