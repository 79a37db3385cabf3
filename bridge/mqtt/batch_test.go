package mqtt

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/klauspost/compress/zstd"
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
		{"Layout", Config{URL: "tcp://x", Layout: "batches"}, []string{`layout: unknown layout "batches": want sample or batch`}},
		{"PointInBatchTopic", Config{URL: "tcp://x", Layout: "batch", Topic: "m2m/{source}/{point}"}, []string{`topic: "m2m/{source}/{point}" holds {point}, but a batch message carries many points (use {source} only, e.g. m2m/{source})`}},
		{"MetadataWithoutBatch", Config{URL: "tcp://x", MetadataTopic: "m2m/{source}/meta"}, []string{"metadata_topic: is only used with layout batch"}},
		{"MetadataPoint", Config{URL: "tcp://x", Layout: "batch", MetadataTopic: "m2m/{point}/meta"}, []string{`metadata_topic: "m2m/{point}/meta" holds {point}: the metadata message of a source names all its points`}},
		{"MetadataSameTopic", Config{URL: "tcp://x", Layout: "batch", MetadataTopic: "m2m/{source}"}, []string{`metadata_topic: "m2m/{source}" is the topic of the batch messages: give the metadata a topic of its own`}},
		{"ZstdOn311", Config{URL: "tcp://x", Layout: "batch", Compression: "zstd"}, []string{"compression: zstd needs MQTT 5: its content type rides in an MQTT 5 property, which MQTT 3.1.1 does not have (set version: 5)"}},
		{"ZstdPerSample", Config{URL: "tcp://x", Version: V5, Compression: "zstd"}, []string{"compression: zstd is only for layout batch: a message per sample is too small to gain from it"}},
		{"Codec", Config{URL: "tcp://x", Version: V5, Layout: "batch", Compression: "gzip"}, []string{`compression: unknown compression "gzip": want none or zstd`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, fieldErrs(tc.cfg.Validate()))
		})
	}
	require.NoError(t, Config{URL: "tcp://x", Version: V5, Layout: "batch", Compression: "zstd", MetadataTopic: "m2m/{source}/meta"}.Validate())
	s, err := New(Config{URL: "tcp://x", Layout: "batch"})
	require.NoError(t, err)
	assert.Equal(t, "m2m/meter1", s.Topic("meter1", "v"), "the default batch topic")
}

// v5message is a message as an MQTT 5 subscriber sees it.
type v5message struct {
	topic       string
	payload     []byte
	contentType string
	retained    bool
}

// subscribeV5 subscribes with MQTT 5 (paho.golang), so that the test sees
// the Content Type property.
func subscribeV5(t *testing.T, addr string, filters ...string) func() []v5message {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	var mu sync.Mutex
	var got []v5message
	c := paho.NewClient(paho.ClientConfig{Conn: conn, OnPublishReceived: []func(paho.PublishReceived) (bool, error){
		func(pr paho.PublishReceived) (bool, error) {
			m := v5message{topic: pr.Packet.Topic, payload: append([]byte(nil), pr.Packet.Payload...), retained: pr.Packet.Retain}
			if pr.Packet.Properties != nil {
				m.contentType = pr.Packet.Properties.ContentType
			}
			mu.Lock()
			got = append(got, m)
			mu.Unlock()
			return true, nil
		}}})
	ctx := testCtx(t, 10*time.Second)
	_, err = c.Connect(ctx, &paho.Connect{ClientID: "m2mtest-v5-" + uniq()[8:], CleanStart: true, KeepAlive: 30})
	require.NoError(t, err)
	var subs []paho.SubscribeOptions
	for _, f := range filters {
		subs = append(subs, paho.SubscribeOptions{Topic: f, QoS: 1})
	}
	_, err = c.Subscribe(ctx, &paho.Subscribe{Subscriptions: subs})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
	return func() []v5message {
		mu.Lock()
		defer mu.Unlock()
		return append([]v5message(nil), got...)
	}
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

// TestBatchLayoutThroughMosquitto: one message per source and poll cycle,
// read back from Mosquitto: with MQTT 3.1.1 units in each message; with
// MQTT 5 and zstd the payload is announced as application/json+zstd and
// decoded by klauspost/compress's decoder, and the units come once, in the
// retained metadata message, which a consumer joins by source.
func TestBatchLayoutThroughMosquitto(t *testing.T) {
	addr := brokerAddr(t)
	t.Run("v3 plain", func(t *testing.T) {
		prefix := uniq()
		sub := subscribe(t, addr, prefix+"/#", 1)
		s := newSink(t, Config{URL: "tcp://" + addr, Layout: "batch", Topic: prefix + "/{source}", QoS: 1})
		batch := append(cycles("meter1", 2), cycles("meter2", 1)...)
		require.NoError(t, s.Write(testCtx(t, 20*time.Second), batch))
		got := sub.wait(t, 3)
		require.Len(t, got, 3, "one message per source and cycle")
		var back []bridge.Sample
		for _, m := range got {
			ss, err := bridge.DecodeBatchJSON(m.payload)
			require.NoError(t, err, "%s", m.payload)
			assert.Equal(t, prefix+"/"+ss[0].Source, m.topic)
			back = append(back, ss...)
		}
		sameSamples(t, batch, back)
	})
	t.Run("v5 zstd metadata", func(t *testing.T) {
		prefix := uniq()
		metaTopic := prefix + "/meta/{source}"
		defer clearRetained(t, addr, prefix+"/meta/meter1", prefix+"/meta/meter2")
		msgs := subscribeV5(t, addr, prefix+"/#")
		s := newSink(t, Config{URL: "tcp://" + addr, Version: V5, Layout: "batch", Topic: prefix + "/data/{source}",
			MetadataTopic: metaTopic, Compression: "zstd", QoS: 1})
		batch := append(cycles("meter1", 3), cycles("meter2", 1)...)
		require.NoError(t, s.Write(testCtx(t, 20*time.Second), batch))
		more := cycles("meter1", 1)
		require.NoError(t, s.Write(testCtx(t, 20*time.Second), more))
		require.Eventually(t, func() bool { return len(msgs()) >= 7 }, 20*time.Second, 5*time.Millisecond)
		dec, err := zstd.NewReader(nil)
		require.NoError(t, err)
		defer dec.Close()
		units := map[string]map[string]string{}
		var back []bridge.Sample
		var raw, packed int
		for _, m := range msgs() {
			switch {
			case m.topic == prefix+"/meta/meter1" || m.topic == prefix+"/meta/meter2":
				assert.Equal(t, ContentTypeJSON, m.contentType)
				src, u, err := bridge.DecodeMetaJSON(m.payload)
				require.NoError(t, err)
				units[src] = u
			default:
				assert.Equal(t, ContentTypeJSONZstd, m.contentType)
				js, err := dec.DecodeAll(m.payload, nil)
				require.NoError(t, err, "a zstd frame")
				raw += len(js)
				packed += len(m.payload)
				ss, err := bridge.DecodeBatchJSON(js)
				require.NoError(t, err, "%s", js)
				for i := range ss {
					assert.Empty(t, ss[i].Unit, "units come in the metadata message")
					ss[i].Unit = units[ss[i].Source][ss[i].Point] // the consumer's join
				}
				back = append(back, ss...)
			}
		}
		assert.Len(t, units, 2, "one metadata message per source, published before the data")
		assert.Equal(t, map[string]string{"voltage_l1": "V", "energy": "Wh", "state": ""}, units["meter1"])
		sameSamples(t, append(batch, more...), back)
		t.Logf("batch JSON %d bytes, zstd %d bytes", raw, packed)

		// The metadata is retained: a consumer that comes later gets it.
		late := subscribeV5(t, addr, prefix+"/meta/#")
		require.Eventually(t, func() bool { return len(late()) == 2 }, 20*time.Second, 5*time.Millisecond)
		for _, m := range late() {
			assert.True(t, m.retained)
		}
	})
}

// sameSamples compares what was sent with what came back, field by field,
// in the order of source, time and point (MQTT 5 messages are published
// concurrently).
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

// TestBatchConformance: the sink in the batch layout (MQTT 3.1.1 plain;
// MQTT 5 with zstd and a metadata topic) passes bridgetest's suite, read
// back from Mosquitto.
func TestBatchConformance(t *testing.T) {
	addr := brokerAddr(t)
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	require.NoError(t, err)
	defer dec.Close()
	for _, cfg := range []Config{
		{Version: V311, Layout: LayoutBatch},
		{Version: V5, Layout: LayoutBatch, Compression: CompressionZstd},
	} {
		t.Run(fmt.Sprintf("v%d %s", cfg.Version, cfg.Compression), func(t *testing.T) {
			bridgetest.TestSink(t, bridgetest.Harness{
				New: func(t *testing.T) (bridge.Sink, bridgetest.Readback) {
					prefix := uniq()
					rb := sessionReadbackWith(t, addr, prefix+"/data/#", func(p []byte) ([]bridge.Sample, error) {
						if cfg.Compression == CompressionZstd {
							var err error
							if p, err = dec.DecodeAll(p, nil); err != nil {
								return nil, err
							}
						}
						return bridge.DecodeBatchJSON(p)
					})
					c := cfg
					c.URL, c.QoS, c.Topic = "tcp://"+addr, 1, prefix+"/data/{source}"
					s, err := New(c)
					require.NoError(t, err)
					return s, rb
				},
			})
		})
	}
}
