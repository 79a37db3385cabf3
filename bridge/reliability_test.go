package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
)

// failingSpool is a memSpool whose Append fails with EFBIG (what a file-size
// limit or a full disk gives) while failing is set.
type failingSpool struct {
	memSpool
	failing atomic.Bool
	fails   atomic.Int64
}

type storedErr struct {
	err    error
	stored int
}

func (e *storedErr) Error() string      { return e.err.Error() }
func (e *storedErr) Unwrap() error      { return e.err }
func (e *storedErr) StoredSamples() int { return e.stored }

func (s *failingSpool) Append(ctx context.Context, batch []bridge.Sample) error {
	if s.failing.Load() {
		s.fails.Add(1)
		return &storedErr{err: fmt.Errorf("spool: write seg-000001: %w", syscall.EFBIG)}
	}
	return s.memSpool.Append(ctx, batch)
}

// checkSink asserts that one sink's counters add up.
func checkSink(t *testing.T, st bridge.SinkStats) {
	t.Helper()
	in := st.Accepted + st.Replayed
	out := st.Delivered + st.Rejected + st.Failed + st.Dropped + st.Aborted + st.Left + uint64(st.Queued) + uint64(st.InFlight)
	assert.Equal(t, in, out, "sink %s counters do not add up: %+v", st.Name, st)
}

// Defect 1 of the reliability issue: a spool that cannot append made Emit
// return at the first sink, so every sink after it starved, uncounted, with
// the failing sink reported up.
func TestBridgeSpoolAppendFailureDoesNotStarveOtherSinks(t *testing.T) {
	defer goleak.VerifyNone(t)
	sp := &failingSpool{}
	sp.failing.Store(true)
	spooled := bridgetest.NewRecorder()
	after := bridgetest.NewRecorder()
	logs := &logRecorder{}
	b := bridge.New(bridge.Options{Logger: logs.logger()})
	require.NoError(t, b.AddSource("s", countingSource("s", 1000, 10)))
	require.NoError(t, b.AddSink("mqtt", spooled, bridge.SinkOptions{Overflow: bridge.OverflowSpool, Spool: sp}))
	require.NoError(t, b.AddSink("stdout", after, bridge.SinkOptions{}))
	require.NoError(t, b.Run(context.Background()))

	assert.Equal(t, seq(1000), values(after.Samples()), "the sink after the failing spool got everything")
	assert.Equal(t, seq(1000), values(spooled.Samples()), "the spool's sink got its samples from the memory fallback, in order")
	st := b.Stats()
	ms := st.Sinks[0]
	assert.False(t, ms.Up, "a sink whose spool cannot store is down")
	assert.Contains(t, ms.SpoolError, "file too large", "the OS error is reported")
	assert.EqualValues(t, 1000, ms.SpoolFailed)
	assert.EqualValues(t, 1000, ms.Accepted)
	assert.Positive(t, ms.Errors)
	checkSink(t, ms)
	checkSink(t, st.Sinks[1])
	assert.Equal(t, 1, logs.count("spool cannot store"), "logged once per failure period, not per batch")

	// Once the spool stores again, the sink is up again.
	sp2 := &failingSpool{}
	sp2.failing.Store(true)
	rec := bridgetest.NewRecorder()
	b2 := bridge.New(bridge.Options{Logger: quiet})
	var emitted atomic.Int64
	require.NoError(t, b2.AddSource("s", bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
		for i := 0; i < 20; i++ {
			if i == 10 {
				// Wait until the fallback has drained into the sink, then
				// let the spool store again.
				for b2.Stats().Sinks[0].Delivered < 100 {
					time.Sleep(time.Millisecond)
				}
				sp2.failing.Store(false)
			}
			if err := out.Emit(ctx, bridgetest.Samples("s", 10, t0.Add(time.Duration(i)*time.Second))); err != nil {
				return err
			}
			emitted.Add(10)
		}
		return nil
	})))
	require.NoError(t, b2.AddSink("k", rec, bridge.SinkOptions{Overflow: bridge.OverflowSpool, Spool: sp2}))
	require.NoError(t, b2.Run(context.Background()))
	st2 := b2.Stats().Sinks[0]
	assert.True(t, st2.Up, "up again once the spool stores: %+v", st2)
	assert.EqualValues(t, 200, st2.Delivered)
	assert.EqualValues(t, 100, st2.Spooled)
	checkSink(t, st2)
}

// logRecorder counts log records by message substring.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) logger() *slog.Logger { return slog.New(&logHandler{l}) }

func (l *logRecorder) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if strings.Contains(m, sub) {
			n++
		}
	}
	return n
}

type logHandler struct{ l *logRecorder }

func (h *logHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	h.l.mu.Lock()
	h.l.msgs = append(h.l.msgs, r.Message)
	h.l.mu.Unlock()
	return nil
}
func (h *logHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logHandler) WithGroup(string) slog.Handler      { return h }

// memDeadLetter records what the bridge rejects.
type memDeadLetter struct {
	mu      sync.Mutex
	samples []bridge.Sample
	reasons []string
	closed  bool
}

func (d *memDeadLetter) Put(batch []bridge.Sample, reason error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.samples = append(d.samples, batch...)
	d.reasons = append(d.reasons, reason.Error())
	return nil
}

func (d *memDeadLetter) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return nil
}

func TestBridgeRejectedSamplesGoToTheDeadLetter(t *testing.T) {
	dl := &memDeadLetter{}
	s := &partialSink{seen: map[int64]int{}, rec: bridgetest.NewRecorder()}
	b := bridge.New(bridge.Options{Logger: quiet})
	require.NoError(t, b.AddSource("s", countingSource("s", 10, 10)))
	require.NoError(t, b.AddSink("k", s, bridge.SinkOptions{DeadLetter: dl, Retry: bridge.Retry{Initial: time.Millisecond}}))
	require.NoError(t, b.Run(context.Background()))
	st := b.Stats().Sinks[0]
	assert.EqualValues(t, 1, st.Rejected)
	assert.EqualValues(t, 1, st.DeadLettered)
	assert.EqualValues(t, 9, st.Delivered)
	checkSink(t, st)
	require.Len(t, dl.samples, 1)
	v, _ := dl.samples[0].Value.Int()
	assert.EqualValues(t, 5, v)
	assert.Contains(t, dl.reasons[0], "value 5 refused")
	assert.True(t, dl.closed, "the bridge closes the dead letter")
}

// retryAfterSink fails its first write with a Retry-After of 20s.
type retryAfterSink struct {
	bridgetest.Recorder
	calls atomic.Int32
	times []time.Time
}

func (s *retryAfterSink) Write(ctx context.Context, batch []bridge.Sample) error {
	s.times = append(s.times, time.Now())
	if s.calls.Add(1) == 1 {
		return bridge.RetryAfter(errors.New("503 Service Unavailable"), 20*time.Second)
	}
	return s.Recorder.Write(ctx, batch)
}

func TestBridgeHonoursRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &retryAfterSink{Recorder: *bridgetest.NewRecorder()}
		b := bridge.New(bridge.Options{Logger: quiet, DrainTimeout: time.Minute})
		require.NoError(t, b.AddSource("s", countingSource("s", 5, 5)))
		require.NoError(t, b.AddSink("k", s, bridge.SinkOptions{Retry: bridge.Retry{Initial: 10 * time.Millisecond, Max: time.Minute}}))
		require.NoError(t, b.Run(context.Background()))
		require.Len(t, s.times, 2)
		assert.GreaterOrEqual(t, s.times[1].Sub(s.times[0]), 20*time.Second, "waited what the server asked")
		assert.Equal(t, seq(5), values(s.Samples()))
	})
	synctest.Test(t, func(t *testing.T) {
		s := &retryAfterSink{Recorder: *bridgetest.NewRecorder()}
		b := bridge.New(bridge.Options{Logger: quiet, DrainTimeout: time.Minute})
		require.NoError(t, b.AddSource("s", countingSource("s", 5, 5)))
		require.NoError(t, b.AddSink("k", s, bridge.SinkOptions{Retry: bridge.Retry{Initial: 10 * time.Millisecond, Max: 2 * time.Second}}))
		require.NoError(t, b.Run(context.Background()))
		require.Len(t, s.times, 2)
		assert.LessOrEqual(t, s.times[1].Sub(s.times[0]), 2*time.Second, "never more than Retry.Max")
	})
}

// healthySource reports health.
type healthySource struct {
	bridge.Source
	h bridge.Health
}

func (s healthySource) Health() bridge.Health { return s.h }

func TestBridgeStatsCarrySourceHealth(t *testing.T) {
	since := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	b := bridge.New(bridge.Options{Logger: quiet})
	require.NoError(t, b.AddSource("down", healthySource{countingSource("down", 1, 1), bridge.Health{Up: false, Since: since, Reason: "no matching endpoint"}}))
	require.NoError(t, b.AddSource("plain", countingSource("plain", 1, 1)))
	st := b.Stats()
	require.NotNil(t, st.Sources[0].Health)
	assert.Equal(t, "no matching endpoint", st.Sources[0].Health.Reason)
	assert.Equal(t, since, st.Sources[0].Health.Since)
	assert.Nil(t, st.Sources[1].Health, "a source that does not report health has none")
}

// gatedSink blocks every Write until open is closed or ctx ends.
type gatedSink struct {
	bridgetest.Recorder
	open chan struct{}
}

func (s *gatedSink) Write(ctx context.Context, batch []bridge.Sample) error {
	select {
	case <-s.open:
		return s.Recorder.Write(ctx, batch)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestBridgeAccountsForEverySample drives sources (one straight, one with an
// inbox) into a live sink and a stalled one under each overflow policy,
// scraping the counters while it runs: at every scrape each sink's counters
// add up, and at the end every sample a source emitted is in exactly one
// counter of each sink.
func TestBridgeAccountsForEverySample(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy bridge.Overflow
		inbox  bridge.Overflow
	}{
		{"block", bridge.OverflowBlock, bridge.OverflowBlock},
		{"drop_oldest", bridge.OverflowDropOldest, bridge.OverflowDropOldest},
		{"spool", bridge.OverflowSpool, bridge.OverflowDropOldest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			stalled := &gatedSink{Recorder: *bridgetest.NewRecorder(), open: make(chan struct{})}
			live := bridgetest.NewRecorder()
			b := bridge.New(bridge.Options{Logger: quiet, DrainTimeout: 300 * time.Millisecond})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var produced atomic.Int64
			src := func(name string) bridge.Source {
				return bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
					for i := 0; ; i++ {
						if err := out.Emit(ctx, bridgetest.Samples(name, 7, t0.Add(time.Duration(i)*time.Second))); err != nil {
							return nil
						}
						produced.Add(7)
						if ctx.Err() != nil {
							return nil
						}
					}
				})
			}
			require.NoError(t, b.AddSource("modbus", src("modbus")))
			require.NoError(t, b.AddSourceWith("opcua", src("opcua"), bridge.SourceOptions{QueueSize: 50, Overflow: tc.inbox}))
			opts := bridge.SinkOptions{QueueSize: 100, BatchSize: 10, Overflow: tc.policy}
			if tc.policy == bridge.OverflowSpool {
				opts.Spool = &memSpool{}
			}
			require.NoError(t, b.AddSink("stalled", stalled, opts))
			require.NoError(t, b.AddSink("live", live, bridge.SinkOptions{QueueSize: 100, BatchSize: 10, Overflow: tc.policy, Spool: map[bool]bridge.Spool{true: &memSpool{}}[tc.policy == bridge.OverflowSpool]}))
			done := make(chan error, 1)
			go func() { done <- b.Run(ctx) }()
			for i := 0; i < 200; i++ {
				st := b.Stats()
				for _, s := range st.Sinks {
					checkSink(t, s)
				}
				checkSources(t, st.Sources)
			}
			require.Eventually(t, func() bool { return produced.Load() > 2000 || tc.policy == bridge.OverflowBlock }, 10*time.Second, time.Millisecond)
			cancel()
			<-done
			st := b.Stats()
			var forwarded uint64
			for _, s := range st.Sources {
				forwarded += s.Forwarded
			}
			checkSources(t, st.Sources)
			for _, s := range st.Sinks {
				checkSink(t, s)
				assert.Equal(t, forwarded, s.Accepted+s.Refused, "sink %s: every sample offered was accepted or refused: %+v", s.Name, s)
				assert.Zero(t, s.Queued)
				assert.Zero(t, s.InFlight)
			}
			if tc.policy == bridge.OverflowBlock {
				for _, s := range st.Sinks {
					assert.Zero(t, s.Dropped, "block drops nothing")
				}
				for _, s := range st.Sources {
					assert.Zero(t, s.Dropped, "block drops nothing")
				}
			}
			assert.EqualValues(t, len(live.Samples()), st.Sinks[1].Delivered)
		})
	}
}

func checkSources(t *testing.T, sources []bridge.SourceStats) {
	t.Helper()
	for _, s := range sources {
		assert.Equal(t, s.Emitted, s.Suppressed+s.Forwarded+s.Dropped+s.Left+uint64(s.Queued)+uint64(s.InFlight), "source %s counters do not add up: %+v", s.Name, s)
		assert.LessOrEqual(t, s.Unfiltered, s.Forwarded, "source %s: unfiltered samples are among the forwarded: %+v", s.Name, s)
	}
}

// backlogSpool starts with samples from an earlier run.
func TestBridgeCountsTheSpoolBacklogAsReplayed(t *testing.T) {
	sp := &memSpool{samples: bridgetest.Samples("s", 40, t0)}
	rec := bridgetest.NewRecorder()
	b := bridge.New(bridge.Options{Logger: quiet})
	require.NoError(t, b.AddSource("s", countingSource("s", 10, 10)))
	require.NoError(t, b.AddSink("k", rec, bridge.SinkOptions{Overflow: bridge.OverflowSpool, Spool: sp}))
	st := b.Stats().Sinks[0]
	assert.EqualValues(t, 40, st.Replayed)
	assert.EqualValues(t, 40, st.Queued)
	require.NoError(t, b.Run(context.Background()))
	st = b.Stats().Sinks[0]
	assert.EqualValues(t, 10, st.Accepted)
	assert.EqualValues(t, 50, st.Delivered, "delivered = accepted + replayed, never more than both")
	checkSink(t, st)
	assert.Zero(t, sp.Len())
}

func TestValidateReportsEveryFieldWithItsPath(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want []string
	}{
		{"huge queue", bridge.SinkOptions{QueueSize: 1_000_000_000_000}.Validate(), []string{"queue_size"}},
		{"retry initial above max", bridge.SinkOptions{Retry: bridge.Retry{Initial: time.Minute, Max: time.Second}}.Validate(), []string{"retry.initial"}},
		{"max attempts with spool", bridge.SinkOptions{Overflow: bridge.OverflowSpool, Retry: bridge.Retry{MaxAttempts: 3}}.Validate(), []string{"retry.max_attempts"}},
		{"many at once", bridge.SinkOptions{QueueSize: -1, BatchSize: -1, Linger: time.Hour, Retry: bridge.Retry{Jitter: 2, Multiplier: 100}}.Validate(),
			[]string{"queue_size", "batch_size", "linger", "retry.multiplier", "retry.jitter"}},
		{"batch above queue", bridge.SinkOptions{QueueSize: 10, BatchSize: 20}.Validate(), []string{"batch_size"}},
		{"inbox spool", bridge.SourceOptions{QueueSize: 10, Overflow: bridge.OverflowSpool}.Validate(), []string{"overflow"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Error(t, tc.err)
			var paths []string
			for _, fe := range bridge.FieldErrors(tc.err) {
				paths = append(paths, fe.Path)
			}
			assert.Equal(t, tc.want, paths, "%v", tc.err)
		})
	}
	assert.NoError(t, bridge.SinkOptions{}.Validate(), "zero values are the defaults")
	assert.NoError(t, bridge.SinkOptions{QueueSize: 100, BatchSize: 10, Linger: time.Second, Retry: bridge.Retry{Initial: time.Second, Max: time.Minute, MaxAttempts: 5}}.Validate())

	var o bridge.Overflow
	require.NoError(t, o.UnmarshalText([]byte("drop_oldest")))
	assert.Equal(t, bridge.OverflowDropOldest, o)
	err := o.UnmarshalText([]byte("drop-oldest"))
	assert.ErrorContains(t, err, `did you mean "drop_oldest"`)
}

func TestFieldErrorsWalksWrappedJoins(t *testing.T) {
	joined := errors.Join(bridge.FieldErrorf("qos", "3 is not 0, 1 or 2"), bridge.FieldErrorf("topic", "empty"))
	wrapped := fmt.Errorf("mqtt: %w", fmt.Errorf("config: %w", joined))
	var paths []string
	for _, fe := range bridge.FieldErrors(errors.Join(wrapped, errors.New("plain"))) {
		paths = append(paths, fe.Path+"|"+fe.Msg)
	}
	assert.Equal(t, []string{"qos|3 is not 0, 1 or 2", "topic|empty", "|plain"}, paths)
}
