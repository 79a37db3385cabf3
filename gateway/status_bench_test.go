package gateway

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// statusBatch is a poll cycle of a meter: 100 points, one sample each.
func statusBatch() []bridge.Sample {
	batch := make([]bridge.Sample, 100)
	now := time.Now()
	for i := range batch {
		batch[i] = bridge.Sample{Source: "meter1", Point: fmt.Sprintf("point_%03d", i), Value: bridge.Float(230.5), Unit: "V", Time: now}
	}
	return batch
}

// countSink counts the samples it is given and closes done once it has
// want of them.
type countSink struct {
	n    atomic.Int64
	want int64
	done chan struct{}
}

func (c *countSink) Write(_ context.Context, batch []bridge.Sample) error {
	if c.n.Add(int64(len(batch))) == c.want {
		close(c.done)
	}
	return nil
}
func (c *countSink) Close(context.Context) error { return nil }

// BenchmarkStatusTap measures what the status page's tap costs on the
// devices' path to the sinks. "observe" is the tap alone on a 100-point
// poll cycle (ns/sample; no allocation once the points are known);
// "bridge" and "bridge+tap" push the same cycles through a bridge into a
// sink that counts them, without and with the tap, so the difference is
// the tap's share of the hot path.
func BenchmarkStatusTap(b *testing.B) {
	b.Run("observe", func(b *testing.B) {
		lv := &latestValues{points: map[string]*latestValue{}}
		batch := statusBatch()
		lv.observe(batch)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			lv.observe(batch)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/sample")
	})
	for _, tap := range []bool{false, true} {
		name := "bridge"
		if tap {
			name = "bridge+tap"
		}
		b.Run(name, func(b *testing.B) {
			batch := statusBatch()
			n := b.N * len(batch)
			var src bridge.Source = bridge.SourceFunc(func(ctx context.Context, out bridge.Emitter) error {
				for range b.N {
					if err := out.Emit(ctx, batch); err != nil {
						return err
					}
				}
				return nil
			})
			if tap {
				st := &statusState{}
				src = st.tap(src)
			}
			br := bridge.New(bridge.Options{Logger: discardLogger})
			sink := &countSink{want: int64(n), done: make(chan struct{})}
			require.NoError(b, br.AddSink("count", sink, bridge.SinkOptions{}))
			require.NoError(b, br.AddSource("meter1", src))
			b.ReportAllocs()
			b.ResetTimer()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- br.Run(ctx) }()
			<-sink.done
			b.StopTimer()
			cancel()
			<-done
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/sample")
		})
	}
}
