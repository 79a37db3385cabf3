package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// SourceOptions configure how the Bridge takes one source's samples.
type SourceOptions struct {
	// QueueSize, when above zero, gives the source an inbox of that many
	// samples between its Emit and the sinks' queues, drained by a
	// goroutine of the Bridge. Zero (the default): Emit offers the samples
	// to the sinks' queues itself, and waits there when a sink's policy is
	// OverflowBlock. At most MaxQueueSize.
	QueueSize int `yaml:"queue_size"`
	// Overflow is the inbox's policy when it is full: OverflowBlock (Emit
	// waits; nothing is lost) or OverflowDropOldest (counted in
	// SourceStats.Dropped; Emit never waits). OverflowSpool is not allowed.
	Overflow Overflow `yaml:"overflow"`
	// Report is report by exception for the source's points: the default
	// for every point without its own entry in PointReport. The zero Report
	// passes every sample. A file sets it where it describes the device
	// (its report key), not in the inbox block, hence no YAML key here.
	Report Report `yaml:"-"`
	// PointReport holds, by Sample.Point, the settings of points that have
	// their own, merged with Report ([Report.Merge]). The map is copied by
	// AddSourceWith.
	PointReport map[string]Report `yaml:"-"`
}

// Validate checks the options and returns every problem as a [*FieldError]
// with the YAML key as its path.
func (o SourceOptions) Validate() error {
	var errs []error
	if o.QueueSize < 0 || o.QueueSize > MaxQueueSize {
		errs = append(errs, FieldErrorf("queue_size", "%d is out of range: want 0 (no inbox) to %d samples", o.QueueSize, MaxQueueSize))
	}
	switch o.Overflow {
	case OverflowBlock, OverflowDropOldest:
	case OverflowSpool:
		errs = append(errs, FieldErrorf("overflow", "spool is for sinks: a source inbox takes block or drop_oldest"))
	default:
		errs = append(errs, FieldErrorf("overflow", "unknown overflow policy %d", o.Overflow))
	}
	// Paths "report.deadband", "point_report[voltage_l1].heartbeat".
	if err := validateReports(o.Report, o.PointReport); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// inboxBatch is how many samples the inbox pump offers the sinks at once.
const inboxBatch = 512

type sourceRunner struct {
	b       *Bridge
	name    string
	src     Source
	seq     atomic.Uint64
	running atomic.Bool

	emitMu  sync.Mutex // serialises Emit; held while it blocks
	scratch []Sample
	all     []Sample      // scratch with the suppressed samples, for unfiltered sinks
	filter  *reportFilter // report by exception, nil when off; under emitMu
	health  HealthReporter
	upSince time.Time // Health.Since when it was last seen up, under emitMu

	// Counters (and the inbox), under mu.
	mu        sync.Mutex
	c         counters
	emitted   uint64
	forwarded uint64
	inbox     *ringQueue
	notEmpty  chan struct{}
	notFull   chan struct{}
	pumpBuf   []Sample
	pumpF     []Sample // the samples of pumpBuf that report by exception passed, when split
	pumpN     int      // samples of pumpBuf in flight
	taken     []int    // per sink, how many of them it took
	stopped   bool     // the inbox was drained at shutdown

	suppressed uint64 // by report by exception, under mu
	unfiltered uint64 // passed because the filter tracks MaxReportPoints points, under mu

	errMu sync.Mutex
	err   error
}

func newSourceRunner(b *Bridge, name string, src Source, opts SourceOptions) *sourceRunner {
	r := &sourceRunner{b: b, name: name, src: src, filter: newReportFilter(opts.Report, opts.PointReport)}
	r.health, _ = src.(HealthReporter)
	if opts.QueueSize > 0 {
		r.notEmpty = make(chan struct{}, 1)
		r.notFull = make(chan struct{}, 1)
		r.inbox = newRingQueue(owner{mu: &r.mu, c: &r.c, notEmpty: r.notEmpty, notFull: r.notFull}, opts.QueueSize, opts.Overflow)
		r.pumpBuf = make([]Sample, min(opts.QueueSize, inboxBatch))
	}
	return r
}

func (r *sourceRunner) run(ctx context.Context) (err error) {
	r.running.Store(true)
	var pump sync.WaitGroup
	pumpCtx, stopPump := context.WithCancel(ctx)
	if r.inbox != nil {
		pump.Add(1)
		go func() {
			defer pump.Done()
			r.pump(pumpCtx, false)
		}()
	}
	defer func() {
		if p := recover(); p != nil {
			err = errorf("source %q panicked: %v", r.name, p)
		}
		stopPump()
		pump.Wait()
		r.running.Store(false)
		r.errMu.Lock()
		r.err = err
		r.errMu.Unlock()
		if err != nil && !errors.Is(err, context.Canceled) {
			r.b.log.Error("bridge: source stopped", "source", r.name, "err", err)
		}
	}()
	err = r.src.Run(ctx, r)
	if err != nil {
		err = fmt.Errorf("bridge: source %q: %w", r.name, err)
	}
	return err
}

// pump moves samples from the inbox to the sinks until ctx ends or, when
// final, until the inbox is empty. A batch that a blocked sink did not take
// before ctx ended stays in flight, with what each sink took so far, for
// the next pump; the final pump gives up on it at the drain deadline.
func (r *sourceRunner) pump(ctx context.Context, final bool) {
	if r.taken == nil {
		r.taken = make([]int, len(r.b.sinks))
	}
	for {
		if r.pumpN == 0 {
			n, _ := r.inbox.peek(r.pumpBuf)
			if n == 0 {
				if final {
					return
				}
				select {
				case <-r.notEmpty:
					continue
				case <-ctx.Done():
					return
				}
			}
			r.pumpN = n
			clear(r.taken)
			if r.b.split && r.filter != nil {
				// The inbox holds the suppressed samples too, for the
				// unfiltered sinks: they are the ones without a number.
				r.pumpF = r.pumpF[:0]
				for _, s := range r.pumpBuf[:n] {
					if s.Seq != 0 {
						r.pumpF = append(r.pumpF, s)
					}
				}
			}
		}
		all := r.pumpBuf[:r.pumpN]
		filtered := all
		if r.b.split && r.filter != nil {
			filtered = r.pumpF
		}
		if err := r.b.offer(ctx, filtered, all, r.taken); err != nil {
			if !final || ctx.Err() == nil && !errors.Is(err, ErrClosed) {
				return
			}
			r.b.refuse(filtered, all, r.taken)
		}
		n := r.pumpN
		r.pumpN = 0
		r.mu.Lock()
		r.forwarded += uint64(len(filtered))
		r.suppressed += uint64(n - len(filtered))
		r.c.inflight -= n
		r.mu.Unlock()
		_ = r.inbox.ack(n)
	}
}

// finishInbox offers what is left in the inbox to the sinks, after the
// source stopped, until ctx (the drain deadline) ends; the rest is counted
// as left.
func (r *sourceRunner) finishInbox(ctx context.Context) {
	r.pump(ctx, true)
	r.mu.Lock()
	r.stopped = true
	r.c.left += r.inbox.left()
	r.mu.Unlock()
}

func (r *sourceRunner) leftCount() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.c.left
}

func (r *sourceRunner) errText() string {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if r.err == nil {
		return ""
	}
	return r.err.Error()
}

// Emit passes the samples through report by exception, numbers those that
// go on and have no sequence number, and hands them to the inbox, or to the
// sinks. Suppressed samples take no sequence number, so the numbers a
// source's reported samples carry have no gaps: a gap downstream is a loss.
// When a sink takes every sample (SinkOptions.Unfiltered), the suppressed
// samples go on too, for that sink only, with Seq 0.
func (r *sourceRunner) Emit(ctx context.Context, batch []Sample) error {
	if len(batch) == 0 {
		return nil
	}
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	f := r.filter
	split := f != nil && r.b.split
	var suppressed, unfiltered uint64
	var now int64
	if f != nil {
		r.checkReconnect(f)
		now = f.now()
	}
	seq := r.seq.Load()
	if f == nil {
		// Without report by exception: copy and number.
		r.scratch = append(r.scratch[:0], batch...)
		for i := range r.scratch {
			if r.scratch[i].Seq == 0 {
				seq++
				r.scratch[i].Seq = seq
			}
		}
	} else {
		r.scratch = r.scratch[:0]
		r.all = r.all[:0]
		for i := range batch {
			ok, unf := f.pass(&batch[i], now)
			if unf {
				unfiltered++
			}
			if !ok {
				suppressed++
				if split {
					r.all = append(r.all, batch[i])
					r.all[len(r.all)-1].Seq = 0 // the numbered samples are the reported ones
				}
				continue
			}
			r.scratch = append(r.scratch, batch[i])
			if p := &r.scratch[len(r.scratch)-1]; p.Seq == 0 {
				seq++
				p.Seq = seq
			}
			if split {
				r.all = append(r.all, r.scratch[len(r.scratch)-1])
			}
		}
	}
	r.seq.Store(seq)
	all := r.scratch
	if split {
		all = r.all
	}
	n := uint64(len(r.scratch))
	if r.inbox != nil {
		// The inbox counts what it takes (c.accepted), under the lock that
		// a snapshot takes; the suppressed samples are counted first.
		// Those that go into the inbox for the unfiltered sinks are
		// counted as suppressed when they leave it (pump).
		if !split && suppressed+unfiltered > 0 || split && unfiltered > 0 {
			r.mu.Lock()
			if !split {
				r.emitted += suppressed
				r.suppressed += suppressed
			}
			r.unfiltered += unfiltered
			r.mu.Unlock()
		}
		if len(all) == 0 {
			return nil
		}
		_, err := r.inbox.push(ctx, all)
		return err
	}
	var err error
	if len(all) > 0 {
		err = r.b.emit(ctx, r.scratch, all) // counts what a sink refused
	}
	r.mu.Lock()
	r.emitted += uint64(len(batch))
	r.forwarded += n
	r.suppressed += suppressed
	r.unfiltered += unfiltered
	r.mu.Unlock()
	return err
}

// checkReconnect forgets what report by exception remembers of the
// source's points when the source's own health ([HealthReporter]) says it
// came up since the last batch (a reconnect, or a restart of its Run): the
// first sample of each point after that is reported, whatever its value,
// even when no Bad sample came in between. Under emitMu.
func (r *sourceRunner) checkReconnect(f *reportFilter) {
	if r.health == nil {
		return
	}
	h := r.health.Health()
	if h.Up && !h.Since.Equal(r.upSince) {
		f.reset()
		r.upSince = h.Since
	}
}

func (r *sourceRunner) snapshot() SourceStats {
	r.mu.Lock()
	st := SourceStats{
		Name:      r.name,
		Emitted:   r.emitted + r.c.accepted,
		Forwarded: r.forwarded,
		Dropped:   r.c.dropped,
		Left:      r.c.left,
		InFlight:  int64(r.c.inflight),
		Running:   r.running.Load(),
	}
	st.Suppressed, st.Unfiltered = r.suppressed, r.unfiltered
	if r.inbox != nil && !r.stopped {
		st.Queued = int64(r.inbox.queued())
	}
	r.mu.Unlock()
	st.Err = r.errText()
	if h, ok := r.src.(HealthReporter); ok {
		health := h.Health()
		st.Health = &health
	}
	return st
}
