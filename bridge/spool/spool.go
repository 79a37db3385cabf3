package spool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// FullPolicy says what Append does when the spool holds MaxBytes.
type FullPolicy uint8

const (
	// DropOldest deletes the oldest segment(s) to make room, counting every
	// sample lost in [Spool.Dropped] and logging it. The sources keep
	// running; the oldest readings are lost. The zero FullPolicy.
	DropOldest FullPolicy = iota
	// Block makes Append wait until acknowledgements free room, or until its
	// context ends. Nothing is lost; the sources are held back.
	Block
)

// String returns "drop_oldest" or "block".
func (p FullPolicy) String() string {
	switch p {
	case DropOldest:
		return "drop_oldest"
	case Block:
		return "block"
	}
	return "full_policy(" + strconv.Itoa(int(p)) + ")"
}

// SyncPolicy says when appended records are forced to stable storage
// (fsync). See the package documentation for what survives which failure.
type SyncPolicy uint8

const (
	// SyncEvery fsyncs before every Append returns: a batch Append returned
	// for survives power loss. The zero SyncPolicy.
	SyncEvery SyncPolicy = iota
	// SyncInterval fsyncs from a background goroutine every
	// [Options.Interval]: Append returns once the batch is in the operating
	// system's page cache, so it survives a process crash, and power loss
	// may lose what was appended in the last interval.
	SyncInterval
)

// String returns "every" or "interval".
func (p SyncPolicy) String() string {
	switch p {
	case SyncEvery:
		return "every"
	case SyncInterval:
		return "interval"
	}
	return "sync_policy(" + strconv.Itoa(int(p)) + ")"
}

// Defaults and limits of [Options].
const (
	// DefaultMaxBytes is the MaxBytes of the zero Options: 1 GiB.
	DefaultMaxBytes = 1 << 30
	// DefaultSegmentBytes is the SegmentBytes of the zero Options: 16 MiB.
	DefaultSegmentBytes = 16 << 20
	// DefaultInterval is the fsync period under SyncInterval: 100 ms.
	DefaultInterval = 100 * time.Millisecond
	// MinMaxBytes is the smallest MaxBytes accepted.
	MinMaxBytes = 16 << 10
	// MinSegmentBytes is the smallest SegmentBytes accepted.
	MinSegmentBytes = 4 << 10
)

// chunkBytes bounds the bytes Append encodes before writing them: one write
// system call per chunk, and the writer's buffer stays about this size.
const chunkBytes = 1 << 20

// Options configures a [Spool]. The zero Options is valid: 1 GiB, 16 MiB
// segments, DropOldest, SyncEvery.
type Options struct {
	// MaxBytes bounds the bytes of segment files on disk (default 1 GiB,
	// at least MinMaxBytes). When an Append would exceed it, Full applies.
	MaxBytes int64
	// SegmentBytes bounds each segment file (default 16 MiB, at least
	// MinSegmentBytes). It is lowered to MaxBytes/4 when larger, so that
	// dropping one segment never empties the spool.
	SegmentBytes int64
	// Full is the policy when the spool is full (default DropOldest).
	Full FullPolicy
	// Sync is the fsync policy (default SyncEvery).
	Sync SyncPolicy
	// Interval is the fsync period under SyncInterval (default 100ms).
	Interval time.Duration
	// Logger receives drops, recovered damage and I/O failures; nil
	// discards them (they are still counted).
	Logger *slog.Logger
}

func (o Options) normalize() (Options, error) {
	var errs []error
	switch {
	case o.MaxBytes == 0:
		o.MaxBytes = DefaultMaxBytes
	case o.MaxBytes < MinMaxBytes:
		errs = append(errs, fmt.Errorf("spool: options: MaxBytes %d is less than the minimum %d", o.MaxBytes, MinMaxBytes))
	}
	switch {
	case o.SegmentBytes == 0:
		o.SegmentBytes = DefaultSegmentBytes
	case o.SegmentBytes < MinSegmentBytes:
		errs = append(errs, fmt.Errorf("spool: options: SegmentBytes %d is less than the minimum %d", o.SegmentBytes, MinSegmentBytes))
	}
	if o.SegmentBytes > o.MaxBytes/4 {
		o.SegmentBytes = max(o.MaxBytes/4, MinSegmentBytes)
	}
	if o.Full != DropOldest && o.Full != Block {
		errs = append(errs, fmt.Errorf("spool: options: unknown Full policy %d", o.Full))
	}
	switch o.Sync {
	case SyncEvery:
	case SyncInterval:
		if o.Interval == 0 {
			o.Interval = DefaultInterval
		} else if o.Interval < 0 {
			errs = append(errs, fmt.Errorf("spool: options: negative Interval %v", o.Interval))
		}
	default:
		errs = append(errs, fmt.Errorf("spool: options: unknown Sync policy %d", o.Sync))
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, errors.Join(errs...)
}

// maxRecord is the largest payload a record may have: it must fit in an
// empty segment.
func (o Options) maxRecord() int {
	return int(min(int64(MaxRecordBytes), o.segmentData()-segHeaderLen-headerLen))
}

// segmentData is the bytes of a segment not reserved for its seal.
func (o Options) segmentData() int64 { return o.SegmentBytes - sealRecordLen }

// PartialError is returned by Append when it stored the first Stored samples
// of the batch and then failed (its context ended while blocked on a full
// spool, the spool was closed, or a write failed). The stored samples will be
// delivered; the caller may retry the rest.
type PartialError struct {
	// Stored is how many samples, from the start of the batch, were stored.
	Stored int
	// Err is why the rest were not.
	Err error
}

// Error says how many samples were stored and why the rest were not.
func (e *PartialError) Error() string {
	return fmt.Sprintf("spool: stored %d samples of the batch, then: %v", e.Stored, e.Err)
}

// Unwrap returns the cause.
func (e *PartialError) Unwrap() error { return e.Err }

// StoredSamples returns Stored; it lets package bridge, which cannot import
// this package, count the stored part of a failed Append.
func (e *PartialError) StoredSamples() int { return e.Stored }

// segment is one segment file: its records are logical indexes
// [first, first+count) of this open spool.
type segment struct {
	id    uint64
	size  int64 // bytes of valid data (the file size)
	first uint64
	count uint64 // valid records
	// sealed: the segment ends with a seal record.
	sealed bool
	// partial: count covers only the records after the cursor (the head
	// segment when it was opened), so no seal may be written for it.
	partial bool
}

// dataEnd is the offset after the last sample record.
func (g segment) dataEnd() int64 {
	if g.sealed {
		return g.size - sealRecordLen
	}
	return g.size
}

// position is a place in the log: a byte offset in a segment and the logical
// index of the record there.
type position struct {
	seg uint64
	off int64
	idx uint64
}

// Spool is a durable, bounded, append-only log of samples in a directory.
// It implements [bridge.Spool]. Create it with [Open].
type Spool struct {
	dir  string
	key  string
	opts Options
	log  *slog.Logger

	closing  chan struct{}
	syncDone chan struct{}
	dropped  atomic.Uint64
	dirty    atomic.Bool // appended bytes not yet fsynced
	ackDirty atomic.Bool // cursor written but not fsynced

	// wmu serialises Append and guards the writer's state.
	wmu   sync.Mutex
	wbuf  []byte
	wsize int64 // size of the active segment

	// syncMu guards replacing and fsyncing the active file.
	syncMu sync.Mutex
	active *os.File

	// rmu serialises Peek, Ack and segment deletion; guards the reader.
	rmu      sync.Mutex
	rd       segReader
	rpos     position
	rlimit   int64 // valid bytes of rpos.seg as last seen; -1: unknown
	peekFrom uint64
	peeked   []position
	peekOK   bool     // peeked is valid (no segment dropped since Peek)
	badAt    position // last undecodable record counted
	in       interner
	cur      *os.File
	curState cursor

	// mu guards what both sides read.
	mu         sync.Mutex
	segs       []segment
	head       position
	used       int64
	room       chan struct{} // closed when acknowledgement frees room
	maxSeq     uint64
	missingSeg uint64 // highest segment whose missing records were counted
	closed     bool
	err        error // sticky write or fsync failure
}

var _ bridge.Spool = (*Spool)(nil)

// openDirs holds the directories open in this process: two Spools on one
// directory would corrupt each other.
var openDirs sync.Map

// Open opens the spool in dir, creating the directory when needed, and
// recovers what a previous process left: every complete record is kept, a
// torn tail is truncated, damaged records are skipped and counted in
// [Spool.Dropped], and reading resumes at the first unacknowledged sample.
// Only one Spool may use a directory at a time: a second Open in this
// process fails, and so does one in another process on systems with flock
// (Linux, the BSDs, macOS).
func Open(dir string, opts Options) (*Spool, error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, errors.New("spool: empty directory name")
	}
	key, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if _, loaded := openDirs.LoadOrStore(key, true); loaded {
		return nil, fmt.Errorf("spool: %s is already open in this process", dir)
	}
	s := &Spool{
		dir: dir, key: key, opts: o, log: o.Logger.With("spool", dir),
		closing: make(chan struct{}), syncDone: make(chan struct{}),
		room: make(chan struct{}), rlimit: -1, peekOK: true,
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		openDirs.Delete(key)
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := s.recover(); err != nil {
		if s.active != nil {
			_ = s.active.Close()
		}
		if s.cur != nil {
			_ = s.cur.Close()
		}
		s.rd.close()
		openDirs.Delete(key)
		return nil, err
	}
	if o.Sync == SyncInterval {
		go s.syncer()
	} else {
		close(s.syncDone)
	}
	return s, nil
}

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

// fail records a write or fsync failure: after it Append returns it (an
// fsync failure leaves the page cache in an unknown state).
func (s *Spool) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.log.Error("spool: storage failed; appends are refused", "err", err)
}

func (s *Spool) writable() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return bridge.ErrClosed
	}
	return s.err
}

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
		return err
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
		need := int64(sealRecordLen + segHeaderLen)
		for i := range batch {
			need += int64(headerLen + payloadBound(&batch[i]))
		}
		need += (need/s.opts.segmentData() + 1) * (sealRecordLen + segHeaderLen)
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
			return partial(stored, err)
		}
		if s.wsize+int64(len(s.wbuf)) > s.opts.segmentData() {
			// The record does not fit in the active segment: write what
			// precedes it there, and start a new segment.
			if err := s.flush(ctx, mark, pend, pendMax); err != nil {
				return partial(stored, err)
			}
			stored, pend = stored+pend, 0
			if err := s.rotate(); err != nil {
				return partial(stored, err)
			}
		}
		pend++
		pendMax = max(pendMax, batch[i].Seq)
		if len(s.wbuf) >= chunkBytes {
			if err := s.flush(ctx, len(s.wbuf), pend, pendMax); err != nil {
				return partial(stored, err)
			}
			stored, pend = stored+pend, 0
		}
	}
	if err := s.flush(ctx, len(s.wbuf), pend, pendMax); err != nil {
		return partial(stored, err)
	}
	if s.opts.Sync == SyncEvery {
		if err := s.syncNow(); err != nil {
			s.fail(err)
			return err
		}
	}
	return nil
}

func partial(stored int, err error) error {
	if stored == 0 {
		return err
	}
	return &PartialError{Stored: stored, Err: err}
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
		return fmt.Errorf("spool: writing %s: %w", s.active.Name(), err)
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
	s.head = position{seg: next.id, off: segHeaderLen, idx: next.first}
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
			s.head = position{seg: next.id, off: segHeaderLen, idx: next.first}
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
		s.dropped.Add(to - from)
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
	if c.gen > 0 && c.seg == h.seg && c.off == h.off && c.maxSeq == m {
		return nil
	}
	c.gen++
	c.seg, c.off, c.maxSeq = h.seg, h.off, m
	if err := writeCursor(s.cur, c); err != nil {
		return fmt.Errorf("spool: writing the cursor: %w", err)
	}
	s.curState = c
	s.ackDirty.Store(true)
	return nil
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
			return fmt.Errorf("spool: sealing %s: %w", s.active.Name(), err)
		}
		sealed = true
	}
	f, err := s.createSegment(last.id + 1)
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
	s.wsize = segHeaderLen
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.mu.Lock()
	s.segs = append(s.segs, segment{id: last.id + 1, size: segHeaderLen, first: last.first + last.count})
	if sealed {
		s.segs[len(s.segs)-2].size += sealRecordLen
		s.segs[len(s.segs)-2].sealed = true
		s.used += sealRecordLen
	}
	s.used += segHeaderLen
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
				s.dropped.Add(1)
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
				if isSeal(p) {
					continue
				}
				s.rpos.idx++
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
		s.rpos = position{seg: next.id, off: segHeaderLen, idx: next.first}
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

// Len returns the number of samples held and not acknowledged. Records
// damaged after Open are counted until the reader finds them.
func (s *Spool) Len() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := s.segs[len(s.segs)-1]
	return int64(last.first + last.count - s.head.idx)
}

// Dropped returns how many samples were dropped because the spool was full,
// plus the damaged records skipped, since Open. A sample dropped while a Peek
// had returned it is counted even if the sink then delivers it: the counter
// only grows.
func (s *Spool) Dropped() uint64 { return s.dropped.Load() }

// Bytes returns the bytes of segment files on disk, at most about
// MaxBytes.
func (s *Spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// SeqStart returns a sequence number larger than every Seq this spool holds
// or has held since its directory was created (as far as acknowledgements
// recorded it), and not smaller than the current time in Unix nanoseconds. A
// source numbering its samples SeqStart(), SeqStart()+1, ... keeps its
// sequence growing across restarts even if the clock stepped back.
func (s *Spool) SeqStart() uint64 {
	s.mu.Lock()
	m := s.maxSeq
	s.mu.Unlock()
	now := uint64(max(time.Now().UnixNano(), 0))
	if m >= now {
		return m + 1
	}
	return now
}

// Close fsyncs and closes the spool. An Append blocked on a full spool
// returns. Later calls return [bridge.ErrClosed].
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return bridge.ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	close(s.closing)
	<-s.syncDone
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.rmu.Lock()
	defer s.rmu.Unlock()
	var errs []error
	s.dirty.Store(true)
	s.ackDirty.Store(true)
	errs = append(errs, s.syncNow())
	s.syncMu.Lock()
	errs = append(errs, s.active.Close(), s.cur.Close())
	s.syncMu.Unlock()
	s.rd.close()
	errs = append(errs, syncDir(s.dir))
	openDirs.Delete(s.key)
	return errors.Join(errs...)
}
