package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// chunkBytes bounds the bytes Append encodes before writing them: one write
// system call per chunk, and the writer's buffer stays about this size.
const chunkBytes = 1 << 20

// Append stores batch after every sample already stored, and returns once it
// is durable under the sync policy. It never keeps batch. When the spool is
// full the Full policy applies; ctx only bounds the wait under Block, and
// under Block Append waits for room for the whole batch before storing any
// of it (unless the batch needs more than MaxBytes/2), so an error from ctx
// means nothing was stored. A sample that would encode to more than a record
// may hold is an error before anything is stored. After a failure part-way
// (a write error, Close, or ctx ending while a huge batch waits), the error
// is a [*PartialError] saying how many samples were stored.
func (s *Spool) Append(ctx context.Context, batch []bridge.Sample) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable(); err != nil {
		if errors.Is(err, bridge.ErrClosed) {
			return err
		}
		return &PartialError{Dir: s.dir, Total: len(batch), Err: err}
	}
	maxRec := s.opts.maxRecord()
	for i := range batch {
		if payloadBound(&batch[i]) <= maxRec {
			continue
		}
		b, err := appendRecord(s.wbuf[:0], &batch[i])
		if err == nil && len(b)-headerLen <= maxRec {
			continue
		}
		return fmt.Errorf("spool: sample %d (%s/%s) is larger than a record may be (%d bytes with SegmentBytes %d): %w",
			i, batch[i].Source, batch[i].Point, maxRec, s.opts.SegmentBytes, errRecordTooLarge)
	}
	if s.opts.Full == Block {
		// Wait for room for the whole batch before writing any of it, so
		// that a wait that ends with ctx stores nothing rather than a
		// prefix. A batch too large for that is stored chunk by chunk.
		need := int64(sealRecordLen + segStartLen)
		for i := range batch {
			need += int64(headerLen + payloadBound(&batch[i]))
		}
		need += (need/s.opts.segmentData() + 1) * (sealRecordLen + segStartLen)
		if need <= s.opts.MaxBytes/2 {
			if err := s.makeRoom(ctx, need); err != nil {
				return err
			}
		}
	}
	stored, pend := 0, 0
	var pendMax uint64
	s.wbuf = s.wbuf[:0]
	for i := range batch {
		mark := len(s.wbuf)
		var err error
		s.wbuf, err = appendRecord(s.wbuf, &batch[i])
		if err != nil {
			return s.partial(stored, len(batch), err)
		}
		if s.wsize+int64(len(s.wbuf)) > s.opts.segmentData() {
			// The record does not fit in the active segment: write what
			// precedes it there, and start a new segment.
			if err := s.flush(ctx, mark, pend, pendMax); err != nil {
				return s.partial(stored, len(batch), err)
			}
			stored, pend = stored+pend, 0
			if err := s.rotate(); err != nil {
				return s.partial(stored, len(batch), err)
			}
		}
		pend++
		pendMax = max(pendMax, batch[i].Seq)
		if len(s.wbuf) >= chunkBytes {
			if err := s.flush(ctx, len(s.wbuf), pend, pendMax); err != nil {
				return s.partial(stored, len(batch), err)
			}
			stored, pend = stored+pend, 0
		}
	}
	if err := s.flush(ctx, len(s.wbuf), pend, pendMax); err != nil {
		return s.partial(stored, len(batch), err)
	}
	if s.writeFailing {
		s.writeFailing = false
		s.log.Info("spool: writes succeed again")
	}
	if s.opts.Sync == SyncEvery {
		if err := s.syncNow(); err != nil {
			// The records were written and will be read back (they
			// are in the page cache), but may not survive power loss.
			s.fail(err)
			return &PartialError{Dir: s.dir, Stored: len(batch), Total: len(batch), Err: err}
		}
	}
	return nil
}

// partial returns the error of an Append that stored the first stored
// samples of a batch of total and then failed with err: a [*PartialError],
// except when nothing was stored because the spool was closed or ctx ended
// (a failure of the storage is a PartialError even with nothing stored, so
// that it names the spool and the count).
func (s *Spool) partial(stored, total int, err error) error {
	if stored == 0 && (errors.Is(err, bridge.ErrClosed) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errRecordTooLarge)) {
		return err
	}
	pe := &PartialError{Dir: s.dir, Stored: stored, Total: total, Err: err}
	var perr *os.PathError
	if errors.As(err, &perr) && !s.writeFailing {
		// Once per run of failures: the caller counts each one.
		s.writeFailing = true
		s.log.Error("spool: cannot write; appends fail until writes succeed again", "err", pe)
	}
	return pe
}

// flush writes the first n bytes of wbuf (recs records) to the active
// segment, after making room for them. wmu held.
func (s *Spool) flush(ctx context.Context, n, recs int, maxSeq uint64) error {
	if n == 0 {
		return nil
	}
	if err := s.makeRoom(ctx, int64(n)); err != nil {
		return err
	}
	if _, err := s.active.WriteAt(s.wbuf[:n], s.wsize); err != nil {
		// Cut off a partial write so the next record follows valid data.
		if terr := s.active.Truncate(s.wsize); terr != nil {
			s.fail(fmt.Errorf("spool: truncating %s after a failed write: %w", s.active.Name(), terr))
		}
		return err // an *os.PathError: "write <file>: <OS error>"
	}
	s.wsize += int64(n)
	s.dirty.Store(true)
	s.mu.Lock()
	last := &s.segs[len(s.segs)-1]
	last.size = s.wsize
	last.count += uint64(recs)
	s.used += int64(n)
	s.maxSeq = max(s.maxSeq, maxSeq)
	s.mu.Unlock()
	s.wbuf = s.wbuf[:copy(s.wbuf, s.wbuf[n:])]
	return nil
}

// makeRoom applies the Full policy until need more bytes fit. wmu held.
func (s *Spool) makeRoom(ctx context.Context, need int64) error {
	for {
		s.mu.Lock()
		if s.used+need <= s.opts.MaxBytes || len(s.segs) < 2 {
			// With SegmentBytes <= MaxBytes/4 the active segment alone
			// always fits.
			s.mu.Unlock()
			return nil
		}
		room := s.room
		s.mu.Unlock()
		if s.opts.Full == DropOldest {
			if err := s.dropOldest(); err != nil {
				return err
			}
			continue
		}
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closing:
			return bridge.ErrClosed
		}
	}
}

// dropOldest deletes the oldest segment, counting its unacknowledged
// samples as dropped. wmu held; the active segment is never the oldest here.
func (s *Spool) dropOldest() error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.mu.Lock()
	old, next := s.segs[0], s.segs[1]
	var lost uint64
	if s.head.seg == old.id && next.first > s.head.idx {
		lost = next.first - s.head.idx
	}
	s.head = startOf(next)
	s.segs = s.segs[1:]
	s.used -= old.size
	s.missingSeg = max(s.missingSeg, old.id)
	s.mu.Unlock()
	s.dropped.Add(lost)
	s.log.Warn("spool: full; dropped the oldest segment", "segment", s.segPath(old.id), "samples", lost,
		"max_bytes", s.opts.MaxBytes)
	s.peekOK = false // peeked positions may be gone; Ack counts from peekFrom
	return s.removeSegments([]segment{old})
}

// rotate seals the active segment (fsyncing it whatever the policy) and
// starts the next one. wmu held.
func (s *Spool) rotate() error {
	s.mu.Lock()
	last := s.segs[len(s.segs)-1]
	maxSeq := s.maxSeq
	s.mu.Unlock()
	// Seal the segment with its record count, so that Open need not read
	// it. Not for a segment whose count is partial (see segment.partial).
	sealed := false
	if !last.partial {
		if _, err := s.active.WriteAt(appendSeal(nil, last.count, maxSeq), s.wsize); err != nil {
			if terr := s.active.Truncate(s.wsize); terr != nil {
				s.fail(fmt.Errorf("spool: truncating %s after a failed write: %w", s.active.Name(), terr))
			}
			return fmt.Errorf("sealing: %w", err)
		}
		sealed = true
	}
	rn, rnOK := last.nextRN()
	f, err := s.createSegment(last.id+1, rn, rnOK)
	if err != nil {
		return err
	}
	s.syncMu.Lock()
	old := s.active
	serr := old.Sync()
	s.active = f
	s.syncMu.Unlock()
	_ = old.Close()
	if serr != nil {
		serr = fmt.Errorf("spool: fsync of %s: %w", old.Name(), serr)
		s.fail(serr)
		return serr
	}
	if err := syncDir(s.dir); err != nil {
		s.fail(err)
		return err
	}
	s.wsize = segStartLen
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.mu.Lock()
	s.segs = append(s.segs, segment{id: last.id + 1, size: segStartLen, first: last.first + last.count, rn: rn, rnOK: true})
	if sealed {
		s.segs[len(s.segs)-2].size += sealRecordLen
		s.segs[len(s.segs)-2].sealed = true
		s.used += sealRecordLen
	}
	s.used += segStartLen
	gone := s.setHeadLocked(s.head) // the old segment may be wholly acknowledged
	s.mu.Unlock()
	return s.removeSegments(gone)
}

// syncNow fsyncs what was written since the last fsync.
func (s *Spool) syncNow() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if s.dirty.Swap(false) {
		if err := s.active.Sync(); err != nil {
			return fmt.Errorf("spool: fsync of %s: %w", s.active.Name(), err)
		}
	}
	if s.ackDirty.Swap(false) {
		if err := s.cur.Sync(); err != nil {
			// Losing acknowledgements means duplicates, not loss.
			s.log.Warn("spool: fsync of the cursor failed", "err", err)
		}
	}
	return nil
}

// syncer fsyncs every Interval under SyncInterval, until Close.
func (s *Spool) syncer() {
	defer close(s.syncDone)
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
			if err := s.syncNow(); err != nil {
				s.fail(err)
			}
		}
	}
}

func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be fsynced there; NTFS journals metadata
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	err = d.Sync()
	_ = d.Close()
	if err != nil {
		return fmt.Errorf("spool: fsync of %s: %w", dir, err)
	}
	return nil
}
