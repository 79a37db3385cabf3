package nats

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
)

// BenchmarkWrite publishes batches of 1000 samples and reports samples/s;
// the JetStream target is 100,000 samples/s. The stream is in memory, as the
// benchmark measures the sink and not the server's disk.
func BenchmarkWrite(b *testing.B) {
	addr := serverAddr(b)
	for _, js := range []bool{true, false} {
		b.Run(fmt.Sprintf("jetstream=%t", js), func(b *testing.B) {
			ctx := testCtx(b, 10*time.Minute)
			name := uniq()
			makeStream(b, addr, name, name+".>")
			s := newSink(b, Config{URL: "nats://" + addr, Subject: name + ".{source}.{point}", JetStream: js})
			require.NoError(b, s.Connect(ctx))
			batch := bridgetest.Samples("bench", 1000, time.Now())
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for n := 0; n < b.N; n += len(batch) {
				if err := s.Write(ctx, batch[:min(len(batch), b.N-n)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "samples/s")
		})
	}
}
