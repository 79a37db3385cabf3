package nats

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
)

func TestValidateBatchLayout(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"Layout", Config{URL: "nats://x", Layout: "batches"}, []string{`layout: unknown layout "batches": want sample or batch`}},
		{"PointInBatchSubject", Config{URL: "nats://x", Layout: "batch", Subject: "m2m.{source}.{point}"}, []string{`subject: "m2m.{source}.{point}" holds {point}, but a batch message carries many points (use {source} only, e.g. m2m.{source})`}},
		{"MetadataWithoutBatch", Config{URL: "nats://x", MetadataSubject: "meta.{source}"}, []string{"metadata_subject: is only used with layout batch"}},
		{"MetadataPoint", Config{URL: "nats://x", Layout: "batch", MetadataSubject: "meta.{point}"}, []string{`metadata_subject: "meta.{point}" holds {point}: the metadata message of a source names all its points`}},
		{"MetadataOverlaps", Config{URL: "nats://x", Layout: "batch", MetadataSubject: "m2m.meta"}, []string{`metadata_subject: "m2m.meta" overlaps the subjects of the batch messages (m2m.*): give the metadata subjects of their own`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, fieldErrs(tc.cfg.Validate()))
		})
	}
	require.NoError(t, Config{URL: "nats://x", Layout: "batch", MetadataSubject: "m2m.meta.{source}", Subject: "m2m.data.{source}"}.Validate())
	s, err := New(Config{URL: "nats://x", Layout: "batch"})
	require.NoError(t, err)
	assert.Equal(t, "m2m.meter1", s.Subject("meter1", "v"), "the default batch subject")
}

// cycles returns n poll cycles of a source with three points, numbered.
func cycles(source string, n int) []bridge.Sample {
	t0 := time.Now().Truncate(time.Second)
	var out []bridge.Sample
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Second)
		out = append(out,
			bridge.Sample{Source: source, Point: "voltage_l1", Value: bridge.Float(230 + float64(i)/10), Unit: "V", Time: at},
			bridge.Sample{Source: source, Point: "energy", Value: bridge.Uint(uint64(1000 + i)), Unit: "Wh", Time: at},
			bridge.Sample{Source: source, Point: "state", Value: bridge.String("run"), Time: at},
		)
	}
	for i := range out {
		out[i].Seq = uint64(i + 1)
	}
	return out
}

// TestBatchLayoutThroughNATS: one message per source and poll cycle, with
// core NATS (units in each message) and with JetStream and a metadata
// subject, which create_stream puts in the stream and a consumer joins by
// source; read back from nats-server.
func TestBatchLayoutThroughNATS(t *testing.T) {
	addr := serverAddr(t)
	t.Run("core", func(t *testing.T) {
		prefix := uniq()
		nc, err := nats.Connect("nats://" + addr)
		require.NoError(t, err)
		defer nc.Close()
		var mu sync.Mutex
		var got []*nats.Msg
		_, err = nc.Subscribe(prefix+".>", func(m *nats.Msg) {
			mu.Lock()
			got = append(got, m)
			mu.Unlock()
		})
		require.NoError(t, err)
		require.NoError(t, nc.Flush())
		s := newSink(t, Config{URL: "nats://" + addr, Layout: "batch", Subject: prefix + ".{source}"})
		batch := append(cycles("meter1", 2), cycles("meter2", 1)...)
		require.NoError(t, s.Write(testCtx(t, 20*time.Second), batch))
		require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 3 }, 20*time.Second, 5*time.Millisecond, "one message per source and cycle")
		mu.Lock()
		defer mu.Unlock()
		var back []bridge.Sample
		for _, m := range got {
			ss, err := bridge.DecodeBatchJSON(m.Data)
			require.NoError(t, err, "%s", m.Data)
			assert.Equal(t, prefix+"."+ss[0].Source, m.Subject)
			back = append(back, ss...)
		}
		sameSamples(t, batch, back)
	})
	t.Run("jetstream metadata", func(t *testing.T) {
		prefix, stream := uniq(), uniq()
		deleteStreamAtEnd(t, addr, stream)
		s := newSink(t, Config{URL: "nats://" + addr, Layout: "batch", JetStream: true, Stream: stream, CreateStream: true,
			Subject: prefix + ".data.{source}", MetadataSubject: prefix + ".meta.{source}"})
		batch := append(cycles("meter1", 3), cycles("meter2", 1)...)
		require.NoError(t, s.Write(testCtx(t, 20*time.Second), batch))
		more := cycles("meter1", 1)
		require.NoError(t, s.Write(testCtx(t, 20*time.Second), more))

		// A consumer reads the stream from the start: the metadata of each
		// source comes before its data, and gives the units.
		var msgs []jetstream.Msg
		require.NoError(t, withJS(t, addr, func(ctx context.Context, js jetstream.JetStream) error {
			cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
			if err != nil {
				return err
			}
			b, err := cons.Fetch(100, jetstream.FetchMaxWait(time.Second))
			if err != nil {
				return err
			}
			for m := range b.Messages() {
				msgs = append(msgs, m)
			}
			return nil
		}))
		require.Len(t, msgs, 2+5, "two metadata messages, five batch messages")
		units := map[string]map[string]string{}
		var back []bridge.Sample
		for _, m := range msgs {
			if strings.HasPrefix(m.Subject(), prefix+".meta.") {
				src, u, err := bridge.DecodeMetaJSON(m.Data())
				require.NoError(t, err)
				units[src] = u
				continue
			}
			ss, err := bridge.DecodeBatchJSON(m.Data())
			require.NoError(t, err)
			for i := range ss {
				require.Contains(t, units, ss[i].Source, "the metadata of a source is in the stream before its data")
				assert.Empty(t, ss[i].Unit)
				ss[i].Unit = units[ss[i].Source][ss[i].Point]
			}
			back = append(back, ss...)
		}
		sameSamples(t, append(batch, more...), back)
	})
}

// sameSamples compares what was sent with what came back, field by field,
// in the order of source, time and point.
func sameSamples(t *testing.T, want, got []bridge.Sample) {
	t.Helper()
	require.Len(t, got, len(want))
	order := func(a, b bridge.Sample) int {
		return cmp.Or(strings.Compare(a.Source, b.Source), a.Time.Compare(b.Time), strings.Compare(a.Point, b.Point), cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.Value.Float(), b.Value.Float()))
	}
	want, got = slices.Clone(want), slices.Clone(got)
	slices.SortFunc(want, order)
	slices.SortFunc(got, order)
	for i := range want {
		w, g := want[i], got[i]
		assert.True(t, w.Time.Equal(g.Time), "%d: time %v, want %v", i, g.Time, w.Time)
		assert.True(t, w.Value.Equal(g.Value), "%d: value %v, want %v", i, g.Value, w.Value)
		g.Time, g.Value = w.Time, w.Value
		assert.Equal(t, w, g, "%d", i)
	}
}

// TestBatchConformance: the sink in the batch layout passes bridgetest's
// suite, read back from a JetStream stream.
func TestBatchConformance(t *testing.T) {
	addr := serverAddr(t)
	bridgetest.TestSink(t, bridgetest.Harness{
		New: func(t *testing.T) (bridge.Sink, bridgetest.Readback) {
			name := uniq()
			makeStream(t, addr, name, name+".>")
			s, err := New(Config{URL: "nats://" + addr, Layout: LayoutBatch, Subject: name + ".{source}", JetStream: true, Stream: name})
			require.NoError(t, err)
			return s, func(ctx context.Context, want int) ([]bridge.Sample, error) {
				got, err := consumeWith(ctx, addr, name, want, bridge.DecodeBatchJSON)
				out := make([]bridge.Sample, len(got))
				for i, g := range got {
					out[i] = g.sample
				}
				return out, err
			}
		},
	})
}
