package bridge_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
)

// flappingSource emits what its steps say, and reports the health they set.
type flappingSource struct {
	mu     sync.Mutex
	health bridge.Health
	run    func(ctx context.Context, out bridge.Emitter, set func(up bool)) error
}

func (s *flappingSource) Health() bridge.Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.health
}

func (s *flappingSource) set(up bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if up != s.health.Up || s.health.Since.IsZero() {
		s.health = bridge.Health{Up: up, Since: time.Now()}
	}
}

func (s *flappingSource) Run(ctx context.Context, out bridge.Emitter) error {
	return s.run(ctx, out, s.set)
}

// TestReportResetsOnReconnect: when the source says it came up again (its
// Health went down and up between two batches), the first sample of each
// point is reported whatever its value, with no Bad sample in between;
// staying up changes nothing.
func TestReportResetsOnReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := bridgetest.NewRecorder()
		b := bridge.New(bridge.Options{Logger: quiet, SeqStart: 1})
		emit := func(ctx context.Context, out bridge.Emitter, tag int) error {
			time.Sleep(time.Second)
			return out.Emit(ctx, []bridge.Sample{
				{Source: "s", Point: "a", Value: f(230), Time: t0.Add(time.Duration(tag) * time.Second)},
				{Source: "s", Point: "b", Value: bridge.String("run"), Time: t0.Add(time.Duration(tag) * time.Second)},
			})
		}
		src := &flappingSource{run: func(ctx context.Context, out bridge.Emitter, set func(bool)) error {
			set(true)
			for i, step := range []string{"up", "up", "down-up", "up", "restart", "up", "down", "down"} {
				switch step {
				case "down-up": // a reconnect between two polls
					set(false)
					time.Sleep(time.Millisecond)
					set(true)
				case "restart": // a new Run of the source: up again, later
					set(false)
					time.Sleep(time.Millisecond)
					set(true)
				case "down": // down but still emitting (a cached value): no reset
					set(false)
				}
				if err := emit(ctx, out, i); err != nil {
					return err
				}
			}
			return nil
		}}
		require.NoError(t, b.AddSourceWith("s", src, bridge.SourceOptions{Report: bridge.Report{Deadband: 1}}))
		require.NoError(t, b.AddSink("rec", rec, bridge.SinkOptions{}))
		require.NoError(t, b.Run(context.Background()))
		var got []string
		for _, s := range rec.Samples() {
			got = append(got, fmt.Sprintf("%s%d", s.Point, s.Time.Sub(t0)/time.Second))
		}
		assert.Equal(t, []string{"a0", "b0", "a2", "b2", "a4", "b4"}, got, "the first samples, and those after each reconnect")
		st := b.Stats().Sources[0]
		assert.EqualValues(t, 10, st.Suppressed)
		checkSources(t, b.Stats().Sources)
	})
}

// TestReportPerSinkStream: a sink with Unfiltered takes every sample, in
// order, while the others take report by exception's stream; the reported
// samples carry the same numbers in both, the held-back ones none; with
// and without an inbox.
func TestReportPerSinkStream(t *testing.T) {
	for _, inbox := range []int{0, 1000} {
		t.Run(fmt.Sprint("inbox ", inbox), func(t *testing.T) {
			filtered, all, plain := bridgetest.NewRecorder(), bridgetest.NewRecorder(), bridgetest.NewRecorder()
			b := bridge.New(bridge.Options{Logger: quiet, SeqStart: 1})
			const cycles = 50
			require.NoError(t, b.AddSourceWith("s", bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
				for i := range cycles {
					batch := []bridge.Sample{
						{Source: "s", Point: "noise", Value: f(100 + float64(i%3)/10), Time: t0.Add(time.Duration(i) * time.Second)},
						{Source: "s", Point: "step", Value: f(float64(i / 10 * 5)), Time: t0.Add(time.Duration(i) * time.Second)},
					}
					if err := out.Emit(ctx, batch); err != nil {
						return err
					}
				}
				return nil
			}), bridge.SourceOptions{QueueSize: inbox, Report: bridge.Report{Deadband: 1}}))
			// A source without report by exception: every sink gets all
			// of it, numbered.
			require.NoError(t, b.AddSource("p", countingSource("p", 20, 5)))
			require.NoError(t, b.AddSink("filtered", filtered, bridge.SinkOptions{}))
			require.NoError(t, b.AddSink("all", all, bridge.SinkOptions{Unfiltered: true}))
			require.NoError(t, b.AddSink("plain", plain, bridge.SinkOptions{}))
			require.NoError(t, b.Run(context.Background()))

			bySource := func(ss []bridge.Sample, src string) []bridge.Sample {
				var out []bridge.Sample
				for _, s := range ss {
					if s.Source == src {
						out = append(out, s)
					}
				}
				return out
			}
			everything := bySource(all.Samples(), "s")
			require.Len(t, everything, 2*cycles, "the unfiltered sink gets every sample")
			for i, s := range everything {
				assert.Equal(t, t0.Add(time.Duration(i/2)*time.Second), s.Time, "in order")
			}
			reported := bySource(filtered.Samples(), "s")
			assert.Equal(t, reported, bySource(plain.Samples(), "s"))
			// noise: the first; step: 0, 5, 10, 15, 20.
			require.Len(t, reported, 6)
			var numbered []bridge.Sample
			for _, s := range everything {
				if s.Seq != 0 {
					numbered = append(numbered, s)
				}
			}
			assert.Equal(t, reported, numbered, "the numbered samples of the unfiltered stream are the reported stream")
			for i, s := range reported {
				assert.EqualValues(t, i+1, s.Seq)
			}
			assert.Len(t, bySource(all.Samples(), "p"), 20)
			assert.Len(t, bySource(filtered.Samples(), "p"), 20)

			st := b.Stats()
			checkSources(t, st.Sources)
			src := st.Sources[0]
			assert.EqualValues(t, 2*cycles, src.Emitted)
			assert.EqualValues(t, 6, src.Forwarded)
			assert.EqualValues(t, 2*cycles-6, src.Suppressed)
			for _, s := range st.Sinks {
				checkSink(t, s)
				want := src.Forwarded + 20
				if s.Name == "all" {
					want += src.Suppressed
				}
				assert.Equal(t, want, s.Accepted, "sink %s", s.Name)
			}
		})
	}
}
