package sparkplug

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/mqtt"
)

// BenchmarkDDATA publishes the cycles of a 100-point device whose every
// point changes every cycle (one Write of 100 Float samples, one DDATA) to
// the local Mosquitto, and reports samples/s and the bytes on the wire per
// sample: the DDATA PUBLISH packets (bytes/sample), next to what the MQTT
// JSON sink sends for the same samples, one PUBLISH per sample on
// m2m/{source}/{point} (json_bytes/sample).
func BenchmarkDDATA(b *testing.B) {
	addr := brokerAddr(b)
	for _, v := range []mqtt.Version{mqtt.V311, mqtt.V5} {
		b.Run("mqtt"+v.String(), func(b *testing.B) {
			ctx := testCtx(b, 10*time.Minute)
			cfg := testConfig(b, addr)
			cfg.Version = v
			s := newSink(b, cfg)
			require.NoError(b, s.Connect(ctx))
			const points = 100
			batch := make([]bridge.Sample, points)
			base := time.Now()
			cycle := func(c int) {
				for i := range batch {
					batch[i] = bridge.Sample{Source: "meter1", Point: fmt.Sprintf("p%02d", i), Unit: "V",
						Value: bridge.Float(230 + float64(c%1000)*0.01 + float64(i)), Time: base.Add(time.Duration(c) * time.Millisecond)}
				}
			}
			cycle(0)
			require.NoError(b, s.Write(ctx, batch)) // the DBIRTH
			var jsonBytes int
			var buf []byte
			for i := range batch {
				buf = bridge.AppendJSON(buf[:0], &batch[i])
				jsonBytes += publishSize("m2m/meter1/"+batch[i].Point, len(buf))
			}
			st0 := s.Stats()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for n := 1; n <= b.N; n++ {
				cycle(n)
				if err := s.Write(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			el := time.Since(start)
			b.StopTimer()
			st := s.Stats()
			samples := float64(b.N * points)
			b.ReportMetric(samples/el.Seconds(), "samples/s")
			b.ReportMetric(float64(st.DataBytes-st0.DataBytes)/samples, "bytes/sample")
			b.ReportMetric(float64(jsonBytes)/points, "json_bytes/sample")
			require.EqualValues(b, b.N, st.DataMessages-st0.DataMessages, "one DDATA per cycle")
		})
	}
}
