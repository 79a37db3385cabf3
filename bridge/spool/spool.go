package spool

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// PartialError is returned by Append when it stored the first Stored samples
// of the batch and then failed: a write, a new segment or an fsync failed
// (EFBIG from a file size limit, ENOSPC from a full disk, EIO; then Stored
// may be 0), the spool had failed before, its context ended while blocked
// on a full spool, or the spool was closed. The stored samples will be
// delivered; the caller may retry the rest. Err wraps the operating
// system's error, so errors.Is(err, syscall.ENOSPC) works.
type PartialError struct {
	// Dir is the spool's directory.
	Dir string
	// Stored is how many samples, from the start of the batch, were stored.
	Stored int
	// Total is the length of the batch.
	Total int
	// Err is why the rest were not.
	Err error
}

// Error names the spool, says how many samples were stored and why the rest
// were not (naming the file and the operating system's error).
func (e *PartialError) Error() string {
	return fmt.Sprintf("spool %s: stored %d of %d samples of the batch, then: %v", e.Dir, e.Stored, e.Total, e.Err)
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
	// rn is the record number of the first of its records counted in
	// [first, first+count) (the start record's, or the cursor's for the
	// head segment at Open), when rnOK.
	rn   uint64
	rnOK bool
	// lost is how many of its records Open counted as lost to damage: the
	// records after rn are numbered rn .. rn+count+lost-1.
	lost uint64
}

// nextRN returns the record number that follows g's records, and whether it
// is known.
func (g segment) nextRN() (uint64, bool) { return g.rn + g.count + g.lost, g.rnOK }

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
	// rn is the record number of the record there, when rnOK. Damage
	// skipped inside a segment is not numbered, so after it rn may be too
	// low, never too high (a restart may count that damage again).
	rn   uint64
	rnOK bool
}

// startOf returns the position of g's first record.
func startOf(g segment) position {
	return position{seg: g.id, off: segHeaderLen, idx: g.first, rn: g.rn, rnOK: g.rnOK}
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
	dropped  atomic.Uint64 // full drops and lost
	lost     atomic.Uint64 // samples lost to damage
	dirty    atomic.Bool   // appended bytes not yet fsynced
	ackDirty atomic.Bool   // cursor written but not fsynced

	// wmu serialises Append and guards the writer's state.
	wmu   sync.Mutex
	wbuf  []byte
	wsize int64 // size of the active segment
	// writeFailing: the last Append failed to write (logged once).
	writeFailing bool

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

// Lost returns how many samples were lost to damage since Open: records
// that failed their checksum or did not decode, and samples of segments
// found missing, emptied, zero-filled, cut short or quarantined. They are
// included in Dropped. See "Damage" in the package documentation for how
// they are counted and where the count is a lower bound.
func (s *Spool) Lost() uint64 { return s.lost.Load() }

// addLost counts n samples lost to damage.
func (s *Spool) addLost(n uint64) {
	s.lost.Add(n)
	s.dropped.Add(n)
}

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

// DeadLetterName is the file name of the dead-letter file that
// [DeadLetterPath] puts in a spool directory; Open leaves it alone.
const DeadLetterName = "deadletter.jsonl"

// DeadLetterPath returns the default dead-letter file of the spool in dir.
func DeadLetterPath(dir string) string { return filepath.Join(dir, DeadLetterName) }
