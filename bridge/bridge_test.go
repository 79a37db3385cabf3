package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
)

var quiet = slog.New(slog.DiscardHandler)

// countingSource emits n samples in batches of size, numbered in Value, then
// returns.
func countingSource(name string, n, size int) bridge.Source {
	return bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
		batch := make([]bridge.Sample, 0, size)
		for i := 0; i < n; i++ {
			batch = append(batch, bridge.Sample{Source: name, Point: "p", Value: bridge.Int(int64(i)), Time: t0})
			if len(batch) == size || i == n-1 {
				if err := out.Emit(ctx, batch); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		return nil
	})
}

func values(samples []bridge.Sample) []int64 {
	out := make([]int64, len(samples))
	for i, s := range samples {
		out[i], _ = s.Value.Int()
	}
	return out
}

func seq(n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i)
	}
	return out
}

func TestBridgeDeliversEverySampleInOrder(t *testing.T) {
	defer goleak.VerifyNone(t)
	b := bridge.New(bridge.Options{Logger: quiet})
	rec1, rec2 := bridgetest.NewRecorder(), bridgetest.NewRecorder()
	require.NoError(t, b.AddSource("s", countingSource("s", 10000, 37)))
	require.NoError(t, b.AddSink("one", rec1, bridge.SinkOptions{QueueSize: 100, BatchSize: 30}))
	require.NoError(t, b.AddSink("two", rec2, bridge.SinkOptions{}))
	require.NoError(t, b.Run(context.Background()))
	assert.Equal(t, seq(10000), values(rec1.Samples()))
	assert.Equal(t, seq(10000), values(rec2.Samples()))
	assert.True(t, rec1.Closed() && rec2.Closed(), "sinks closed at the end of Run")

	st := b.Stats()
	require.Len(t, st.Sinks, 2)
	for _, s := range st.Sinks {
		assert.EqualValues(t, 10000, s.Accepted, s.Name)
		assert.EqualValues(t, 10000, s.Delivered, s.Name)
		assert.Zero(t, s.Dropped+s.Left+s.Failed+s.Rejected, s.Name)
		assert.True(t, s.Up)
	}
	assert.EqualValues(t, 10000, st.Sources[0].Emitted)

	// Sequence numbers: per source, consecutive, stamped identically for
	// every sink.
	got1, got2 := rec1.Samples(), rec2.Samples()
	for i := 1; i < len(got1); i++ {
		require.Equal(t, got1[i-1].Seq+1, got1[i].Seq)
		require.Equal(t, got1[i].Seq, got2[i].Seq)
	}
}

func TestBridgeBatchesRespectBatchSize(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	sink := bridge.SinkFunc(func(ctx context.Context, batch []bridge.Sample) error {
		mu.Lock()
		sizes = append(sizes, len(batch))
		mu.Unlock()
		return nil
	})
	b := bridge.New(bridge.Options{Logger: quiet})
	require.NoError(t, b.AddSource("s", countingSource("s", 1000, 100)))
	require.NoError(t, b.AddSink("k", sink, bridge.SinkOptions{BatchSize: 64}))
	require.NoError(t, b.Run(context.Background()))
	total := 0
	for _, n := range sizes {
		assert.LessOrEqual(t, n, 64)
		assert.Positive(t, n)
		total += n
	}
	assert.Equal(t, 1000, total)
}

func TestBridgeLingerFillsBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var writes []time.Duration
		start := time.Now()
		sink := bridge.SinkFunc(func(ctx context.Context, batch []bridge.Sample) error {
			mu.Lock()
			writes = append(writes, time.Since(start))
			mu.Unlock()
			return nil
		})
		// One sample every 10ms for 90ms, linger 45ms, batch 100: the first
		// write comes 45ms after the first sample, not at once, and carries
		// five samples; the second lingers from the sixth sample at 50ms.
		src := bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
			for i := 0; i < 10; i++ {
				if err := out.Emit(ctx, []bridge.Sample{{Source: "s", Point: "p", Value: bridge.Int(int64(i))}}); err != nil {
					return err
				}
				time.Sleep(10 * time.Millisecond)
			}
			<-ctx.Done()
			return nil
		})
		b := bridge.New(bridge.Options{Logger: quiet})
		require.NoError(t, b.AddSource("s", src))
		require.NoError(t, b.AddSink("k", sink, bridge.SinkOptions{BatchSize: 100, Linger: 45 * time.Millisecond}))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		require.NoError(t, b.Run(ctx))
		mu.Lock()
		defer mu.Unlock()
		require.Len(t, writes, 2, "two lingered batches: %v", writes)
		assert.Equal(t, 45*time.Millisecond, writes[0])
		assert.Equal(t, 95*time.Millisecond, writes[1])
		assert.EqualValues(t, 10, b.Stats().Sinks[0].Delivered)
	})
}

// TestWriterPacesWakeUps: without Linger, a writer that has been idle
// writes a sample at once, but under load it starts a round of writes at
// most once per millisecond, so that a source emitting batch after batch
// does not wake it for each; a queue half full wakes it at once, so that an
// emitter never waits on a full queue for the pace.
func TestWriterPacesWakeUps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		writes := map[time.Duration]int{} // samples written, by time since start
		written := make(chan struct{}, 1000)
		start := time.Now()
		sink := bridge.SinkFunc(func(ctx context.Context, batch []bridge.Sample) error {
			mu.Lock()
			writes[time.Since(start)] += len(batch)
			mu.Unlock()
			for range batch {
				written <- struct{}{}
			}
			return nil
		})
		var burstDone time.Duration
		src := bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
			emit := func() error {
				return out.Emit(ctx, []bridge.Sample{{Source: "s", Point: "p", Value: bridge.Int(1)}})
			}
			// Under load: 20 samples, each emitted once the one before
			// was written.
			for range 20 {
				if err := emit(); err != nil {
					return err
				}
				<-written
			}
			// One sample after the writer idled.
			time.Sleep(10 * time.Millisecond)
			if err := emit(); err != nil {
				return err
			}
			<-written
			// A burst of 300, more than the queue holds: the emitter
			// blocks until the writer makes room.
			time.Sleep(10 * time.Millisecond)
			for range 300 {
				if err := emit(); err != nil {
					return err
				}
			}
			burstDone = time.Since(start)
			<-ctx.Done()
			return nil
		})
		b := bridge.New(bridge.Options{Logger: quiet})
		require.NoError(t, b.AddSource("s", src))
		require.NoError(t, b.AddSink("k", sink, bridge.SinkOptions{QueueSize: 100, BatchSize: 10}))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		require.NoError(t, b.Run(ctx))
		mu.Lock()
		defer mu.Unlock()
		for i := range 20 {
			assert.Equal(t, 1, writes[time.Duration(i)*time.Millisecond], "sample %d of the load, one per millisecond: %v", i, writes)
		}
		idle := 19*time.Millisecond + 10*time.Millisecond
		assert.Equal(t, 1, writes[idle], "an idle writer writes at once: %v", writes)
		burst := idle + 10*time.Millisecond
		assert.Equal(t, burst, burstDone, "the blocked emitter did not wait for the pace")
		assert.Equal(t, 300, writes[burst]+writes[burst+time.Millisecond], "the burst, at once but for a tail one pace later: %v", writes)
		assert.EqualValues(t, 321, b.Stats().Sinks[0].Delivered)
	})
}

// slowSink blocks every Write until released.
type slowSink struct {
	release chan struct{}
	rec     *bridgetest.Recorder
}

func (s *slowSink) Write(ctx context.Context, batch []bridge.Sample) error {
	select {
	case <-s.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.rec.Write(ctx, batch)
}
func (s *slowSink) Close(ctx context.Context) error { return s.rec.Close(ctx) }

func TestBridgeStalledSinkDoesNotStallOthers(t *testing.T) {
	defer goleak.VerifyNone(t)
	stalled := &slowSink{release: make(chan struct{}), rec: bridgetest.NewRecorder()}
	fast := bridgetest.NewRecorder()
	b := bridge.New(bridge.Options{Logger: quiet, DrainTimeout: 100 * time.Millisecond})
	require.NoError(t, b.AddSource("s", countingSource("s", 5000, 50)))
	require.NoError(t, b.AddSink("stalled", stalled, bridge.SinkOptions{QueueSize: 100, BatchSize: 10, Overflow: bridge.OverflowDropOldest}))
	require.NoError(t, b.AddSink("fast", fast, bridge.SinkOptions{QueueSize: 100}))
	err := b.Run(context.Background())
	assert.Equal(t, seq(5000), values(fast.Samples()), "the fast sink got everything in order")
	require.ErrorIs(t, err, bridge.ErrDrainIncomplete)
	assert.Contains(t, err.Error(), "stalled: ")

	st := b.Stats().Sinks[0]
	assert.Equal(t, "stalled", st.Name)
	assert.EqualValues(t, 5000, st.Accepted)
	assert.Zero(t, st.Delivered)
	assert.EqualValues(t, 5000, st.Dropped+st.Left+st.Aborted, "every sample accounted for: %+v", st)
	assert.Greater(t, st.Dropped, uint64(4000))
}

func TestBridgeBlockPolicyWaitsAndHonoursContext(t *testing.T) {
	defer goleak.VerifyNone(t)
	stalled := &slowSink{release: make(chan struct{}), rec: bridgetest.NewRecorder()}
	b := bridge.New(bridge.Options{Logger: quiet, DrainTimeout: 50 * time.Millisecond})
	emitted := make(chan error, 1)
	src := bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
		batch := bridgetest.Samples("s", 10, t0)
		for {
			if err := out.Emit(ctx, batch); err != nil {
				emitted <- err
				return nil
			}
		}
	})
	require.NoError(t, b.AddSource("s", src))
	require.NoError(t, b.AddSink("stalled", stalled, bridge.SinkOptions{QueueSize: 20, BatchSize: 5}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	// The queue holds 20; the batch being written is out of it.
	require.Eventually(t, func() bool { st := b.Stats().Sinks[0]; return st.Queued == 20 && st.InFlight == 5 }, 10*time.Second, time.Millisecond)
	select {
	case err := <-emitted:
		t.Fatalf("Emit returned %v while the queue was full under OverflowBlock", err)
	default:
	}
	cancel()
	require.ErrorIs(t, <-emitted, context.Canceled, "a blocked Emit ends with its context")
	err := <-done
	require.ErrorIs(t, err, bridge.ErrDrainIncomplete)
	st := b.Stats().Sinks[0]
	assert.Zero(t, st.Dropped, "block never drops")
	assert.EqualValues(t, st.Accepted, st.Left+st.Delivered+st.Aborted)
}

// flakySink fails the first failures Writes, then records.
type flakySink struct {
	failures atomic.Int32
	err      error
	rec      *bridgetest.Recorder
	calls    atomic.Int32
}

func (s *flakySink) Write(ctx context.Context, batch []bridge.Sample) error {
	s.calls.Add(1)
	if s.failures.Add(-1) >= 0 {
		return s.err
	}
	return s.rec.Write(ctx, batch)
}
func (s *flakySink) Close(ctx context.Context) error { return s.rec.Close(ctx) }

func TestBridgeRetriesWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &flakySink{err: errors.New("broker unavailable"), rec: bridgetest.NewRecorder()}
		sink.failures.Store(4)
		b := bridge.New(bridge.Options{Logger: quiet})
		require.NoError(t, b.AddSource("s", countingSource("s", 10, 10)))
		retry := bridge.Retry{Initial: 100 * time.Millisecond, Max: 250 * time.Millisecond, Multiplier: 2, Jitter: 0.01}
		require.NoError(t, b.AddSink("flaky", sink, bridge.SinkOptions{Retry: retry}))
		start := time.Now()
		require.NoError(t, b.Run(context.Background()))
		elapsed := time.Since(start)
		assert.Equal(t, seq(10), values(sink.rec.Samples()))
		// Delays of about 100, 200, 250, 250ms (each up to 1% shorter).
		assert.InDelta(t, float64(800*time.Millisecond), float64(elapsed), float64(10*time.Millisecond))
		st := b.Stats().Sinks[0]
		assert.EqualValues(t, 40, st.Retried)
		assert.EqualValues(t, 4, st.Errors)
		assert.EqualValues(t, 10, st.Delivered)
		assert.Equal(t, "broker unavailable", st.LastError)
		assert.True(t, st.Up)
	})
}

func TestBridgeGivesUpAfterMaxAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &flakySink{err: errors.New("down"), rec: bridgetest.NewRecorder()}
		sink.failures.Store(1000)
		b := bridge.New(bridge.Options{Logger: quiet})
		require.NoError(t, b.AddSource("s", countingSource("s", 10, 10)))
		require.NoError(t, b.AddSink("flaky", sink, bridge.SinkOptions{Retry: bridge.Retry{MaxAttempts: 3}}))
		require.NoError(t, b.Run(context.Background()))
		st := b.Stats().Sinks[0]
		assert.EqualValues(t, 10, st.Failed)
		assert.EqualValues(t, 20, st.Retried)
		assert.EqualValues(t, 3, sink.calls.Load())
		assert.False(t, st.Up)
	})
}

func TestBridgePermanentErrorIsNotRetried(t *testing.T) {
	sink := &flakySink{err: bridge.Permanent(errors.New("400 bad request")), rec: bridgetest.NewRecorder()}
	sink.failures.Store(1)
	b := bridge.New(bridge.Options{Logger: quiet})
	require.NoError(t, b.AddSource("s", countingSource("s", 10, 10)))
	require.NoError(t, b.AddSink("k", sink, bridge.SinkOptions{}))
	require.NoError(t, b.Run(context.Background()))
	st := b.Stats().Sinks[0]
	assert.EqualValues(t, 10, st.Rejected)
	assert.Zero(t, st.Retried)
	assert.EqualValues(t, 1, sink.calls.Load())
}

// partialSink fails every sample whose value is odd on its first attempt,
// and samples with value 5 permanently.
type partialSink struct {
	seen    map[int64]int
	batches [][]int64
	rec     *bridgetest.Recorder
}

func (s *partialSink) Write(ctx context.Context, batch []bridge.Sample) error {
	be := bridge.NewBatchError()
	var vals []int64
	for i, smp := range batch {
		v, _ := smp.Value.Int()
		vals = append(vals, v)
		s.seen[v]++
		switch {
		case v == 5:
			be.Fail(i, bridge.Permanent(fmt.Errorf("value %d refused", v)))
		case v%2 == 1 && s.seen[v] == 1:
			be.Fail(i, fmt.Errorf("value %d: try again", v))
		default:
			if err := s.rec.Write(ctx, batch[i:i+1]); err != nil {
				return err
			}
		}
	}
	s.batches = append(s.batches, vals)
	if len(be.Failed) > 0 {
		return be
	}
	return nil
}
func (s *partialSink) Close(ctx context.Context) error { return s.rec.Close(ctx) }

func TestBridgeRetriesOnlyFailedSamplesOfAPartialFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &partialSink{seen: map[int64]int{}, rec: bridgetest.NewRecorder()}
		b := bridge.New(bridge.Options{Logger: quiet})
		require.NoError(t, b.AddSource("s", countingSource("s", 8, 8)))
		require.NoError(t, b.AddSink("k", sink, bridge.SinkOptions{}))
		require.NoError(t, b.Run(context.Background()))
		require.Len(t, sink.batches, 2)
		assert.Equal(t, []int64{0, 1, 2, 3, 4, 5, 6, 7}, sink.batches[0])
		assert.Equal(t, []int64{1, 3, 7}, sink.batches[1], "only the retriable failures, in order")
		assert.ElementsMatch(t, []int64{0, 2, 4, 6, 1, 3, 7}, values(sink.rec.Samples()))
		st := b.Stats().Sinks[0]
		assert.EqualValues(t, 7, st.Delivered)
		assert.EqualValues(t, 1, st.Rejected)
		assert.EqualValues(t, 3, st.Retried)
	})
}

func TestBridgeShutdownWithFullQueueReportsWhatWasLeft(t *testing.T) {
	defer goleak.VerifyNone(t)
	// The sink takes one batch of 10 per release; 3 releases during the
	// drain, then the deadline passes with the rest still queued.
	stalled := &slowSink{release: make(chan struct{}, 3), rec: bridgetest.NewRecorder()}
	for i := 0; i < 3; i++ {
		stalled.release <- struct{}{}
	}
	b := bridge.New(bridge.Options{Logger: quiet, DrainTimeout: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	src := bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
		err := out.Emit(ctx, bridgetest.Samples("s", 100, t0))
		cancel() // stop right after filling the queue
		return err
	})
	require.NoError(t, b.AddSource("s", src))
	require.NoError(t, b.AddSink("slow", stalled, bridge.SinkOptions{QueueSize: 100, BatchSize: 10}))
	err := b.Run(ctx)
	require.ErrorIs(t, err, bridge.ErrDrainIncomplete)
	assert.Contains(t, err.Error(), "70 samples (slow: 70)")
	st := b.Stats().Sinks[0]
	assert.EqualValues(t, 30, st.Delivered)
	assert.EqualValues(t, 10, st.Aborted, "the batch being written when the deadline passed")
	assert.EqualValues(t, 60, st.Left)
	assert.EqualValues(t, 100, st.Accepted)
	assert.True(t, stalled.rec.Closed())
}

func TestBridgeEmitAfterShutdown(t *testing.T) {
	b := bridge.New(bridge.Options{Logger: quiet})
	require.NoError(t, b.AddSink("k", bridgetest.NewRecorder(), bridge.SinkOptions{}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, b.Run(ctx))
	assert.ErrorIs(t, b.Emit(context.Background(), bridgetest.Samples("s", 1, t0)), bridge.ErrClosed)
	assert.Error(t, b.Run(context.Background()), "Run twice")
}

func TestBridgeConfigurationErrors(t *testing.T) {
	b := bridge.New(bridge.Options{Logger: quiet})
	require.NoError(t, b.AddSink("k", bridgetest.NewRecorder(), bridge.SinkOptions{}))
	err := b.AddSink("k", nil, bridge.SinkOptions{QueueSize: -1, Overflow: bridge.OverflowSpool, Linger: -time.Second})
	require.Error(t, err)
	for _, want := range []string{"a sink of that name exists", "nil sink", "queue_size: -1 is out of range", "linger: -1s is out of range", "overflow policy spool needs SinkOptions.Spool"} {
		assert.Contains(t, err.Error(), want)
	}
	require.NoError(t, b.AddSource("s", countingSource("s", 1, 1)))
	assert.ErrorContains(t, b.AddSource("s", countingSource("s", 1, 1)), "a source of that name exists")
	assert.ErrorContains(t, b.AddSource("", countingSource("s", 1, 1)), "empty name")
	_, err = bridge.ParseOverflow("spill")
	assert.ErrorContains(t, err, `unknown overflow policy "spill"`)
}

func TestBridgeSourceErrorIsReturned(t *testing.T) {
	b := bridge.New(bridge.Options{Logger: quiet})
	require.NoError(t, b.AddSource("broken", bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
		return errors.New("unit 7 does not exist")
	})))
	require.NoError(t, b.AddSink("k", bridgetest.NewRecorder(), bridge.SinkOptions{}))
	err := b.Run(context.Background())
	require.ErrorContains(t, err, `bridge: source "broken": unit 7 does not exist`)
	assert.Equal(t, err.Error(), b.Stats().Sources[0].Err)
}

// connectSink fails Connect a few times.
type connectSink struct {
	bridgetest.Recorder
	fails atomic.Int32
}

func (s *connectSink) Connect(ctx context.Context) error {
	if s.fails.Add(-1) >= 0 {
		return io.ErrUnexpectedEOF
	}
	return nil
}

func TestBridgeConnectsSinksWithRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &connectSink{Recorder: *bridgetest.NewRecorder()}
		s.fails.Store(2)
		b := bridge.New(bridge.Options{Logger: quiet})
		require.NoError(t, b.AddSource("s", countingSource("s", 5, 5)))
		require.NoError(t, b.AddSink("k", s, bridge.SinkOptions{}))
		require.NoError(t, b.Run(context.Background()))
		assert.Equal(t, seq(5), values(s.Samples()))
		assert.EqualValues(t, 2, b.Stats().Sinks[0].Errors)
	})
}

// memSpool is an in-memory bridge.Spool for testing the spool path of the
// pipeline (package bridge/spool has the durable one).
type memSpool struct {
	mu      sync.Mutex
	samples []bridge.Sample
	closed  bool
}

func (m *memSpool) Append(ctx context.Context, batch []bridge.Sample) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.samples = append(m.samples, batch...)
	return nil
}
func (m *memSpool) Peek(buf []bridge.Sample) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return copy(buf, m.samples), nil
}
func (m *memSpool) Ack(n int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.samples = m.samples[n:]
	return nil
}
func (m *memSpool) Len() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.samples))
}
func (m *memSpool) Dropped() uint64 { return 0 }
func (m *memSpool) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

func TestBridgeSpoolPolicyKeepsWhatTheSinkCouldNotTake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The sink is down for the whole run: everything stays in the spool,
		// in order, and nothing is counted lost.
		down := &flakySink{err: errors.New("down"), rec: bridgetest.NewRecorder()}
		down.failures.Store(1 << 30)
		sp := &memSpool{}
		b := bridge.New(bridge.Options{Logger: quiet, DrainTimeout: time.Second})
		require.NoError(t, b.AddSource("s", countingSource("s", 1000, 10)))
		require.NoError(t, b.AddSink("k", down, bridge.SinkOptions{Overflow: bridge.OverflowSpool, Spool: sp, BatchSize: 100}))
		err := b.Run(context.Background())
		require.ErrorIs(t, err, bridge.ErrDrainIncomplete)
		assert.Equal(t, seq(1000), values(sp.samples))
		assert.True(t, sp.closed)
		st := b.Stats().Sinks[0]
		assert.EqualValues(t, 1000, st.Spooled)
		assert.EqualValues(t, 1000, st.Left)

		// Next run: the sink is back; the backlog is delivered first, in
		// order, then new samples.
		up := bridgetest.NewRecorder()
		sp.closed = false
		b2 := bridge.New(bridge.Options{Logger: quiet})
		require.NoError(t, b2.AddSource("s", bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
			batch := []bridge.Sample{{Source: "s", Point: "p", Value: bridge.Int(1000)}}
			return out.Emit(ctx, batch)
		})))
		require.NoError(t, b2.AddSink("k", up, bridge.SinkOptions{Overflow: bridge.OverflowSpool, Spool: sp, BatchSize: 100}))
		require.NoError(t, b2.Run(context.Background()))
		assert.Equal(t, seq(1001), values(up.Samples()))
		assert.Zero(t, sp.Len())
	})
}

func ExampleBridge() {
	b := bridge.New(bridge.Options{Logger: quiet})
	src := bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
		t := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
		return out.Emit(ctx, []bridge.Sample{
			{Source: "meter1", Point: "voltage_l1", Value: bridge.Float(230.5), Unit: "V", Time: t, Seq: 1},
			{Source: "meter1", Point: "energy", Value: bridge.Uint(123456789), Unit: "Wh", Time: t, Seq: 2},
		})
	})
	_ = b.AddSource("meter1", src)
	_ = b.AddSink("stdout", bridge.NewJSONLines(stdout{}), bridge.SinkOptions{})
	// Run returns when every source has returned and the sinks are drained.
	if err := b.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// {"source":"meter1","point":"voltage_l1","value":230.5,"unit":"V","quality":"good","time":"2026-11-21T10:00:00.000000000Z","seq":1}
	// {"source":"meter1","point":"energy","value":123456789,"unit":"Wh","quality":"good","time":"2026-11-21T10:00:00.000000000Z","seq":2}
}

// stdout writes to the example's standard output, which the testing package
// replaces while examples run (os.Stdout must be read at write time).
type stdout struct{}

func (stdout) Write(p []byte) (int, error) { return fmt.Print(string(p)) }
