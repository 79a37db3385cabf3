package bridge

import (
	"context"
	"io"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// BenchmarkJSONLinesMix measures the JSON-lines sink on what a Modbus poll
// cycle emits (BenchmarkCycle's device in modbus): 40 integer registers, 30
// float32 readings and 30 scaled counters with units, the samples of each
// read sharing their time. One op is one sample.
func BenchmarkJSONLinesMix(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	now := time.Now()
	var cycle []Sample
	for i := range 40 {
		cycle = append(cycle, Sample{Source: "bench", Point: "h" + strconv.Itoa(i), Value: Uint(uint64(r.IntN(65536))), Time: now})
	}
	for i := range 30 {
		f := float32(200 + r.Float64()*60)
		v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
		cycle = append(cycle, Sample{Source: "bench", Point: "f" + strconv.Itoa(i), Value: Float(v), Unit: "V", Time: now.Add(time.Microsecond)})
	}
	for i := range 30 {
		cycle = append(cycle, Sample{Source: "bench", Point: "e" + strconv.Itoa(i), Value: Float(float64(r.IntN(1000000)) / 10), Unit: "kWh", Time: now.Add(2 * time.Microsecond)})
	}
	var batch []Sample
	for range 5 {
		batch = append(batch, cycle...)
	}
	sink := NewJSONLines(io.Discard)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for n := b.N; n > 0; n -= len(batch) {
		if err := sink.Write(ctx, batch[:min(n, len(batch))]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}
