package bridge_test

import (
	"context"
	"io"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// benchSource emits n samples in batches of 100, as a poller emitting one
// batch per cycle does.
func benchSource(n int) bridge.Source {
	return bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
		batch := make([]bridge.Sample, 100)
		now := time.Now()
		for i := range batch {
			batch[i] = bridge.Sample{Source: "meter1", Point: "voltage_l1", Value: bridge.Float(230.5), Unit: "V", Time: now}
		}
		for n > 0 {
			k := min(n, len(batch))
			if err := out.Emit(ctx, batch[:k]); err != nil {
				return err
			}
			n -= k
		}
		return nil
	})
}

type discard struct{ n atomic.Int64 }

func (d *discard) Write(ctx context.Context, batch []bridge.Sample) error {
	d.n.Add(int64(len(batch)))
	return nil
}
func (d *discard) Close(context.Context) error { return nil }

// stalled blocks every Write until the bridge aborts it.
type stalled struct{}

func (stalled) Write(ctx context.Context, batch []bridge.Sample) error {
	<-ctx.Done()
	return ctx.Err()
}
func (stalled) Close(context.Context) error { return nil }

// BenchmarkBridge measures the pipeline alone: one op is one sample from a
// source to a discarding sink. Targets (issue 2): at least 5 million
// samples/s on one core (-cpu 1) and at most 0.01 allocations per sample;
// with four sinks, one of them stalled, the three others at least 80 % of
// that rate.
func BenchmarkBridge(b *testing.B) {
	b.Run("1source-1sink", func(b *testing.B) { benchFanout(b, 1, false) })
	b.Run("1source-4sinks-1stalled", func(b *testing.B) { benchFanout(b, 3, true) })
}

func benchFanout(b *testing.B, live int, withStalled bool) {
	b.ReportAllocs()
	br := bridge.New(bridge.Options{Logger: quiet, DrainTimeout: 10 * time.Millisecond})
	sinks := make([]*discard, live)
	for i := range sinks {
		sinks[i] = &discard{}
		if err := br.AddSink(string(rune('a'+i)), sinks[i], bridge.SinkOptions{QueueSize: 8192, BatchSize: 1024}); err != nil {
			b.Fatal(err)
		}
	}
	if withStalled {
		if err := br.AddSink("stalled", stalled{}, bridge.SinkOptions{QueueSize: 8192, Overflow: bridge.OverflowDropOldest}); err != nil {
			b.Fatal(err)
		}
	}
	if err := br.AddSource("meter1", benchSource(b.N)); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	_ = br.Run(context.Background()) // the stalled sink is left undelivered by design
	elapsed := time.Since(start)
	b.StopTimer()
	for _, s := range sinks {
		if s.n.Load() != int64(b.N) {
			b.Fatalf("a live sink got %d of %d samples", s.n.Load(), b.N)
		}
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "samples/s")
}

// BenchmarkJSONLines measures the JSON-lines sink: one op is one sample
// encoded and written. Target: at least 1 million samples/s, no allocation
// per sample.
func BenchmarkJSONLines(b *testing.B) {
	b.ReportAllocs()
	sink := bridge.NewJSONLines(io.Discard)
	batch := make([]bridge.Sample, 500)
	now := time.Now()
	for i := range batch {
		batch[i] = bridge.Sample{Source: "meter1", Point: "energy_import", Value: bridge.Float(123456.789 + float64(i)), Unit: "kWh", Time: now, Seq: uint64(i + 1)}
	}
	ctx := context.Background()
	b.ResetTimer()
	for n := b.N; n > 0; n -= len(batch) {
		if err := sink.Write(ctx, batch[:min(n, len(batch))]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkReportByException measures report by exception in place: one op
// is one sample of a 100-point poll cycle, most of them within the deadband,
// from the source's Emit through the filter to a discarding sink. Target: no
// allocation per sample in steady state.
func BenchmarkReportByException(b *testing.B) {
	b.ReportAllocs()
	br := bridge.New(bridge.Options{Logger: quiet, DrainTimeout: 10 * time.Millisecond})
	sink := &discard{}
	if err := br.AddSink("d", sink, bridge.SinkOptions{QueueSize: 8192, BatchSize: 1024}); err != nil {
		b.Fatal(err)
	}
	points := make([]string, 100)
	for i := range points {
		points[i] = "p" + strconv.Itoa(i)
	}
	src := bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
		batch := make([]bridge.Sample, len(points))
		now := time.Now()
		for cycle, n := 0, b.N; n > 0; cycle++ {
			k := min(n, len(batch))
			for i := range batch[:k] {
				v := 230 + float64((cycle+i)%7)/100 // noise within 0.07
				if i%10 == 0 {
					v = float64(cycle) // one point in ten steps every cycle
				}
				batch[i] = bridge.Sample{Source: "meter1", Point: points[i], Value: bridge.Float(v), Unit: "V", Time: now}
			}
			if err := out.Emit(ctx, batch[:k]); err != nil {
				return err
			}
			n -= k
		}
		return nil
	})
	if err := br.AddSourceWith("meter1", src, bridge.SourceOptions{Report: bridge.Report{Deadband: 0.5, Heartbeat: 5 * time.Minute}}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	if err := br.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	st := br.Stats().Sources[0]
	if st.Emitted != uint64(b.N) || st.Suppressed+uint64(sink.n.Load()) != uint64(b.N) {
		b.Fatalf("emitted %d, suppressed %d, delivered %d of %d", st.Emitted, st.Suppressed, sink.n.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(st.Suppressed)/float64(b.N), "suppressed/sample")
}
