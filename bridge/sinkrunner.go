package bridge

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// sinkRunner owns one sink: its bounded queue (a ring of samples, or the
// spool) and the writer goroutine that feeds the sink.
type sinkRunner struct {
	b    *Bridge
	name string
	sink Sink
	opts SinkOptions

	mu       sync.Mutex
	ring     []Sample // len == QueueSize
	head, n  int
	draining bool // no more samples will come; write what is queued and stop

	notEmpty chan struct{} // cap 1: samples were added, or draining began
	notFull  chan struct{} // cap 1: room was made

	batch []Sample // the writer's batch buffer, reused

	stats sinkCounters
}

type sinkCounters struct {
	accepted, delivered, retried, rejected, failed, dropped, spooled, left, errors atomic.Uint64

	mu        sync.Mutex
	lastError string
	down      bool
	downSince time.Time
}

func newSinkRunner(b *Bridge, name string, sink Sink, opts SinkOptions) *sinkRunner {
	r := &sinkRunner{
		b: b, name: name, sink: sink, opts: opts,
		notEmpty: make(chan struct{}, 1),
		notFull:  make(chan struct{}, 1),
		batch:    make([]Sample, opts.BatchSize),
	}
	if opts.Overflow != OverflowSpool {
		r.ring = make([]Sample, opts.QueueSize)
	}
	return r
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// push adds batch to the queue under the overflow policy.
func (r *sinkRunner) push(ctx context.Context, batch []Sample) error {
	if len(batch) == 0 {
		return nil
	}
	if r.opts.Overflow == OverflowSpool {
		if err := r.opts.Spool.Append(ctx, batch); err != nil {
			var partial interface{ StoredSamples() int }
			if errors.As(err, &partial) {
				n := uint64(max(0, min(partial.StoredSamples(), len(batch))))
				r.stats.accepted.Add(n)
				r.stats.spooled.Add(n)
				signal(r.notEmpty)
			}
			return errorf("sink %q: spool: %w", r.name, err)
		}
		r.stats.accepted.Add(uint64(len(batch)))
		r.stats.spooled.Add(uint64(len(batch)))
		signal(r.notEmpty)
		return nil
	}
	size := len(r.ring)
	for len(batch) > 0 {
		r.mu.Lock()
		if r.draining {
			r.mu.Unlock()
			return ErrClosed
		}
		free := size - r.n
		if free == 0 || (r.opts.Overflow == OverflowDropOldest && free < len(batch)) {
			if r.opts.Overflow == OverflowBlock {
				r.mu.Unlock()
				select {
				case <-r.notFull:
					continue
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			// Drop the oldest to make room for what this batch can fit.
			if len(batch) > size {
				skip := len(batch) - size
				r.stats.accepted.Add(uint64(skip))
				r.stats.dropped.Add(uint64(skip))
				batch = batch[skip:]
			}
			drop := len(batch) - free
			if drop > r.n {
				drop = r.n
			}
			// No need to clear the dropped slots: the copy below
			// overwrites exactly the free and the dropped ones.
			r.head = (r.head + drop) % size
			r.n -= drop
			r.stats.dropped.Add(uint64(drop))
			free += drop
		}
		k := min(free, len(batch))
		tail := (r.head + r.n) % size
		c := copy(r.ring[tail:], batch[:k])
		copy(r.ring, batch[c:k])
		r.n += k
		room := r.n < size
		r.mu.Unlock()
		r.stats.accepted.Add(uint64(k))
		batch = batch[k:]
		signal(r.notEmpty)
		if room && r.opts.Overflow == OverflowBlock {
			signal(r.notFull) // pass the wake-up on to another blocked emitter
		}
	}
	return nil
}

// discard removes the k oldest queued samples, clearing their slots so the
// ring does not keep strings alive. r.mu must be held.
func (r *sinkRunner) discard(k int) {
	size := len(r.ring)
	for i := 0; i < k; i++ {
		r.ring[(r.head+i)%size] = Sample{}
	}
	r.head = (r.head + k) % size
	r.n -= k
}

func (r *sinkRunner) beginDrain() {
	r.mu.Lock()
	r.draining = true
	r.mu.Unlock()
	signal(r.notEmpty)
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
	var linger *time.Timer
	if r.opts.Linger > 0 {
		linger = time.NewTimer(time.Hour)
		linger.Stop()
		defer linger.Stop()
	}
	flushed := true
	for {
		batch, ok := r.next(ctx, linger, &flushed)
		if !ok {
			break
		}
		r.deliver(ctx, batch)
		flushed = false
		if ctx.Err() != nil {
			break
		}
	}
	r.flush(ctx)
	r.countLeft()
}

// next waits for and returns the next batch; false when the writer should
// stop.
func (r *sinkRunner) next(ctx context.Context, linger *time.Timer, flushed *bool) ([]Sample, bool) {
	if r.opts.Overflow == OverflowSpool {
		return r.nextFromSpool(ctx, flushed)
	}
	var deadline <-chan time.Time // set while lingering
	expired := false
	for {
		r.mu.Lock()
		n, draining := r.n, r.draining
		if n > 0 && (n >= r.opts.BatchSize || draining || linger == nil || expired) {
			k := min(n, r.opts.BatchSize)
			size := len(r.ring)
			c := copy(r.batch[:k], r.ring[r.head:min(r.head+k, size)])
			copy(r.batch[c:k], r.ring[:k-c])
			r.discard(k)
			r.mu.Unlock()
			signal(r.notFull)
			return r.batch[:k], true
		}
		r.mu.Unlock()
		if n == 0 {
			if draining {
				return nil, false
			}
			if !*flushed {
				r.flush(ctx)
				*flushed = true
				continue
			}
		} else if deadline == nil {
			linger.Reset(r.opts.Linger)
			deadline = linger.C
		}
		select {
		case <-r.notEmpty:
		case <-deadline:
			expired = true
		case <-ctx.Done():
			return nil, false
		}
	}
}

func (r *sinkRunner) nextFromSpool(ctx context.Context, flushed *bool) ([]Sample, bool) {
	for {
		n, err := r.opts.Spool.Peek(r.batch)
		if err != nil {
			r.noteError(errorf("sink %q: spool read: %w", r.name, err))
			if !r.sleep(ctx, r.opts.Retry.Delay(1)) {
				return nil, false
			}
			continue
		}
		if n > 0 {
			return r.batch[:n], true
		}
		r.mu.Lock()
		draining := r.draining
		r.mu.Unlock()
		if draining {
			// Samples appended before draining began are in the spool: Peek
			// found none, so all are delivered.
			return nil, false
		}
		if !*flushed {
			r.flush(ctx)
			*flushed = true
		}
		select {
		case <-r.notEmpty:
		case <-ctx.Done():
			return nil, false
		}
	}
}

// deliver writes batch until every sample is delivered, rejected, given up
// or the writer is aborted.
func (r *sinkRunner) deliver(ctx context.Context, batch []Sample) {
	pending := batch
	total := len(batch)
	for attempt := 1; ; attempt++ {
		err := r.sink.Write(ctx, pending)
		if err == nil {
			r.stats.delivered.Add(uint64(len(pending)))
			pending = pending[:0]
			r.noteUp()
			break
		}
		r.noteError(err)
		var be *BatchError
		if errors.As(err, &be) && len(be.Failed) > 0 {
			// Partial failure: keep only the failed samples, in order.
			kept := 0
			for i := range pending {
				ferr, failed := be.Failed[i]
				switch {
				case !failed:
					r.stats.delivered.Add(1)
				case IsPermanent(ferr):
					r.stats.rejected.Add(1)
				default:
					pending[kept] = pending[i]
					kept++
				}
			}
			pending = pending[:kept]
			if kept == 0 {
				break
			}
		} else if !IsRetriable(err) {
			r.stats.rejected.Add(uint64(len(pending)))
			r.b.log.Error("bridge: sink rejected samples", "sink", r.name, "samples", len(pending), "err", err)
			pending = pending[:0]
			break
		}
		if ctx.Err() != nil {
			break
		}
		if r.opts.Overflow != OverflowSpool && r.opts.Retry.MaxAttempts > 0 && attempt >= r.opts.Retry.MaxAttempts {
			r.stats.failed.Add(uint64(len(pending)))
			r.b.log.Error("bridge: sink write given up", "sink", r.name, "samples", len(pending), "attempts", attempt, "err", err)
			pending = pending[:0]
			break
		}
		r.stats.retried.Add(uint64(len(pending)))
		if !r.sleep(ctx, r.opts.Retry.Delay(attempt)) {
			break
		}
	}
	if r.opts.Overflow == OverflowSpool {
		if len(pending) > 0 {
			// Aborted: the batch stays in the spool for the next run.
			return
		}
		if err := r.opts.Spool.Ack(total); err != nil {
			r.noteError(errorf("sink %q: spool ack: %w", r.name, err))
		}
		return
	}
	if len(pending) > 0 { // aborted at the drain deadline
		r.stats.left.Add(uint64(len(pending)))
	}
}

func (r *sinkRunner) connect(ctx context.Context, c Connector) bool {
	for attempt := 1; ; attempt++ {
		err := c.Connect(ctx)
		if err == nil {
			r.noteUp()
			return true
		}
		r.noteError(errorf("sink %q: connect: %w", r.name, err))
		if !r.sleep(ctx, r.opts.Retry.Delay(attempt)) {
			return false
		}
		r.mu.Lock()
		draining := r.draining
		r.mu.Unlock()
		if draining && r.queued() == 0 {
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

// countLeft counts what is still queued in memory as left undelivered.
func (r *sinkRunner) countLeft() {
	if r.opts.Overflow == OverflowSpool {
		if n := r.opts.Spool.Len(); n > 0 {
			r.stats.left.Add(uint64(n))
		}
		return
	}
	r.mu.Lock()
	n := r.n
	r.discard(n)
	r.draining = true
	r.mu.Unlock()
	r.stats.left.Add(uint64(n))
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
}

func (r *sinkRunner) queued() int64 {
	if r.opts.Overflow == OverflowSpool {
		return r.opts.Spool.Len()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return int64(r.n)
}

func (r *sinkRunner) noteError(err error) {
	r.stats.errors.Add(1)
	c := &r.stats
	c.mu.Lock()
	c.lastError = err.Error()
	wasDown := c.down
	if !wasDown {
		c.down = true
		c.downSince = time.Now()
	}
	c.mu.Unlock()
	if !wasDown {
		r.b.log.Warn("bridge: sink down", "sink", r.name, "err", err)
	}
}

func (r *sinkRunner) noteUp() {
	c := &r.stats
	c.mu.Lock()
	wasDown := c.down
	c.down = false
	c.downSince = time.Time{}
	c.mu.Unlock()
	if wasDown {
		r.b.log.Info("bridge: sink up", "sink", r.name)
	}
}

func (r *sinkRunner) snapshot() SinkStats {
	c := &r.stats
	st := SinkStats{
		Name:      r.name,
		Accepted:  c.accepted.Load(),
		Delivered: c.delivered.Load(),
		Retried:   c.retried.Load(),
		Rejected:  c.rejected.Load(),
		Failed:    c.failed.Load(),
		Dropped:   c.dropped.Load(),
		Spooled:   c.spooled.Load(),
		Left:      c.left.Load(),
		Errors:    c.errors.Load(),
		Queued:    r.queued(),
	}
	if r.opts.Spool != nil {
		st.Dropped += r.opts.Spool.Dropped()
	}
	c.mu.Lock()
	st.LastError, st.Up, st.DownSince = c.lastError, !c.down, c.downSince
	c.mu.Unlock()
	return st
}
