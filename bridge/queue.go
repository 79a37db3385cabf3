package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// queue is a sink's (or a source inbox's) bounded store of samples waiting
// to be written, as seen by the runner that owns it. push, peek, ack and
// unpeek take the runner's mutex themselves, around the parts that touch
// shared state (a spool Append may block on its own full policy and a Peek
// reads the disk: neither holds the mutex meanwhile); len, drain and left
// are called with it held.
//
// A queue counts what it accepts and drops in the counters it was built
// with, so that every sample is in exactly one counter at any moment the
// runner's mutex is free.
type queue interface {
	// push adds batch under the overflow policy and returns how many of
	// its samples it consumed (accepted, or accepted and dropped). It
	// returns an error only when it did not consume them all: ctx ended
	// while blocked, or the queue is draining ([ErrClosed]). The caller
	// counts the rest as refused when it gives up on them.
	push(ctx context.Context, batch []Sample) (int, error)
	// peek copies up to len(buf) of the oldest samples that are not in
	// flight into buf and marks them in flight; 0 when there are none.
	peek(buf []Sample) (int, error)
	// ack removes the n in-flight samples: they were delivered, rejected or
	// given up.
	ack(n int) error
	// unpeek returns the in-flight samples to the queue without removing
	// them (an aborted write whose samples stay where they were).
	unpeek()
	// len is how many samples wait, not counting those in flight.
	len() int64
	// drain marks the queue as receiving no more samples; later pushes
	// return ErrClosed.
	drain()
	// left counts what is still queued as left undelivered, at the end of
	// the writer; for a memory queue it also discards it.
	left() uint64
}

// counters are a sink's (or inbox's) sample counters. They are guarded by the
// owner's mutex, so that a snapshot taken under it adds up: Accepted +
// Replayed = Delivered + Rejected + Failed + Dropped + Aborted + Left +
// Queued + InFlight.
type counters struct {
	accepted, replayed, refused                uint64
	delivered, retried, rejected, deadLettered uint64
	failed, dropped, aborted, left, spooled    uint64
	spoolFailed                                uint64 // samples the spool could not store (kept in memory instead)
	inflight                                   int
}

// owner is what a ringQueue shares with the runner that owns it.
type owner struct {
	mu       *sync.Mutex
	c        *counters
	notEmpty chan struct{}
	notFull  chan struct{}
	// wantAt, when set, is how many queued samples the reader wants before
	// it is woken (1 while it waits for any; the batch size while it
	// lingers), so that a push into a lingering queue does not wake it for
	// nothing. Guarded by mu.
	wantAt *int
}

// ringQueue is a fixed-size ring of samples in memory. peek takes samples
// out of the ring at once (the writer has its copy), so the samples in
// flight take no room and dropping the oldest never touches them; they are
// counted in flight until ack.
type ringQueue struct {
	r        owner
	policy   Overflow // OverflowBlock or OverflowDropOldest
	buf      []Sample
	head, n  int
	draining bool
}

func newRingQueue(r owner, size int, policy Overflow) *ringQueue {
	return &ringQueue{r: r, policy: policy, buf: make([]Sample, size)}
}

// push: the runner's mutex must NOT be held; push takes it per step, since
// a blocking push waits for room with the mutex free.
func (q *ringQueue) push(ctx context.Context, batch []Sample) (int, error) {
	r := q.r
	size := len(q.buf)
	done := 0
	for done < len(batch) {
		r.mu.Lock()
		if q.draining {
			r.mu.Unlock()
			return done, ErrClosed
		}
		k := q.putLocked(batch[done:])
		room := q.n < size
		wake := k > 0 && (r.wantAt == nil || q.n >= *r.wantAt)
		r.mu.Unlock()
		if wake {
			signal(r.notEmpty)
		}
		done += k
		if done == len(batch) {
			if room && q.policy == OverflowBlock {
				signal(r.notFull) // pass the wake-up on to another blocked emitter
			}
			return done, nil
		}
		// Only OverflowBlock leaves samples unplaced.
		select {
		case <-r.notFull:
		case <-ctx.Done():
			return done, ctx.Err()
		}
	}
	return done, nil
}

// putLocked places as much of batch as the policy allows and returns how many
// samples of it were consumed (accepted, or accepted and dropped).
func (q *ringQueue) putLocked(batch []Sample) int {
	c := q.r.c
	size := len(q.buf)
	free := size - q.n
	consumed := 0
	if q.policy == OverflowDropOldest && free < len(batch) {
		if len(batch) > size {
			// More than the ring holds: the oldest of the batch itself go
			// first.
			skip := len(batch) - size
			c.accepted += uint64(skip)
			c.dropped += uint64(skip)
			batch = batch[skip:]
			consumed = skip
		}
		if drop := min(len(batch)-free, q.n); drop > 0 {
			// No need to clear the dropped slots: the copy below
			// overwrites exactly the free and the dropped ones.
			q.head = (q.head + drop) % size
			q.n -= drop
			c.dropped += uint64(drop)
			free += drop
		}
	}
	k := min(free, len(batch))
	tail := (q.head + q.n) % size
	n := copy(q.buf[tail:], batch[:k])
	copy(q.buf, batch[n:k])
	q.n += k
	c.accepted += uint64(k)
	return consumed + k
}

func (q *ringQueue) peek(buf []Sample) (int, error) {
	q.r.mu.Lock()
	k := q.peekLocked(buf)
	q.r.mu.Unlock()
	if k > 0 {
		signal(q.r.notFull)
	}
	return k, nil
}

func (q *ringQueue) peekLocked(buf []Sample) int {
	size := len(q.buf)
	k := min(q.n, len(buf))
	n := copy(buf[:k], q.buf[q.head:min(q.head+k, size)])
	copy(buf[n:k], q.buf[:k-n])
	clear(q.buf[q.head : q.head+n]) // do not keep strings alive
	clear(q.buf[:k-n])
	q.head = (q.head + k) % size
	q.n -= k
	q.r.c.inflight += k
	return k
}

// ack: the samples left the ring at peek; the caller has counted them.
func (q *ringQueue) ack(int) error { return nil }

// unpeek cannot put samples back into a ring; the callers never need to
// (an aborted write from memory counts its samples as aborted).
func (q *ringQueue) unpeek() {}

func (q *ringQueue) len() int64  { return int64(q.n) }
func (q *ringQueue) drain()      { q.draining = true }
func (q *ringQueue) empty() bool { return q.n == 0 }
func (q *ringQueue) queued() int { return q.n }

func (q *ringQueue) left() uint64 {
	n := q.n
	size := len(q.buf)
	for i := 0; i < n; i++ {
		q.buf[(q.head+i)%size] = Sample{}
	}
	q.n = 0
	q.draining = true
	return uint64(n)
}

// spoolQueue feeds a sink from its durable Spool. Every sample is appended
// to the spool first and removed only after the sink delivered it.
//
// When the spool cannot store (a full disk, a file-size limit, an I/O
// error), the sink does not lose what it accepts: the samples go to a
// memory fallback ring of QueueSize samples (dropping its oldest, counted,
// when that fills too), the sink is reported down with the OS error, and the
// writer delivers the spool's backlog first and then the fallback, so the
// order is kept. While the fallback holds samples, new samples join it;
// once it is empty, appends go to the spool again.
type spoolQueue struct {
	r       *sinkRunner
	spool   Spool
	size    int        // fallback capacity
	mem     *ringQueue // fallback, made on the first append failure
	fromMem bool       // the samples in flight came from mem
	peeked  int        // samples in flight from the spool

	base     uint64 // spool.Dropped() when the queue was made
	backlog  uint64 // spool.Len() when the queue was made
	stored   uint64 // samples the spool accepted from push
	acked    uint64 // samples acknowledged out of the spool
	spoolErr error  // the last append error, nil once an append worked
	draining bool
}

func newSpoolQueue(r *sinkRunner, s Spool, size int) *spoolQueue {
	q := &spoolQueue{r: r, spool: s, size: size, base: s.Dropped()}
	n := s.Len()
	if n < 0 {
		n = 0
	}
	q.backlog = uint64(n)
	r.c.replayed = q.backlog
	return q
}

// push appends to the spool (without the runner's mutex, since Append may
// block on the spool's own full policy) and counts under it.
func (q *spoolQueue) push(ctx context.Context, batch []Sample) (int, error) {
	r := q.r
	r.mu.Lock()
	if q.draining {
		r.mu.Unlock()
		return 0, ErrClosed
	}
	useMem := q.mem != nil && !q.mem.empty()
	if useMem {
		// The spool failed and the fallback still holds samples: join
		// them, so that the order is kept.
		q.mem.putLocked(batch)
		r.c.spoolFailed += uint64(len(batch))
		r.mu.Unlock()
		signal(r.notEmpty)
		return len(batch), nil
	}
	r.mu.Unlock()

	err := q.spool.Append(ctx, batch)
	stored := len(batch)
	if err != nil {
		stored = 0
		var partial interface{ StoredSamples() int }
		if errors.As(err, &partial) {
			stored = max(0, min(partial.StoredSamples(), len(batch)))
		}
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			// Blocked on a full spool until ctx ended (the spool's block
			// policy): the rest was not accepted, as with OverflowBlock.
			r.mu.Lock()
			q.stored += uint64(stored)
			r.c.accepted += uint64(stored)
			r.c.spooled += uint64(stored)
			r.mu.Unlock()
			signal(r.notEmpty)
			return stored, err
		}
	}
	r.mu.Lock()
	q.stored += uint64(stored)
	r.c.accepted += uint64(stored)
	r.c.spooled += uint64(stored)
	var wentDown bool
	if err != nil {
		rest := batch[stored:]
		if q.mem == nil {
			q.mem = newRingQueue(r.owner(), q.size, OverflowDropOldest)
		}
		q.mem.putLocked(rest)
		r.c.spoolFailed += uint64(len(rest))
		wentDown = q.spoolErr == nil
		q.spoolErr = err
	} else if q.spoolErr != nil {
		q.spoolErr = nil
		r.mu.Unlock()
		r.spoolUp()
		r.mu.Lock()
	}
	r.mu.Unlock()
	signal(r.notEmpty)
	if err != nil {
		r.spoolDown(fmt.Errorf("spool append: %w", err), wentDown)
	}
	return len(batch), nil
}

func (q *spoolQueue) peek(buf []Sample) (int, error) {
	// Take only samples that push has counted: an Append that has stored
	// but not yet returned must not be delivered before it is accepted, or
	// a snapshot in between would not add up.
	r := q.r
	r.mu.Lock()
	limit := q.spoolLen()
	r.mu.Unlock()
	var n int
	if limit > 0 {
		var err error
		n, err = q.spool.Peek(buf[:min(int64(len(buf)), limit)])
		if err != nil {
			return 0, err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if n > 0 {
		q.fromMem, q.peeked = false, n
		r.c.inflight += n
		return n, nil
	}
	if q.mem != nil && !q.mem.empty() {
		q.fromMem = true
		n = q.mem.peekLocked(buf)
	}
	return n, nil
}

func (q *spoolQueue) ack(n int) error {
	r := q.r
	r.mu.Lock()
	if q.fromMem {
		r.mu.Unlock()
		return nil
	}
	n = min(n, q.peeked)
	q.peeked -= n
	q.acked += uint64(n)
	r.mu.Unlock()
	return q.spool.Ack(n)
}

func (q *spoolQueue) unpeek() {
	r := q.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if q.fromMem {
		return
	}
	r.c.inflight -= q.peeked
	q.peeked = 0
}

// spoolLen is the samples in the spool by the bridge's own count: its
// backlog at start, plus what was stored, less what was acknowledged and
// what the spool dropped (full policy, or damage found while reading).
func (q *spoolQueue) spoolLen() int64 {
	dropped := q.spool.Dropped() - q.base
	n := int64(q.backlog+q.stored) - int64(q.acked) - int64(dropped)
	return max(n, 0)
}

func (q *spoolQueue) len() int64 {
	n := q.spoolLen()
	n -= int64(q.peeked)
	if q.mem != nil {
		n += int64(q.mem.queued())
	}
	return n
}

func (q *spoolQueue) drain() { q.draining = true }

// left counts the samples that stay undelivered (nothing is in flight any
// more): in the spool they are kept for the next run; in the memory
// fallback they are lost.
func (q *spoolQueue) left() uint64 {
	q.draining = true
	n := uint64(q.spoolLen())
	if q.mem != nil {
		n += q.mem.left()
	}
	return n
}
