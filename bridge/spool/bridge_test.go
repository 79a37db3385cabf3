package spool_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/spool"
)

// flakySink records what it is given, failing every Write while down.
type flakySink struct {
	down   atomic.Bool
	writes atomic.Int64
	mu     sync.Mutex
	got    []bridge.Sample
}

var errDown = errors.New("flaky sink: broker unreachable")

func (f *flakySink) Write(ctx context.Context, batch []bridge.Sample) error {
	f.writes.Add(1)
	if f.down.Load() {
		return errDown
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, batch...)
	return nil
}

func (f *flakySink) Close(context.Context) error { return nil }

func (f *flakySink) seqs() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]uint64, len(f.got))
	for i, s := range f.got {
		out[i] = s.Seq
	}
	return out
}

// counter is a source emitting batches of 10 numbered samples, n in all.
func counter(first uint64, n int, emitted *atomic.Int64) bridge.SourceFunc {
	return func(ctx context.Context, out bridge.Emitter) error {
		t := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
		for i := 0; i < n; i += 10 {
			batch := make([]bridge.Sample, 10)
			for j := range batch {
				seq := first + uint64(i+j)
				batch[j] = bridge.Sample{Source: "meter1", Point: "energy", Unit: "kWh",
					Value: bridge.Float(float64(seq)), Time: t.Add(time.Duration(seq) * time.Millisecond), Seq: seq}
			}
			if err := out.Emit(ctx, batch); err != nil {
				return err
			}
			emitted.Add(10)
		}
		return nil
	}
}

func requireRun(t *testing.T, first uint64, n int, got []uint64) {
	t.Helper()
	require.Len(t, got, n)
	for i, s := range got {
		require.Equal(t, first+uint64(i), s, "sample %d", i)
	}
}

// TestBridgeSinkDownThenBack runs the Bridge with a spooled sink that is down
// while the source produces, comes back, and later is down across a restart:
// every sample arrives, in order, once.
func TestBridgeSinkDownThenBack(t *testing.T) {
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	retry := bridge.Retry{Initial: time.Millisecond, Max: 5 * time.Millisecond}

	// Run 1: the sink is down until half the samples were produced.
	sp, err := spool.Open(dir, spool.Options{MaxBytes: 16 << 20, Sync: spool.SyncInterval, Interval: 10 * time.Millisecond})
	require.NoError(t, err)
	sink := &flakySink{}
	sink.down.Store(true)
	var emitted atomic.Int64
	const n = 20000
	b := bridge.New(bridge.Options{Logger: quiet, DrainTimeout: 20 * time.Second})
	require.NoError(t, b.AddSource("meter1", counter(1, n, &emitted)))
	require.NoError(t, b.AddSink("flaky", sink, bridge.SinkOptions{Overflow: bridge.OverflowSpool, Spool: sp, BatchSize: 200, Retry: retry}))
	go func() {
		// Bring the sink back once a backlog built up in the spool.
		deadline := time.Now().Add(20 * time.Second)
		for (emitted.Load() < n/2 || sink.writes.Load() < 3) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond) // polling a condition
		}
		sink.down.Store(false)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, b.Run(ctx))
	requireRun(t, 1, n, sink.seqs())
	require.Zero(t, sp.Dropped())
	require.Zero(t, sp.Len())

	// Run 2: the sink stays down; the bridge stops with the samples kept
	// in the spool.
	sp, err = spool.Open(dir, spool.Options{MaxBytes: 16 << 20})
	require.NoError(t, err)
	down := &flakySink{}
	down.down.Store(true)
	b = bridge.New(bridge.Options{Logger: quiet, DrainTimeout: 50 * time.Millisecond})
	require.NoError(t, b.AddSource("meter1", counter(n+1, 5000, &emitted)))
	require.NoError(t, b.AddSink("flaky", down, bridge.SinkOptions{Overflow: bridge.OverflowSpool, Spool: sp, BatchSize: 200, Retry: retry}))
	err = b.Run(ctx)
	require.ErrorIs(t, err, bridge.ErrDrainIncomplete)
	require.Empty(t, down.seqs())

	// Run 3, after the restart: the backlog is delivered first.
	sp, err = spool.Open(dir, spool.Options{MaxBytes: 16 << 20})
	require.NoError(t, err)
	require.EqualValues(t, 5000, sp.Len())
	up := &flakySink{}
	b = bridge.New(bridge.Options{Logger: quiet, SeqStart: sp.SeqStart()})
	require.NoError(t, b.AddSource("meter1", counter(n+5001, 1000, &emitted)))
	require.NoError(t, b.AddSink("flaky", up, bridge.SinkOptions{Overflow: bridge.OverflowSpool, Spool: sp, BatchSize: 200, Retry: retry}))
	require.NoError(t, b.Run(ctx))
	requireRun(t, n+1, 6000, up.seqs())
}
