package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrDrainIncomplete is wrapped by the error Run returns when the drain
// deadline passed before every queued sample was delivered.
var ErrDrainIncomplete = errors.New("bridge: shutdown deadline passed with samples undelivered")

// Bridge runs sources into sinks. Each sink has its own bounded queue and
// writer goroutine, so one slow or dead sink never stalls the sources or the
// other sinks (unless its overflow policy is OverflowBlock, which the user
// chose). Samples are batched by count and linger time, writes are retried
// with exponential backoff and jitter, and every sample is counted: accepted,
// delivered, retried, spooled, rejected, failed, dropped.
//
// Add sources and sinks, then call Run. A Bridge is also an [Emitter], for
// programs that push samples themselves. Its methods are safe for concurrent
// use.
type Bridge struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	sources []*sourceRunner
	sinks   []*sinkRunner
	started bool

	closing atomic.Bool
	// writesOff is set when Run's shutdown begins: Write refuses from
	// then on (ErrShuttingDown), as the sources are stopping.
	writesOff atomic.Bool
	// split is set when a sink takes every sample (SinkOptions.Unfiltered):
	// sources with report by exception then hand on two streams. Set by
	// AddSink, before Run.
	split bool

	writeMu sync.Mutex // guards writes
	writes  map[writeKey]*writeState
}

// New returns a Bridge with the given options.
func New(opts Options) *Bridge {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 10 * time.Second
	}
	if opts.CloseTimeout <= 0 {
		opts.CloseTimeout = 5 * time.Second
	}
	if opts.SeqStart == 0 {
		opts.SeqStart = uint64(time.Now().UnixNano())
	}
	return &Bridge{opts: opts, log: opts.Logger}
}

// AddSource adds a source under a name unique among the sources, with the
// default [SourceOptions] (no inbox: its Emit hands samples straight to the
// sinks' queues). It must be called before Run.
func (b *Bridge) AddSource(name string, src Source) error {
	return b.AddSourceWith(name, src, SourceOptions{})
}

// AddSourceWith adds a source with options: a source that must not block
// (an OPC UA subscription, whose server drops notifications it cannot
// deliver) gets a bounded inbox of its own with its own overflow policy. It
// must be called before Run.
func (b *Bridge) AddSourceWith(name string, src Source, opts SourceOptions) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.started:
		return errorf("add source %q: the bridge is already running", name)
	case name == "":
		return errorf("add source: empty name")
	case src == nil:
		return errorf("add source %q: nil source", name)
	}
	if err := opts.Validate(); err != nil {
		return errorf("add source %q: %w", name, err)
	}
	for _, s := range b.sources {
		if s.name == name {
			return errorf("add source %q: a source of that name exists", name)
		}
	}
	r := newSourceRunner(b, name, src, opts)
	r.seq.Store(b.opts.SeqStart - 1)
	b.sources = append(b.sources, r)
	return nil
}

// AddSink adds a sink under a name unique among the sinks. It checks the
// options and returns every problem at once. It must be called before Run.
// A sink that is a [BridgeUser] is then given the bridge.
func (b *Bridge) AddSink(name string, sink Sink, opts SinkOptions) error {
	if err := b.addSink(name, sink, opts); err != nil {
		return err
	}
	if u, ok := sink.(BridgeUser); ok {
		u.UseBridge(b, name)
	}
	return nil
}

func (b *Bridge) addSink(name string, sink Sink, opts SinkOptions) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, errorf("add sink %q: "+format, append([]any{name}, args...)...))
	}
	if b.started {
		bad("the bridge is already running")
	}
	if name == "" {
		bad("empty name")
	}
	if sink == nil {
		bad("nil sink")
	}
	for _, s := range b.sinks {
		if s.name == name {
			bad("a sink of that name exists")
		}
	}
	if err := opts.Validate(); err != nil {
		for _, fe := range FieldErrors(err) {
			bad("%s", fe.Error())
		}
	}
	if opts.QueueSize == 0 {
		opts.QueueSize = 10000
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = 500
	}
	if opts.BatchSize > opts.QueueSize {
		opts.BatchSize = opts.QueueSize
	}
	switch opts.Overflow {
	case OverflowBlock, OverflowDropOldest:
		if opts.Spool != nil {
			bad("a spool is set but the overflow policy is %s, not spool", opts.Overflow)
		}
	case OverflowSpool:
		if opts.Spool == nil {
			bad("overflow policy spool needs SinkOptions.Spool")
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	opts.Retry = opts.Retry.withDefaults()
	b.split = b.split || opts.Unfiltered
	b.sinks = append(b.sinks, newSinkRunner(b, name, sink, opts))
	return nil
}

// Emit hands samples to every sink's queue, as an [Emitter]. Samples without
// a sequence number are not numbered: number them, where needed, in the
// source (samples from sources added with AddSource are numbered per source).
//
// One sink's failure never stops delivery to the others: every sink is
// offered the batch. Emit returns an error only when some sink did not take
// the samples because ctx ended while it waited for room (OverflowBlock), or
// the bridge is shutting down; those samples are counted in that sink's
// Refused.
func (b *Bridge) Emit(ctx context.Context, batch []Sample) error {
	return b.emit(ctx, batch, batch)
}

// emit offers filtered to the sinks that take report by exception's
// stream and all to those that take every sample (SinkOptions.Unfiltered).
func (b *Bridge) emit(ctx context.Context, filtered, all []Sample) error {
	if b.closing.Load() {
		return ErrClosed
	}
	if len(all) == 0 {
		return nil
	}
	// What each sink took; on the stack for the usual few sinks.
	var buf [8]int
	taken := buf[:0]
	if len(b.sinks) > len(buf) {
		taken = make([]int, 0, len(b.sinks))
	}
	taken = taken[:len(b.sinks)]
	err := b.offer(ctx, filtered, all, taken)
	if err != nil {
		b.refuse(filtered, all, taken)
	}
	return err
}

// offer offers filtered, or all to a sink that takes every sample, to
// every sink, each from where taken says it got to, and advances taken. It
// returns the first error of a sink that did not take all of it.
func (b *Bridge) offer(ctx context.Context, filtered, all []Sample, taken []int) error {
	var first error
	for i, s := range b.sinks {
		batch := filtered
		if s.opts.Unfiltered {
			batch = all
		}
		if taken[i] >= len(batch) {
			continue
		}
		n, err := s.push(ctx, batch[taken[i]:])
		taken[i] += n
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

// refuse counts, at each sink, the samples of its batch it did not take.
func (b *Bridge) refuse(filtered, all []Sample, taken []int) {
	for i, s := range b.sinks {
		n := len(filtered)
		if s.opts.Unfiltered {
			n = len(all)
		}
		s.refuse(n - taken[i])
	}
}

// Run runs every source and every sink writer until ctx ends, or until every
// source has returned (when there is at least one), then shuts down: the
// sources are stopped, the sinks get Options.DrainTimeout to deliver what is
// queued, and each sink is closed. Run returns the sources' errors and, when
// samples were left undelivered, an error wrapping [ErrDrainIncomplete] that
// says how many per sink (samples left in a spool are kept there, not lost).
// Run may be called once.
func (b *Bridge) Run(ctx context.Context) error {
	b.mu.Lock()
	if b.started {
		b.mu.Unlock()
		return errorf("Run called twice")
	}
	b.started = true
	b.mu.Unlock()

	// Writers run on their own context: they keep draining after ctx ends,
	// until the drain deadline.
	writeCtx, abortWriters := context.WithCancel(context.WithoutCancel(ctx))
	defer abortWriters()
	var writers sync.WaitGroup
	for _, s := range b.sinks {
		writers.Add(1)
		go func() {
			defer writers.Done()
			s.run(writeCtx)
		}()
	}

	// Sources stop when Run says so, after Write is off: a source that
	// saw ctx end before Write refused could otherwise get a write during
	// the shutdown.
	srcCtx, stopSources := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSources()
	var sources sync.WaitGroup
	allDone := make(chan struct{})
	errs := make([]error, len(b.sources))
	for i, s := range b.sources {
		sources.Add(1)
		go func() {
			defer sources.Done()
			errs[i] = s.run(srcCtx)
		}()
	}
	go func() { sources.Wait(); close(allDone) }()

	if len(b.sources) > 0 {
		select {
		case <-ctx.Done():
		case <-allDone:
		}
	} else {
		<-ctx.Done()
	}
	b.writesOff.Store(true)
	stopSources()
	<-allDone

	// Sources with an inbox: what they emitted goes on to the sinks, within
	// the drain deadline.
	drainDeadline := time.Now().Add(b.opts.DrainTimeout)
	pumpCtx, stopPumps := context.WithDeadline(context.WithoutCancel(ctx), drainDeadline)
	var pumps sync.WaitGroup
	for _, s := range b.sources {
		if s.inbox != nil {
			pumps.Add(1)
			go func() {
				defer pumps.Done()
				s.finishInbox(pumpCtx)
			}()
		}
	}
	pumps.Wait()
	stopPumps()
	b.closing.Store(true)
	for _, s := range b.sinks {
		s.beginDrain()
	}

	drained := make(chan struct{})
	go func() { writers.Wait(); close(drained) }()
	timer := time.NewTimer(max(time.Until(drainDeadline), 0))
	defer timer.Stop()
	select {
	case <-drained:
	case <-timer.C:
		b.log.Warn("bridge: drain deadline passed; aborting sink writes", "deadline", b.opts.DrainTimeout)
		abortWriters()
		<-drained
	}

	var left []string
	var total uint64
	for _, s := range b.sources {
		if n := s.leftCount(); n > 0 {
			left = append(left, fmt.Sprintf("source %s inbox: %d", s.name, n))
			total += n
		}
	}
	for _, s := range b.sinks {
		if st := s.snapshot(); st.Left+st.Aborted > 0 {
			n := st.Left + st.Aborted
			left = append(left, fmt.Sprintf("%s: %d", s.name, n))
			total += n
		}
	}
	if total > 0 {
		errs = append(errs, fmt.Errorf("%w: %d samples (%s)", ErrDrainIncomplete, total, strings.Join(left, ", ")))
		b.log.Warn("bridge: stopped with samples undelivered", "samples", total, "sinks", strings.Join(left, ", "))
	} else {
		b.log.Info("bridge: stopped; every accepted sample was delivered or spooled")
	}
	return errors.Join(errs...)
}

// Stats returns the counters of every source and sink at this moment. Each
// sink's counters are taken at one instant, so they add up (see
// [SinkStats]).
func (b *Bridge) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	var st Stats
	for _, s := range b.sources {
		st.Sources = append(st.Sources, s.snapshot())
	}
	for _, s := range b.sinks {
		st.Sinks = append(st.Sinks, s.snapshot())
	}
	st.Writes = b.writeStats()
	return st
}

// Stats are the Bridge's counters, as returned by [Bridge.Stats].
type Stats struct {
	Sources []SourceStats
	Sinks   []SinkStats
	Writes  []WriteStats // per source and point written, by Bridge.Write
}

// SourceStats count one source's samples and report its health. Every
// sample the source emitted is counted once: Emitted = Suppressed +
// Forwarded + Dropped + Left + Queued + InFlight (the last four only with an
// inbox).
type SourceStats struct {
	Name      string
	Emitted   uint64 // samples the source handed to Emit
	Forwarded uint64 // samples offered to the sinks' queues (each sink counts what it took)
	Dropped   uint64 // samples its inbox dropped under OverflowDropOldest
	Left      uint64 // samples still in its inbox at the drain deadline (lost)
	Queued    int64  // samples waiting in its inbox now
	InFlight  int64  // samples taken from its inbox and being offered to the sinks
	Running   bool   // Run has been called and has not returned
	Err       string // the error Run returned, if it has

	// Suppressed counts the samples report by exception kept from the sinks
	// (SourceOptions.Report): they said nothing new. Those that went on to
	// the sinks that take every sample (SinkOptions.Unfiltered) are counted
	// here, not in Forwarded.
	Suppressed uint64
	// Unfiltered counts the samples, among the forwarded ones, that report
	// by exception passed unexamined because it tracked MaxReportPoints
	// points of the source already.
	Unfiltered uint64
	// Health is the source's own report on its device, when it implements
	// [HealthReporter]; nil otherwise.
	Health *Health
}

// SinkStats count one sink's samples. At every snapshot they add up:
//
//	Accepted + Replayed = Delivered + Rejected + Failed + Dropped + Aborted + Left + Queued + InFlight
//
// and every sample offered to the sink was either Accepted or Refused.
type SinkStats struct {
	Name     string
	Accepted uint64 // samples taken into the queue (or spool) in this run
	Refused  uint64 // samples offered but not taken: the emitter's ctx ended while it waited for room, or the bridge was closing
	// Replayed is the spool's backlog from an earlier run, found when the
	// sink was added: samples delivered in this run that it did not accept
	// in this run.
	Replayed     uint64
	Delivered    uint64 // samples the sink acknowledged
	Retried      uint64 // sample write attempts that failed and were retried
	Rejected     uint64 // samples the sink refused with a permanent error
	DeadLettered uint64 // of the rejected samples, those kept in SinkOptions.DeadLetter
	Failed       uint64 // samples given up after Retry.MaxAttempts
	Dropped      uint64 // samples dropped by the overflow policy (or by the spool when full, or lost to spool damage found while reading)
	Aborted      uint64 // samples whose Write the drain deadline cut off: the sink may or may not have delivered them
	Spooled      uint64 // samples appended to the spool
	SpoolFailed  uint64 // samples the spool could not store, kept in the memory fallback instead
	// SpoolLost is what the spool reports as lost to damage (a deleted or
	// corrupted segment), found when it was opened or while reading, for
	// spools that count it (Lost() uint64, as bridge/spool does). Losses
	// found while reading are also in Dropped; those found at open happened
	// before this run and are in no other counter.
	SpoolLost  uint64
	Left       uint64 // samples undelivered when the drain deadline passed (in memory: lost; in a spool: kept)
	Queued     int64  // samples waiting now, in memory or in the spool
	InFlight   int64  // samples being written now
	Errors     uint64 // failed Write, Connect or spool calls
	LastError  string // the last such error, "" when none
	SpoolError string // why the spool cannot store now (the OS error), "" when it can
	Up         bool   // neither the last Write/Connect nor the spool failed
	Connected  bool   // the sink has connected (or written) successfully at least once
	// DownSince is when the sink last went from up to down; zero when up.
	DownSince time.Time
}
