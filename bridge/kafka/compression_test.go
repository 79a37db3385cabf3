package kafka_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
	"github.com/m2mbridge/m2mbridge/bridge/kafka"
)

// TestCompressionOnTheWire: each codec is what the record batches the
// sink produces carry (their attributes, KIP-98 record batch format, as
// kfake receives them), smaller than the batches without compression, and
// kfake stores and serves them back to a consumer that decodes every
// sample.
func TestCompressionOnTheWire(t *testing.T) {
	codecs := map[kafka.Compression]int16{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
	var want []bridge.Sample
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	for i := range 200 {
		want = append(want, bridge.Sample{Source: "meter1", Point: "voltage_l1", Value: bridge.Float(230 + float64(i%5)/10), Unit: "V", Time: t0.Add(time.Duration(i) * time.Second)})
	}
	size := map[kafka.Compression]int{}
	for codec, attr := range codecs {
		t.Run(string(codec), func(t *testing.T) {
			c := newCluster(t)
			var mu sync.Mutex
			var attrs []int16
			bytesOut := 0
			c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				pr := req.(*kmsg.ProduceRequest)
				mu.Lock()
				defer mu.Unlock()
				for _, tp := range pr.Topics {
					for _, p := range tp.Partitions {
						var rb kmsg.RecordBatch
						if err := rb.ReadFrom(p.Records); err == nil {
							attrs = append(attrs, rb.Attributes&0x07)
							bytesOut += len(p.Records)
						}
					}
				}
				return nil, nil, false // observe only: kfake handles it
			})
			topic := uniqueTopic("codec")
			s := newSink(t, kafka.Config{Brokers: c.ListenAddrs(), Topic: topic, Compression: codec, AutoCreateTopics: true})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			require.NoError(t, s.Write(ctx, want))
			recs, err := consume(ctx, c.ListenAddrs(), len(want), topic)
			require.NoError(t, err)
			assert.Empty(t, bridgetest.Match(want, decode(t, recs)))
			mu.Lock()
			defer mu.Unlock()
			require.NotEmpty(t, attrs)
			for _, a := range attrs {
				assert.Equal(t, attr, a, "the batch's compression codec")
			}
			size[codec] = bytesOut
		})
	}
	for codec := range codecs {
		if codec != "none" && size["none"] > 0 && size[codec] > 0 {
			assert.Less(t, size[codec], size["none"]/3, "%s batches are smaller", codec)
		}
	}
	t.Logf("record batch bytes for %d samples: %v", len(want), size)
}
