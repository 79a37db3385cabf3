package bridge_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
)

func TestBatchJSON(t *testing.T) {
	msg := []bridge.Sample{
		{Source: "meter1", Point: "voltage_l1", Value: bridge.Float(230.5), Unit: "V", Time: t0, Seq: 101},
		{Source: "meter1", Point: "energy", Value: bridge.Uint(1 << 63), Unit: "Wh", Time: t0.Add(time.Millisecond), Seq: 102},
		{Source: "meter1", Point: "frequency", Quality: bridge.Bad, Reason: "timeout", Code: 11, Time: t0, Seq: 103},
	}
	got := string(bridge.AppendBatchJSON(nil, msg, true))
	assert.Equal(t, `{"source":"meter1","time":"2026-11-21T10:00:00.123456789Z","seq":[101,103],"points":[`+
		`{"point":"voltage_l1","value":230.5,"unit":"V"},`+
		`{"point":"energy","value":9223372036854775808,"unit":"Wh","time":"2026-11-21T10:00:00.124456789Z"},`+
		`{"point":"frequency","quality":"bad","error":"timeout","code":11}]}`, got)
	back, err := bridge.DecodeBatchJSON([]byte(got))
	require.NoError(t, err)
	require.Len(t, back, len(msg))
	for i := range msg {
		assert.True(t, back[i].Time.Equal(msg[i].Time))
		back[i].Time = msg[i].Time
		assert.True(t, back[i].Value.Equal(msg[i].Value), "%v", back[i].Value)
		back[i].Value = msg[i].Value
	}
	assert.Equal(t, msg, back)

	// Without units, and with an unnumbered sample: each numbered point
	// carries its own seq.
	msg[1].Seq = 0
	got = string(bridge.AppendBatchJSON(nil, msg[:2], false))
	assert.Equal(t, `{"source":"meter1","time":"2026-11-21T10:00:00.123456789Z","points":[`+
		`{"point":"voltage_l1","value":230.5,"seq":101},`+
		`{"point":"energy","value":9223372036854775808,"time":"2026-11-21T10:00:00.124456789Z"}]}`, got)
	back, err = bridge.DecodeBatchJSON([]byte(got))
	require.NoError(t, err)
	assert.EqualValues(t, []uint64{101, 0}, []uint64{back[0].Seq, back[1].Seq})
	assert.Empty(t, back[0].Unit)

	for _, bad := range []string{`{"points":[]}`, `{"source":"m","points":[{"value":1}]}`, `{"source":"m","seq":[1,5],"points":[{"point":"a"}]}`,
		`{"source":"m","points":[{"point":"a","quality":"meh"}]}`, `{"source":"m","points":[{"point":"a","value":{}}]}`, `[`} {
		_, err := bridge.DecodeBatchJSON([]byte(bad))
		assert.Error(t, err, bad)
	}

	meta := bridge.AppendMetaJSON(nil, "meter1", map[string]string{"voltage_l1": "V", "current_l1": "A"})
	assert.Equal(t, `{"source":"meter1","units":{"current_l1":"A","voltage_l1":"V"}}`, string(meta))
	src, units, err := bridge.DecodeMetaJSON(meta)
	require.NoError(t, err)
	assert.Equal(t, "meter1", src)
	assert.Equal(t, map[string]string{"voltage_l1": "V", "current_l1": "A"}, units)
}

func TestNextBatch(t *testing.T) {
	s := func(src, point string, seq uint64) bridge.Sample {
		return bridge.Sample{Source: src, Point: point, Seq: seq}
	}
	many := make([]bridge.Sample, 100)
	for i := range many {
		many[i] = s("m", string(rune('A'+i%50)), uint64(i+1))
	}
	for _, tc := range []struct {
		name  string
		batch []bridge.Sample
		max   int
		want  []int
	}{
		{"empty", nil, 0, nil},
		{"one cycle", []bridge.Sample{s("m", "a", 1), s("m", "b", 2), s("m", "c", 3)}, 0, []int{3}},
		{"two cycles", []bridge.Sample{s("m", "a", 1), s("m", "b", 2), s("m", "a", 3), s("m", "b", 4)}, 0, []int{2, 2}},
		{"two sources", []bridge.Sample{s("m", "a", 1), s("n", "a", 1), s("n", "b", 2), s("m", "b", 2)}, 0, []int{1, 2, 1}},
		{"a gap in seq", []bridge.Sample{s("m", "a", 1), s("m", "b", 3)}, 0, []int{1, 1}},
		{"unnumbered samples do not cut", []bridge.Sample{s("m", "a", 1), s("m", "b", 0), s("m", "c", 2)}, 0, []int{3}},
		{"max", []bridge.Sample{s("m", "a", 1), s("m", "b", 2), s("m", "c", 3)}, 2, []int{2, 1}},
		{"many points: a set", many, 0, []int{50, 50}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []int
			for b := tc.batch; len(b) > 0; {
				n := bridge.NextBatch(b, tc.max)
				require.Positive(t, n)
				got = append(got, n)
				b = b[n:]
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

// FuzzDecodeBatchJSON: any input decodes or fails without a panic, and what
// decodes encodes to a message that decodes to the same samples.
func FuzzDecodeBatchJSON(f *testing.F) {
	f.Add([]byte(`{"source":"m","time":"2026-11-21T10:00:00Z","seq":[1,2],"points":[{"point":"a","value":1},{"point":"b","value":"x","quality":"bad","error":"e"}]}`))
	f.Add([]byte(`{"source":"m","points":[{"point":"a","value":1.5,"seq":3}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ss, err := bridge.DecodeBatchJSON(data)
		if err != nil || len(ss) == 0 {
			return
		}
		for i := range ss {
			ss[i].Source = ss[0].Source
		}
		again, err := bridge.DecodeBatchJSON(bridge.AppendBatchJSON(nil, ss, true))
		require.NoError(t, err)
		require.Len(t, again, len(ss))
		for i := range ss {
			assert.True(t, again[i].Value.Equal(ss[i].Value) || ss[i].Value.Kind() == bridge.KindFloat, "%v %v", again[i].Value, ss[i].Value)
			assert.Equal(t, ss[i].Point, again[i].Point)
		}
	})
}
