package spool

import (
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// Peek copies the oldest unacknowledged samples into buf and returns how
// many; 0 when there are none. Successive Peeks without Ack return the same
// samples. A record that passes its checksum but does not decode is skipped
// and counted in Dropped.
func (s *Spool) Peek(buf []bridge.Sample) (int, error) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.mu.Lock()
	closed, head := s.closed, s.head
	s.mu.Unlock()
	if closed {
		return 0, bridge.ErrClosed
	}
	if s.rpos != head {
		s.setReader(head)
	}
	s.peekFrom, s.peeked, s.peekOK = head.idx, s.peeked[:0], true
	n := 0
	for n < len(buf) {
		p, ok, err := s.readRecord()
		if err != nil {
			return n, err
		}
		if !ok {
			break
		}
		if err := decodePayload(p, &buf[n], &s.in); err != nil {
			if s.rpos.seg > s.badAt.seg || (s.rpos.seg == s.badAt.seg && s.rpos.off > s.badAt.off) {
				s.badAt = s.rpos
				s.addLost(1)
				s.log.Warn("spool: skipping a record that does not decode", "segment", s.segPath(s.rpos.seg), "err", err)
			}
			continue
		}
		s.peeked = append(s.peeked, s.rpos)
		n++
	}
	return n, nil
}

// setReader moves the reader to p. rmu held.
func (s *Spool) setReader(p position) {
	if s.rd.f != nil && s.rd.id == p.seg {
		s.rd.seek(p.off)
	} else {
		s.rd.close()
		s.rlimit = -1
	}
	s.rpos = p
}

// readRecord returns the payload of the next valid record at the reader's
// position, crossing into later segments; ok is false at the end of the log.
// rmu held.
func (s *Spool) readRecord() (payload []byte, ok bool, err error) {
	for {
		if s.rd.f == nil {
			f, err := os.Open(s.segPath(s.rpos.seg))
			if err != nil {
				return nil, false, fmt.Errorf("spool: %w", err)
			}
			s.rd.reset(f, s.rpos.seg, s.rpos.off)
			s.rlimit = -1
		}
		if s.rlimit >= 0 {
			p, err := s.rd.next(s.rlimit)
			if err == nil {
				s.rpos.off = s.rd.pos()
				if isMarker(p) {
					continue
				}
				s.rpos.idx++
				s.rpos.rn++
				return p, true, nil
			}
			if err != io.EOF {
				return nil, false, fmt.Errorf("spool: reading %s: %w", s.rd.f.Name(), err)
			}
		}
		// At the known end of the segment: has it grown, or is there a
		// next one?
		s.mu.Lock()
		i := slices.IndexFunc(s.segs, func(g segment) bool { return g.id == s.rpos.seg })
		if i < 0 {
			s.mu.Unlock()
			return nil, false, fmt.Errorf("spool: segment %s vanished under the reader", s.segPath(s.rpos.seg))
		}
		size, last := s.segs[i].size, i == len(s.segs)-1
		var next segment
		if !last {
			next = s.segs[i+1]
		}
		if size > s.rlimit {
			s.rlimit = size
			s.mu.Unlock()
			continue
		}
		if last {
			s.mu.Unlock()
			return nil, false, nil
		}
		s.countMissingLocked(s.rpos.seg, s.rpos.idx, next.first)
		s.mu.Unlock()
		s.rd.close()
		s.rpos = startOf(next)
		s.rlimit = -1
	}
}

// Ack removes the n oldest samples: those the last Peek returned (or, when
// n is larger, the ones after them too). Segments wholly acknowledged are
// deleted. If segments were dropped since the Peek, the samples already
// dropped count towards n.
func (s *Spool) Ack(n int) error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.mu.Lock()
	closed, head := s.closed, s.head
	tail := s.segs[len(s.segs)-1].first + s.segs[len(s.segs)-1].count
	s.mu.Unlock()
	if closed {
		return bridge.ErrClosed
	}
	if n < 0 {
		return fmt.Errorf("spool: ack of %d samples", n)
	}
	if n == 0 {
		return nil
	}
	var newHead position
	switch {
	case s.peekOK && n <= len(s.peeked):
		newHead = s.peeked[n-1]
	default:
		start, remaining := head, uint64(n)
		if s.peekOK {
			if len(s.peeked) > 0 {
				start = s.peeked[len(s.peeked)-1]
			}
			remaining = uint64(n - len(s.peeked))
		} else {
			target := s.peekFrom + uint64(n)
			if target <= head.idx {
				s.peeked, s.peekFrom, s.peekOK = s.peeked[:0], head.idx, true
				return nil // all of them were dropped already
			}
			remaining = target - head.idx
		}
		if start.idx+remaining > tail {
			return fmt.Errorf("spool: ack of %d samples, but only %d are held", n, tail-s.peekFrom)
		}
		if s.rpos != start {
			s.setReader(start)
		}
		for ; remaining > 0; remaining-- {
			_, ok, err := s.readRecord()
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("spool: ack of %d samples, but fewer are held", n)
			}
		}
		newHead = s.rpos
	}
	s.mu.Lock()
	gone := s.setHeadLocked(newHead)
	head = s.head
	s.mu.Unlock()
	s.peeked, s.peekFrom, s.peekOK = s.peeked[:0], head.idx, true
	if err := s.persistHead(); err != nil {
		return err
	}
	return s.removeSegments(gone)
}
