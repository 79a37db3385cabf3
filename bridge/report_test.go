package bridge_test

import (
	"context"
	"fmt"
	"math"
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

// step is one sample of a report-by-exception case: emitted after waiting
// `after`, and whether it must reach the sinks.
type step struct {
	after  time.Duration
	v      bridge.Value
	q      bridge.Quality
	reason string
	point  string // default "p"
	want   bool
}

func good(v bridge.Value, want bool) step { return step{v: v, want: want} }
func f(x float64) bridge.Value            { return bridge.Float(x) }

// runSteps emits each step as a batch of its own (in a synctest bubble, so
// that `after` is simulated time) through a Bridge with the given options,
// and returns the indexes of the steps that reached the sink, and the stats.
func runSteps(t *testing.T, opts bridge.SourceOptions, steps []step) (got []int, st bridge.Stats) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		rec := bridgetest.NewRecorder()
		b := bridge.New(bridge.Options{Logger: quiet, SeqStart: 1})
		require.NoError(t, b.AddSourceWith("s", bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
			for i, s := range steps {
				time.Sleep(s.after)
				p := s.point
				if p == "" {
					p = "p"
				}
				smp := bridge.Sample{Source: "s", Point: p, Value: s.v, Quality: s.q, Reason: s.reason, Time: t0.Add(time.Duration(i) * time.Second)}
				if err := out.Emit(ctx, []bridge.Sample{smp}); err != nil {
					return err
				}
			}
			return nil
		}), opts))
		require.NoError(t, b.AddSink("rec", rec, bridge.SinkOptions{}))
		require.NoError(t, b.Run(context.Background()))
		for i, s := range rec.Samples() {
			got = append(got, int(s.Time.Sub(t0)/time.Second))
			assert.EqualValues(t, i+1, s.Seq, "suppressed samples take no sequence number: the reported ones have no gaps")
		}
		st = b.Stats()
	})
	return got, st
}

func TestReportRules(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, tc := range []struct {
		name   string
		report bridge.Report
		points map[string]bridge.Report
		steps  []step
	}{
		{"zero report passes everything", bridge.Report{}, nil, []step{
			good(f(1), true), good(f(1), true), good(f(1), true)}},
		{"deadband edges", bridge.Report{Deadband: 0.5}, nil, []step{
			good(f(230), true),      // first sample
			good(f(230.2), false),   // inside
			good(f(230.5), false),   // exactly at the band: not beyond it
			good(f(229.5), false),   // exactly at the band below
			good(f(230.51), true),   // beyond
			good(f(230.3), false),   // 0.21 from the last reported, not from the last sample
			good(f(230.0), true),    // 0.51 below
			good(f(230.0), false)}}, // unchanged
		{"drift adds up from the last reported value", bridge.Report{Deadband: 0.25}, nil, []step{
			good(f(0), true), good(f(0.1), false), good(f(0.2), false), good(f(0.3), true), good(f(0.4), false)}},
		{"negative values and a zero crossing", bridge.Report{Deadband: 1}, nil, []step{
			good(f(-0.5), true), good(f(0.4), false), good(f(0.6), true), good(f(-0.3), false), good(f(-0.5), true)}},
		{"percent of the last reported value", bridge.Report{DeadbandPercent: 10}, nil, []step{
			good(f(100), true), good(f(109), false), good(f(110), false), good(f(111), true),
			good(f(100), false), good(f(99), true)}}, // band 11.1 from 111
		{"percent of a negative value", bridge.Report{DeadbandPercent: 10}, nil, []step{
			good(f(-100), true), good(f(-91), false), good(f(-89), true)}},
		{"percent of zero: any change", bridge.Report{DeadbandPercent: 10}, nil, []step{
			good(f(0), true), good(f(0), false), good(f(0.0001), true), good(f(0.00010001), false)}},
		{"percent of a range", bridge.Report{DeadbandPercent: 1, Range: 500}, nil, []step{
			good(f(0), true), good(f(4), false), good(f(5), false), good(f(5.5), true), good(f(1), false)}},
		{"NaN and infinities", bridge.Report{Deadband: 1}, nil, []step{
			good(f(1), true), good(f(nan), true), good(f(nan), false), good(f(1), true),
			good(f(inf), true), good(f(inf), false), good(f(-inf), true), good(f(0), true)}},
		{"on change", bridge.Report{OnChange: true}, nil, []step{
			good(f(1), true), good(f(1), false), good(f(1.0000001), true), good(bridge.Int(1), true), good(bridge.Int(1), false)}},
		{"integers: exact kinds, equal numbers across kinds", bridge.Report{Deadband: 10}, nil, []step{
			good(bridge.Int(100), true), good(bridge.Int(110), false), good(bridge.Uint(111), true), good(f(111), false),
			good(bridge.Int(math.MinInt64), true)}},
		{"strings and bools report on change whatever the band", bridge.Report{Deadband: 1000}, nil, []step{
			good(bridge.String("run"), true), good(bridge.String("run"), false), good(bridge.String("stop"), true),
			good(bridge.Bool(false), true), good(bridge.Bool(false), false), good(bridge.Bool(true), true),
			good(bridge.Int(1), true)}}, // kind change
		{"quality changes", bridge.Report{Deadband: 10}, nil, []step{
			good(f(1), true),
			{v: bridge.Value{}, q: bridge.Bad, reason: "timeout", want: true},
			{v: bridge.Value{}, q: bridge.Bad, reason: "timeout", want: false},
			{v: bridge.Value{}, q: bridge.Bad, reason: "exception 2", want: true}, // a new reason
			good(f(1), true), // Bad → Good: the first sample after a reconnect
			good(f(1), false),
			{v: f(1), q: bridge.Uncertain, want: true},
			{v: f(2), q: bridge.Uncertain, want: false}}},
		{"heartbeat", bridge.Report{Deadband: 1, Heartbeat: time.Minute}, nil, []step{
			{v: f(1), want: true},
			{after: 30 * time.Second, v: f(1), want: false},
			{after: 29 * time.Second, v: f(1), want: false},
			{after: time.Second, v: f(1), want: true}, // 60 s since the last report
			{after: 10 * time.Second, v: f(5), want: true},
			{after: 55 * time.Second, v: f(5), want: false}, // the change reset it
			{after: 5 * time.Second, v: f(5), want: true},
			{after: time.Hour, v: f(5), want: true}}},
		{"per point settings", bridge.Report{Deadband: 10}, map[string]bridge.Report{
			"b": {OnChange: true},
			"c": {Heartbeat: time.Minute}, // keeps the default's deadband
		}, []step{
			{point: "a", v: f(1), want: true}, {point: "b", v: f(1), want: true}, {point: "c", v: f(1), want: true},
			{point: "a", v: f(2), want: false}, {point: "b", v: f(2), want: true}, {point: "c", v: f(2), want: false},
			{after: time.Minute, point: "a", v: f(2), want: false}, {point: "c", v: f(2), want: true}}},
		{"points without a rule pass", bridge.Report{}, map[string]bridge.Report{"b": {Deadband: 10}}, []step{
			{point: "a", v: f(1), want: true}, {point: "a", v: f(1), want: true},
			{point: "b", v: f(1), want: true}, {point: "b", v: f(1), want: false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want []int
			for i, s := range tc.steps {
				if s.want {
					want = append(want, i)
				}
			}
			got, st := runSteps(t, bridge.SourceOptions{Report: tc.report, PointReport: tc.points}, tc.steps)
			assert.Equal(t, want, got, "indexes of the steps reported")
			src := st.Sources[0]
			assert.EqualValues(t, len(tc.steps), src.Emitted)
			assert.EqualValues(t, len(tc.steps)-len(want), src.Suppressed)
			assert.EqualValues(t, len(want), src.Forwarded)
			checkSources(t, st.Sources)
		})
	}
}

// The filter's state lives in the Bridge: a new one (a restart) reports the
// first sample of every point again, and each source has its own state.
func TestReportStateIsPerRunAndSource(t *testing.T) {
	run := func() []bridge.Sample {
		rec := bridgetest.NewRecorder()
		b := bridge.New(bridge.Options{Logger: quiet})
		for _, name := range []string{"m1", "m2"} {
			require.NoError(t, b.AddSourceWith(name, bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
				for range 3 {
					if err := out.Emit(ctx, []bridge.Sample{{Source: name, Point: "v", Value: f(230)}}); err != nil {
						return err
					}
				}
				return nil
			}), bridge.SourceOptions{Report: bridge.Report{Deadband: 1}}))
		}
		require.NoError(t, b.AddSink("rec", rec, bridge.SinkOptions{}))
		require.NoError(t, b.Run(context.Background()))
		return rec.Samples()
	}
	for range 2 {
		got := run()
		require.Len(t, got, 2, "the first sample of each source's point: %v", got)
		assert.ElementsMatch(t, []string{"m1", "m2"}, []string{got[0].Source, got[1].Source})
	}
}

// A source beyond MaxReportPoints points: the rest pass unfiltered, counted.
func TestReportBoundsItsState(t *testing.T) {
	batch := make([]bridge.Sample, bridge.MaxReportPoints+2)
	for i := range batch {
		batch[i] = bridge.Sample{Source: "s", Point: fmt.Sprint("p", i), Value: f(1)}
	}
	rec := &discard{}
	b := bridge.New(bridge.Options{Logger: quiet})
	require.NoError(t, b.AddSourceWith("s", bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
		for range 2 {
			if err := out.Emit(ctx, batch); err != nil {
				return err
			}
		}
		return nil
	}), bridge.SourceOptions{Report: bridge.Report{OnChange: true}}))
	require.NoError(t, b.AddSink("d", rec, bridge.SinkOptions{QueueSize: 2 * len(batch)}))
	require.NoError(t, b.Run(context.Background()))
	st := b.Stats().Sources[0]
	assert.EqualValues(t, 2*len(batch), st.Emitted)
	assert.EqualValues(t, bridge.MaxReportPoints, st.Suppressed, "the tracked points' unchanged second samples")
	assert.EqualValues(t, 4, st.Unfiltered, "two points beyond the cap, twice")
	assert.EqualValues(t, len(batch)+2, rec.n.Load())
	checkSources(t, []bridge.SourceStats{st})
}

// TestReportAccountsForEverySample drives noisy sources with report by
// exception (one straight, one with a small dropping inbox) into a live sink,
// a stalled one and one that takes every sample (Unfiltered), scraping the counters while it runs: Emitted =
// Suppressed + Forwarded + Dropped + Left + Queued + InFlight at every
// scrape, and each sink was offered exactly what was forwarded (the
// unfiltered one: what was forwarded or suppressed).
func TestReportAccountsForEverySample(t *testing.T) {
	defer goleak.VerifyNone(t)
	stalled := &gatedSink{Recorder: *bridgetest.NewRecorder(), open: make(chan struct{})}
	live := bridgetest.NewRecorder()
	b := bridge.New(bridge.Options{Logger: quiet, DrainTimeout: 300 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var produced [2]atomic.Int64 // by source, so that each runs long enough
	src := func(name string, produced *atomic.Int64) bridge.Source {
		return bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
			batch := make([]bridge.Sample, 10)
			for i := 0; ; i++ {
				for p := range batch {
					// Most points within noise, one stepping every cycle.
					v := 100 + float64((i*7+p)%10)/100
					if p == 0 {
						v = float64(i)
					}
					batch[p] = bridge.Sample{Source: name, Point: fmt.Sprint("p", p), Value: f(v)}
				}
				if err := out.Emit(ctx, batch); err != nil || ctx.Err() != nil {
					return nil
				}
				produced.Add(int64(len(batch)))
			}
		})
	}
	report := bridge.Report{Deadband: 0.5, Heartbeat: time.Second}
	require.NoError(t, b.AddSourceWith("modbus", src("modbus", &produced[0]), bridge.SourceOptions{Report: report}))
	require.NoError(t, b.AddSourceWith("opcua", src("opcua", &produced[1]), bridge.SourceOptions{QueueSize: 50, Overflow: bridge.OverflowDropOldest, Report: report}))
	require.NoError(t, b.AddSink("stalled", stalled, bridge.SinkOptions{QueueSize: 100, BatchSize: 10, Overflow: bridge.OverflowDropOldest}))
	require.NoError(t, b.AddSink("live", live, bridge.SinkOptions{QueueSize: 100, BatchSize: 10, Overflow: bridge.OverflowDropOldest}))
	everything := bridgetest.NewRecorder()
	require.NoError(t, b.AddSink("everything", everything, bridge.SinkOptions{QueueSize: 100, BatchSize: 10, Overflow: bridge.OverflowDropOldest, Unfiltered: true}))
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	for range 200 {
		st := b.Stats()
		checkSources(t, st.Sources)
		for _, s := range st.Sinks {
			checkSink(t, s)
		}
	}
	require.Eventually(t, func() bool { return produced[0].Load() > 10000 && produced[1].Load() > 10000 }, 10*time.Second, time.Millisecond)
	cancel()
	<-done
	st := b.Stats()
	checkSources(t, st.Sources)
	var forwarded, suppressed uint64
	for _, s := range st.Sources {
		assert.Positive(t, s.Suppressed, "source %s: the noise was suppressed", s.Name)
		assert.Less(t, s.Forwarded, s.Emitted/3, "source %s: most samples suppressed", s.Name)
		forwarded += s.Forwarded
		suppressed += s.Suppressed
	}
	for _, s := range st.Sinks {
		checkSink(t, s)
		if s.Name == "everything" {
			assert.Equal(t, forwarded+suppressed, s.Accepted+s.Refused, "sink %s: offered every sample that left the sources: %+v", s.Name, s)
			continue
		}
		assert.Equal(t, forwarded, s.Accepted+s.Refused, "sink %s: offered exactly the forwarded samples: %+v", s.Name, s)
	}
}

func TestReportValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want []string
	}{
		{"negative deadband", bridge.Report{Deadband: -1}.Validate(), []string{"deadband"}},
		{"NaN deadband", bridge.Report{Deadband: math.NaN()}.Validate(), []string{"deadband"}},
		{"percent above 100", bridge.Report{DeadbandPercent: 101}.Validate(), []string{"deadband_percent"}},
		{"range without percent", bridge.Report{Deadband: 1, Range: 10}.Validate(), []string{"range"}},
		{"negative range", bridge.Report{DeadbandPercent: 1, Range: -10}.Validate(), []string{"range"}},
		{"two rules", bridge.Report{Deadband: 1, DeadbandPercent: 1}.Validate(), []string{"deadband_percent"}},
		{"on_change and a band", bridge.Report{Deadband: 1, OnChange: true}.Validate(), []string{"on_change"}},
		{"heartbeat too short", bridge.Report{OnChange: true, Heartbeat: time.Millisecond}.Validate(), []string{"heartbeat"}},
		{"heartbeat too long", bridge.Report{OnChange: true, Heartbeat: 48 * time.Hour}.Validate(), []string{"heartbeat"}},
		{"heartbeat alone", bridge.Report{Heartbeat: time.Minute}.Validate(), []string{"heartbeat"}},
		{"source default", bridge.SourceOptions{Report: bridge.Report{Deadband: -1, Heartbeat: time.Hour * 48}}.Validate(), []string{"report.deadband", "report.heartbeat"}},
		{"points merged with the default", bridge.SourceOptions{
			Report: bridge.Report{DeadbandPercent: 1, Heartbeat: time.Minute},
			PointReport: map[string]bridge.Report{
				"ok":    {Range: 500},
				"bad":   {OnChange: true, Range: 500}, // range without percent
				"worse": {Deadband: -2},
				"":      {OnChange: true},
			}}.Validate(), []string{"point_report[]", "point_report[bad].range", "point_report[worse].deadband"}},
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
	for _, ok := range []bridge.Report{
		{}, {Deadband: 0.5}, {DeadbandPercent: 0.5, Heartbeat: 5 * time.Minute}, {DeadbandPercent: 100, Range: 1e6},
		{OnChange: true, Heartbeat: bridge.MinHeartbeat}, {Deadband: 1, Heartbeat: bridge.MaxHeartbeat},
	} {
		assert.NoError(t, ok.Validate(), "%+v", ok)
	}
	b := bridge.New(bridge.Options{Logger: quiet})
	err := b.AddSourceWith("s", bridge.SourceFunc(func(context.Context, bridge.Emitter) error { return nil }), bridge.SourceOptions{Report: bridge.Report{Deadband: -1}})
	assert.ErrorContains(t, err, "report.deadband")
}

func TestReportMerge(t *testing.T) {
	def := bridge.Report{DeadbandPercent: 0.5, Range: 400, Heartbeat: 5 * time.Minute}
	assert.Equal(t, def, def.Merge(bridge.Report{}), "nothing set: the default")
	assert.Equal(t, bridge.Report{DeadbandPercent: 0.5, Range: 10, Heartbeat: 5 * time.Minute}, def.Merge(bridge.Report{Range: 10}))
	assert.Equal(t, bridge.Report{Deadband: 2, Heartbeat: time.Minute}, def.Merge(bridge.Report{Deadband: 2, Heartbeat: time.Minute}),
		"a point's own rule replaces the default's, which takes its range with it")
	assert.Equal(t, bridge.Report{OnChange: true, Heartbeat: 5 * time.Minute}, def.Merge(bridge.Report{OnChange: true}))
}
