package bridge

import (
	"context"
	"errors"
	"sync"
	"time"
)

// sinkRunner owns one sink: its bounded queue (a ring of samples, or the
// spool) and the writer goroutine that feeds the sink. It is the one owner of
// the sink's retries and of its counters.
type sinkRunner struct {
	b    *Bridge
	name string
	sink Sink
	opts SinkOptions

	mu       sync.Mutex // guards the queue's state, c and the health fields
	q        queue
	spoolQ   *spoolQueue // q, when the policy is OverflowSpool
	draining bool        // no more samples will come; write what is queued and stop

	notEmpty chan struct{} // cap 1: samples were added, or draining began
	notFull  chan struct{} // cap 1: room was made

	batch  []Sample // the writer's batch buffer, reused
	wantAt int      // see owner.wantAt; guarded by mu

	c counters

	// Health, under mu. The sink is up when neither its writes nor its
	// spool fail.
	errors    uint64
	lastError string
	writeDown bool
	spoolFail bool
	spoolErr  string
	downSince time.Time
	connected bool // the first Connect (or Write) succeeded
	finished  bool // the writer ended: what was queued is counted in Left
}

func newSinkRunner(b *Bridge, name string, sink Sink, opts SinkOptions) *sinkRunner {
	r := &sinkRunner{
		b: b, name: name, sink: sink, opts: opts,
		notEmpty: make(chan struct{}, 1),
		notFull:  make(chan struct{}, 1),
		batch:    make([]Sample, opts.BatchSize),
	}
	if opts.Overflow == OverflowSpool {
		r.spoolQ = newSpoolQueue(r, opts.Spool, opts.QueueSize)
		r.q = r.spoolQ
	} else {
		r.q = newRingQueue(r.owner(), opts.QueueSize, opts.Overflow)
	}
	return r
}

func (r *sinkRunner) owner() owner {
	return owner{mu: &r.mu, c: &r.c, notEmpty: r.notEmpty, notFull: r.notFull, wantAt: &r.wantAt}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// push adds batch to the queue under the overflow policy and returns how
// many samples it took.
func (r *sinkRunner) push(ctx context.Context, batch []Sample) (int, error) {
	if len(batch) == 0 {
		return 0, nil
	}
	return r.q.push(ctx, batch)
}

// refuse counts n samples offered and given up on.
func (r *sinkRunner) refuse(n int) {
	if n > 0 {
		r.mu.Lock()
		r.c.refused += uint64(n)
		r.mu.Unlock()
	}
}

func (r *sinkRunner) beginDrain() {
	r.mu.Lock()
	r.draining = true
	r.q.drain()
	r.mu.Unlock()
	signal(r.notEmpty)
	signal(r.notFull) // wake blocked emitters: they get ErrClosed
}

// run is the writer goroutine: it takes batches from the queue and delivers
// them until draining is done or ctx (aborted at the drain deadline) ends,
// then closes the sink.
func (r *sinkRunner) run(ctx context.Context) {
	defer r.close()
	if c, ok := r.sink.(Connector); ok {
		if !r.connect(ctx, c) {
			r.countLeft()
			return
		}
	}
	w := writerWait{timer: time.NewTimer(time.Hour), flushed: true}
	w.timer.Stop()
	defer w.timer.Stop()
	for {
		batch, ok := r.next(ctx, &w)
		if !ok {
			break
		}
		r.deliver(ctx, batch)
		w.flushed = false
		if ctx.Err() != nil {
			break
		}
	}
	r.flush(ctx)
	r.countLeft()
}

// writerPace is the least time between two rounds of writes of a sink's
// writer under load, when SinkOptions.Linger is zero (see there): waking a
// goroutine costs more CPU than encoding a hundred samples, so a source
// that emits batch after batch should not wake the writer for each.
const writerPace = time.Millisecond

// writerWait is the writer's state between batches.
type writerWait struct {
	timer   *time.Timer
	flushed bool      // nothing written since the last flush
	inRound bool      // writing what the queue holds, batch after batch
	round   time.Time // when the last round began
}

// next waits for and returns the next batch; false when the writer should
// stop.
func (r *sinkRunner) next(ctx context.Context, w *writerWait) ([]Sample, bool) {
	var deadline <-chan time.Time // set while the timer runs for this wait
	expired := false
	for {
		r.mu.Lock()
		n, draining := r.q.len(), r.draining
		ready, wait := r.readyLocked(n, draining, expired, w)
		r.mu.Unlock()
		if ready {
			k, err := r.q.peek(r.batch)
			if err != nil {
				r.noteError(errorf("sink %q: spool read: %w", r.name, err))
				if !r.sleep(ctx, r.opts.Retry.Delay(1)) {
					return nil, false
				}
				continue
			}
			if k > 0 {
				if !w.inRound {
					w.inRound, w.round = true, time.Now()
				}
				return r.batch[:k], true
			}
			n = 0
		}
		if n == 0 {
			w.inRound = false
			if draining {
				return nil, false
			}
			if !w.flushed {
				r.flush(ctx)
				w.flushed = true
				continue
			}
		}
		if wait > 0 && deadline == nil {
			w.timer.Reset(wait)
			deadline = w.timer.C
		}
		select {
		case <-r.notEmpty:
		case <-deadline:
			expired, deadline = true, nil
		case <-ctx.Done():
			return nil, false
		}
	}
}

// readyLocked says whether the writer should take a batch now, with n
// samples queued, and, when not, sets wantAt (how many queued samples
// wake it) and returns how long it waits at most (0: until woken).
func (r *sinkRunner) readyLocked(n int64, draining, expired bool, w *writerWait) (ready bool, wait time.Duration) {
	r.wantAt = 1
	if r.opts.Linger > 0 {
		// Lingering: wait for a full batch, or the linger time from when
		// the first sample was seen.
		ready = n > 0 && (n >= int64(r.opts.BatchSize) || draining || expired)
		if n > 0 && !ready {
			r.wantAt = r.opts.BatchSize
			wait = r.opts.Linger
		}
		return ready, wait
	}
	if n > 0 && (draining || w.inRound) {
		return true, 0
	}
	since := time.Since(w.round)
	if expired || since >= writerPace {
		return n > 0, 0 // idle long enough: the first sample wakes the writer
	}
	// Within writerPace of the last round: wait out the rest of it, unless
	// the queue fills up to half.
	full := max(1, r.opts.QueueSize/2)
	if n >= int64(full) {
		return true, 0
	}
	r.wantAt = full
	return false, writerPace - since
}

// deliver writes batch until every sample is delivered, rejected, given up
// or the writer is aborted, and then takes the batch out of the queue and
// counts it, in one step, so that the counters add up at every moment. A
// batch from the spool that is cut off by the drain deadline stays in the
// spool, uncounted, for the next run (whole: a spool acknowledges batches
// from the oldest; the seq numbers let consumers drop what a partial write
// had delivered).
func (r *sinkRunner) deliver(ctx context.Context, batch []Sample) {
	pending := batch
	total := len(batch)
	var delivered, rejected, deadLettered, failed int
	for attempt := 1; ; attempt++ {
		err := r.sink.Write(ctx, pending)
		if err == nil {
			delivered += len(pending)
			pending = pending[:0]
			r.noteUp()
			break
		}
		if ctx.Err() != nil {
			// Cut off by the drain deadline: the sink may or may not have
			// delivered the batch.
			break
		}
		r.noteError(err)
		var be *BatchError
		if errors.As(err, &be) && len(be.Failed) > 0 {
			// Partial failure: keep only the retriable failed samples, in
			// order; put the permanent ones in the dead letter.
			kept := 0
			var refused []Sample
			var reason error
			for i := range pending {
				ferr, failed := be.Failed[i]
				switch {
				case !failed:
					delivered++
				case !IsRetriable(ferr):
					refused = append(refused, pending[i])
					reason = ferr
				default:
					pending[kept] = pending[i]
					kept++
				}
			}
			rejected += len(refused)
			if r.reject(refused, reason) {
				deadLettered += len(refused)
			}
			pending = pending[:kept]
			if kept == 0 {
				break
			}
		} else if !IsRetriable(err) {
			rejected += len(pending)
			if r.reject(pending, err) {
				deadLettered += len(pending)
			}
			pending = pending[:0]
			break
		}
		if r.opts.Overflow != OverflowSpool && r.opts.Retry.MaxAttempts > 0 && attempt >= r.opts.Retry.MaxAttempts {
			failed += len(pending)
			r.b.log.Error("bridge: sink write given up", "sink", r.name, "samples", len(pending), "attempts", attempt, "err", err)
			pending = pending[:0]
			break
		}
		r.mu.Lock()
		r.c.retried += uint64(len(pending))
		r.mu.Unlock()
		if !r.sleep(ctx, r.retryDelay(attempt, err)) {
			break
		}
	}
	if len(pending) > 0 && r.spoolQ != nil && !r.spoolQ.fromMem {
		r.q.unpeek()
		return
	}
	aborted := len(pending)
	r.mu.Lock()
	c := &r.c
	c.delivered += uint64(delivered)
	c.rejected += uint64(rejected)
	c.deadLettered += uint64(deadLettered)
	c.failed += uint64(failed)
	c.aborted += uint64(aborted)
	c.inflight -= total
	r.mu.Unlock()
	if err := r.q.ack(total); err != nil {
		r.noteError(errorf("sink %q: spool ack: %w", r.name, err))
	}
}

// reject logs samples the sink refused for good and keeps them in the dead
// letter, when there is one; it reports whether they were kept.
func (r *sinkRunner) reject(samples []Sample, reason error) bool {
	if len(samples) == 0 {
		return false
	}
	kept := false
	if dl := r.opts.DeadLetter; dl != nil {
		if err := dl.Put(samples, reason); err != nil {
			r.noteError(errorf("sink %q: dead letter: %w", r.name, err))
		} else {
			kept = true
		}
	}
	r.b.log.Error("bridge: sink rejected samples", "sink", r.name, "samples", len(samples), "dead_letter", kept, "err", reason)
	return kept
}

// retryDelay is the backoff before attempt n+1, at least what the server
// asked for with RetryAfter, and at most Retry.Max.
func (r *sinkRunner) retryDelay(attempt int, err error) time.Duration {
	d := r.opts.Retry.Delay(attempt)
	if after, ok := RetryAfterDelay(err); ok && after > d {
		d = min(after, r.opts.Retry.Max)
	}
	return d
}

func (r *sinkRunner) connect(ctx context.Context, c Connector) bool {
	for attempt := 1; ; attempt++ {
		err := c.Connect(ctx)
		if err == nil {
			r.noteUp()
			return true
		}
		r.noteError(errorf("sink %q: connect: %w", r.name, err))
		if !r.sleep(ctx, r.retryDelay(attempt, err)) {
			return false
		}
		r.mu.Lock()
		stop := r.draining && r.q.len() == 0
		r.mu.Unlock()
		if stop {
			return false
		}
	}
}

func (r *sinkRunner) flush(ctx context.Context) {
	if f, ok := r.sink.(Flusher); ok {
		if err := f.Flush(ctx); err != nil {
			r.noteError(errorf("sink %q: flush: %w", r.name, err))
		}
	}
}

// sleep waits d or until ctx ends; false when ctx ended.
func (r *sinkRunner) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// countLeft counts what is still queued as left undelivered (a memory
// queue's samples are lost; a spool's are kept for the next run).
func (r *sinkRunner) countLeft() {
	r.mu.Lock()
	r.draining = true
	r.finished = true
	r.c.left += r.q.left()
	r.mu.Unlock()
}

func (r *sinkRunner) close() {
	ctx, cancel := context.WithTimeout(context.Background(), r.b.opts.CloseTimeout)
	defer cancel()
	if err := r.sink.Close(ctx); err != nil {
		r.noteError(errorf("sink %q: close: %w", r.name, err))
	}
	if r.opts.Spool != nil {
		if err := r.opts.Spool.Close(); err != nil {
			r.noteError(errorf("sink %q: close spool: %w", r.name, err))
		}
	}
	if r.opts.DeadLetter != nil {
		if err := r.opts.DeadLetter.Close(); err != nil {
			r.noteError(errorf("sink %q: close dead letter: %w", r.name, err))
		}
	}
}

func (r *sinkRunner) noteError(err error) {
	r.mu.Lock()
	r.errors++
	r.lastError = err.Error()
	wasUp := r.upLocked()
	r.writeDown = true
	if wasUp {
		r.downSince = time.Now()
	}
	r.mu.Unlock()
	if wasUp {
		r.b.log.Warn("bridge: sink down", "sink", r.name, "err", err)
	}
}

func (r *sinkRunner) noteUp() {
	r.mu.Lock()
	wasUp := r.upLocked()
	first := !r.connected
	r.connected = true
	r.writeDown = false
	up := r.upLocked()
	if up {
		r.downSince = time.Time{}
	}
	r.mu.Unlock()
	switch {
	case first:
		r.b.log.Info("bridge: sink connected", "sink", r.name)
	case up && !wasUp:
		r.b.log.Info("bridge: sink up", "sink", r.name)
	}
}

// spoolDown records that the sink's spool cannot store; logged once per
// failure period, with the OS error.
func (r *sinkRunner) spoolDown(err error, first bool) {
	r.mu.Lock()
	r.errors++
	r.lastError = err.Error()
	wasUp := r.upLocked()
	r.spoolFail = true
	r.spoolErr = err.Error()
	if wasUp {
		r.downSince = time.Now()
	}
	r.mu.Unlock()
	if first {
		r.b.log.Error("bridge: sink's spool cannot store; keeping its samples in memory (dropping the oldest when full) until it can", "sink", r.name, "queue_size", r.opts.QueueSize, "err", err)
	}
}

func (r *sinkRunner) spoolUp() {
	r.mu.Lock()
	r.spoolFail = false
	r.spoolErr = ""
	up := r.upLocked()
	if up {
		r.downSince = time.Time{}
	}
	r.mu.Unlock()
	r.b.log.Info("bridge: sink's spool stores again", "sink", r.name)
}

func (r *sinkRunner) upLocked() bool { return !r.writeDown && !r.spoolFail }

func (r *sinkRunner) snapshot() SinkStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := &r.c
	st := SinkStats{
		Name:         r.name,
		Accepted:     c.accepted,
		Refused:      c.refused,
		Replayed:     c.replayed,
		Delivered:    c.delivered,
		Retried:      c.retried,
		Rejected:     c.rejected,
		DeadLettered: c.deadLettered,
		Failed:       c.failed,
		Dropped:      c.dropped,
		Aborted:      c.aborted,
		Spooled:      c.spooled,
		SpoolFailed:  c.spoolFailed,
		Left:         c.left,
		InFlight:     int64(c.inflight),
		Errors:       r.errors,
		LastError:    r.lastError,
		SpoolError:   r.spoolErr,
		Up:           r.upLocked(),
		DownSince:    r.downSince,
		Connected:    r.connected,
	}
	if !r.finished {
		st.Queued = r.q.len()
	}
	if r.spoolQ != nil {
		st.Dropped += r.opts.Spool.Dropped() - r.spoolQ.base
		if l, ok := r.opts.Spool.(interface{ Lost() uint64 }); ok {
			st.SpoolLost = l.Lost()
		}
	}
	return st
}
