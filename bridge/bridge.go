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

// AddSource adds a source under a name unique among the sources. It must be
// called before Run.
func (b *Bridge) AddSource(name string, src Source) error {
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
	for _, s := range b.sources {
		if s.name == name {
			return errorf("add source %q: a source of that name exists", name)
		}
	}
	r := &sourceRunner{b: b, name: name, src: src}
	r.seq.Store(b.opts.SeqStart - 1)
	b.sources = append(b.sources, r)
	return nil
}

// AddSink adds a sink under a name unique among the sinks. It checks the
// options and returns every problem at once. It must be called before Run.
func (b *Bridge) AddSink(name string, sink Sink, opts SinkOptions) error {
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
	if opts.QueueSize < 0 {
		bad("queue size %d is negative", opts.QueueSize)
	}
	if opts.BatchSize < 0 {
		bad("batch size %d is negative", opts.BatchSize)
	}
	if opts.Linger < 0 {
		bad("linger %v is negative", opts.Linger)
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
	if opts.Retry.MaxAttempts < 0 {
		bad("retry max attempts %d is negative", opts.Retry.MaxAttempts)
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
	default:
		bad("unknown overflow policy %d", opts.Overflow)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	opts.Retry = opts.Retry.withDefaults()
	b.sinks = append(b.sinks, newSinkRunner(b, name, sink, opts))
	return nil
}

// Emit hands samples to every sink's queue, as an [Emitter]. Samples without
// a sequence number are not numbered: number them, where needed, in the
// source (samples from sources added with AddSource are numbered per source).
func (b *Bridge) Emit(ctx context.Context, batch []Sample) error {
	if b.closing.Load() {
		return ErrClosed
	}
	for _, s := range b.sinks {
		if err := s.push(ctx, batch); err != nil {
			return err
		}
	}
	return nil
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

	srcCtx, stopSources := context.WithCancel(ctx)
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
	stopSources()
	<-allDone
	b.closing.Store(true)
	for _, s := range b.sinks {
		s.beginDrain()
	}

	drained := make(chan struct{})
	go func() { writers.Wait(); close(drained) }()
	timer := time.NewTimer(b.opts.DrainTimeout)
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
	for _, s := range b.sinks {
		if n := s.stats.left.Load(); n > 0 {
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

// Stats returns the counters of every source and sink at this moment.
func (b *Bridge) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	var st Stats
	for _, s := range b.sources {
		st.Sources = append(st.Sources, SourceStats{
			Name:    s.name,
			Emitted: s.emitted.Load(),
			Running: s.running.Load(),
			Err:     s.errText(),
		})
	}
	for _, s := range b.sinks {
		st.Sinks = append(st.Sinks, s.snapshot())
	}
	return st
}

// Stats are the Bridge's counters, as returned by [Bridge.Stats].
type Stats struct {
	Sources []SourceStats
	Sinks   []SinkStats
}

// SourceStats count one source's samples.
type SourceStats struct {
	Name    string
	Emitted uint64 // samples the source emitted and the bridge accepted
	Running bool   // Run has been called and has not returned
	Err     string // the error Run returned, if it has
}

// SinkStats count one sink's samples. Every accepted sample ends up counted in
// exactly one of Delivered, Rejected, Failed, Dropped or Left, or is still
// Queued.
type SinkStats struct {
	Name      string
	Accepted  uint64 // samples taken into the queue (or spool)
	Delivered uint64 // samples the sink acknowledged
	Retried   uint64 // sample write attempts that failed and were retried
	Rejected  uint64 // samples the sink refused with a permanent error
	Failed    uint64 // samples given up after Retry.MaxAttempts
	Dropped   uint64 // samples dropped by the overflow policy (or by the spool when full)
	Spooled   uint64 // samples appended to the spool
	Left      uint64 // samples undelivered when the drain deadline passed (in memory: lost; in a spool: kept)
	Queued    int64  // samples waiting now, in memory or in the spool
	Errors    uint64 // failed Write or Connect calls
	LastError string // the last Write or Connect error, "" when none
	Up        bool   // the last Write or Connect succeeded (true until one fails)
	// DownSince is when the sink last went from up to down; zero when up.
	DownSince time.Time
}

type sourceRunner struct {
	b       *Bridge
	name    string
	src     Source
	seq     atomic.Uint64
	emitted atomic.Uint64
	running atomic.Bool

	mu      sync.Mutex // serialises Emit; held while it blocks
	scratch []Sample

	errMu sync.Mutex
	err   error
}

func (r *sourceRunner) run(ctx context.Context) (err error) {
	r.running.Store(true)
	defer func() {
		if p := recover(); p != nil {
			err = errorf("source %q panicked: %v", r.name, p)
		}
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

func (r *sourceRunner) errText() string {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if r.err == nil {
		return ""
	}
	return r.err.Error()
}

// Emit numbers the samples that have no sequence number and hands them to
// the bridge.
func (r *sourceRunner) Emit(ctx context.Context, batch []Sample) error {
	if len(batch) == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.scratch = append(r.scratch[:0], batch...)
	seq := r.seq.Add(uint64(len(batch))) - uint64(len(batch))
	for i := range r.scratch {
		if r.scratch[i].Seq == 0 {
			r.scratch[i].Seq = seq + uint64(i) + 1
		}
	}
	if err := r.b.Emit(ctx, r.scratch); err != nil {
		return err
	}
	r.emitted.Add(uint64(len(batch)))
	return nil
}
