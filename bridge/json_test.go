package bridge_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
)

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.UTC)

func TestAppendJSON(t *testing.T) {
	tests := []struct {
		name string
		s    bridge.Sample
		want string
	}{
		{"design example", bridge.Sample{Source: "meter1", Point: "voltage_l1", Value: bridge.Float(230.5), Unit: "V", Time: t0},
			`{"source":"meter1","point":"voltage_l1","value":230.5,"unit":"V","quality":"good","time":"2026-11-21T10:00:00.123456789Z"}`},
		{"integral float keeps a fraction", bridge.Sample{Source: "m", Point: "p", Value: bridge.Float(230), Time: t0},
			`{"source":"m","point":"p","value":230.0,"quality":"good","time":"2026-11-21T10:00:00.123456789Z"}`},
		{"big float uses an exponent", bridge.Sample{Source: "m", Point: "p", Value: bridge.Float(1e21)},
			`{"source":"m","point":"p","value":1e+21,"quality":"good"}`},
		{"tiny float", bridge.Sample{Source: "m", Point: "p", Value: bridge.Float(-1.5e-7)},
			`{"source":"m","point":"p","value":-1.5e-07,"quality":"good"}`},
		{"int64 exact", bridge.Sample{Source: "m", Point: "p", Value: bridge.Int(math.MinInt64)},
			`{"source":"m","point":"p","value":-9223372036854775808,"quality":"good"}`},
		{"uint64 exact", bridge.Sample{Source: "m", Point: "p", Value: bridge.Uint(math.MaxUint64)},
			`{"source":"m","point":"p","value":18446744073709551615,"quality":"good"}`},
		{"bool", bridge.Sample{Source: "m", Point: "p", Value: bridge.Bool(true)},
			`{"source":"m","point":"p","value":true,"quality":"good"}`},
		{"string with escapes", bridge.Sample{Source: "m\"1", Point: "p\\", Value: bridge.String("a\nb\x01\u2028é")},
			`{"source":"m\"1","point":"p\\","value":"a\nb\u0001\u2028é","quality":"good"}`},
		{"invalid UTF-8", bridge.Sample{Source: "m", Point: "p", Value: bridge.String("a\xffb")},
			`{"source":"m","point":"p","value":"a\ufffdb","quality":"good"}`},
		{"NaN", bridge.Sample{Source: "m", Point: "p", Value: bridge.Float(math.NaN())},
			`{"source":"m","point":"p","value":"NaN","quality":"good"}`},
		{"+Inf", bridge.Sample{Source: "m", Point: "p", Value: bridge.Float(math.Inf(1))},
			`{"source":"m","point":"p","value":"+Inf","quality":"good"}`},
		{"-Inf", bridge.Sample{Source: "m", Point: "p", Value: bridge.Float(math.Inf(-1))},
			`{"source":"m","point":"p","value":"-Inf","quality":"good"}`},
		{"bad without value", bridge.Sample{Source: "m", Point: "p", Quality: bridge.Bad, Reason: "i/o timeout", Time: t0},
			`{"source":"m","point":"p","quality":"bad","time":"2026-11-21T10:00:00.123456789Z","error":"i/o timeout"}`},
		{"uncertain with code and seq", bridge.Sample{Source: "m", Point: "p", Value: bridge.Int(1), Quality: bridge.Uncertain, Reason: "UncertainLastUsableValue", Code: 0x40900000, Seq: 42},
			`{"source":"m","point":"p","value":1,"quality":"uncertain","error":"UncertainLastUsableValue","code":1083179008,"seq":42}`},
		{"time in another zone is written in UTC", bridge.Sample{Source: "m", Point: "p", Value: bridge.Int(1), Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))},
			`{"source":"m","point":"p","value":1,"quality":"good","time":"2026-01-02T02:04:05.000000000Z"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(bridge.AppendJSON(nil, &tt.s))
			assert.Equal(t, tt.want, got)
			assert.True(t, json.Valid([]byte(got)), "valid JSON")
			back, err := bridge.DecodeJSON([]byte(got))
			require.NoError(t, err)
			want := tt.s
			if s := want.Value.Str(); !utf8.ValidString(s) {
				want.Value = bridge.String(strings.ToValidUTF8(s, "\uFFFD"))
			}
			assertSameSample(t, want, back)
		})
	}
}

func assertSameSample(t *testing.T, want, got bridge.Sample) {
	t.Helper()
	assert.Equal(t, want.Source, got.Source)
	assert.Equal(t, want.Point, got.Point)
	assert.True(t, want.Value.Equal(got.Value),
		"value: want %v (%s), got %v (%s)", want.Value, want.Value.Kind(), got.Value, got.Value.Kind())
	assert.Equal(t, want.Unit, got.Unit)
	assert.Equal(t, want.Quality, got.Quality)
	assert.Equal(t, want.Reason, got.Reason)
	assert.Equal(t, want.Code, got.Code)
	assert.Equal(t, want.Seq, got.Seq)
	assert.True(t, want.Time.Equal(got.Time), "time: want %v, got %v", want.Time, got.Time)
}

func TestDecodeJSONErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"not JSON", `{"source":`, "unexpected end of JSON input"},
		{"missing source", `{"point":"p","quality":"good"}`, `field "source" missing`},
		{"missing point", `{"source":"s","quality":"good"}`, `field "point" missing`},
		{"missing quality", `{"source":"s","point":"p"}`, `field "quality" missing`},
		{"unknown quality", `{"source":"s","point":"p","quality":"fine"}`, `unknown quality "fine"`},
		{"bad time", `{"source":"s","point":"p","quality":"good","time":"yesterday"}`, `field "time": "yesterday" is not an RFC 3339 time`},
		{"object value", `{"source":"s","point":"p","quality":"good","value":{}}`, `field "value": want a number, boolean, string or null`},
		{"int overflow", `{"source":"s","point":"p","quality":"good","value":-99999999999999999999}`, `field "value": integer -99999999999999999999 out of the int64 range`},
		{"uint overflow", `{"source":"s","point":"p","quality":"good","value":99999999999999999999}`, `out of the uint64 range`},
		{"wrong type", `{"source":1,"point":"p","quality":"good"}`, `field "source": want string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bridge.DecodeJSON([]byte(tt.in))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestDecodeJSONIgnoresUnknownFields(t *testing.T) {
	s, err := bridge.DecodeJSON([]byte(`{"source":"s","point":"p","quality":"good","value":1,"future":{"x":1}}`))
	require.NoError(t, err)
	assert.True(t, s.Value.Equal(bridge.Int(1)))
}

func TestSampleWithEncodingJSON(t *testing.T) {
	in := []bridge.Sample{{Source: "a", Point: "b", Value: bridge.Uint(math.MaxUint64), Time: t0}}
	data, err := json.Marshal(in)
	require.NoError(t, err)
	var out []bridge.Sample
	require.NoError(t, json.Unmarshal(data, &out))
	require.Len(t, out, 1)
	assertSameSample(t, in[0], out[0])
}

func TestAppendJSONDoesNotAllocate(t *testing.T) {
	s := bridge.Sample{Source: "meter1", Point: "voltage_l1", Value: bridge.Float(230.5), Unit: "V", Time: t0, Seq: 9}
	buf := make([]byte, 0, 512)
	allocs := testing.AllocsPerRun(1000, func() { buf = bridge.AppendJSON(buf[:0], &s) })
	assert.Zero(t, allocs)
}

func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"source":"meter1","point":"voltage_l1","value":230.5,"unit":"V","quality":"good","time":"2026-11-21T10:00:00.123456789Z"}`))
	f.Add([]byte(`{"source":"m","point":"p","value":"NaN","quality":"bad","error":"x","code":5,"seq":7}`))
	f.Add([]byte(`{"source":"m","point":"p","value":18446744073709551615,"quality":"uncertain"}`))
	f.Add([]byte(`{"source":"m","point":"p","value":-1e300,"quality":"good","time":"0001-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"source":"\u00e9\ud800","point":"","value":false,"quality":"good"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := bridge.DecodeJSON(data)
		if err != nil {
			return
		}
		enc := bridge.AppendJSON(nil, &s)
		if !json.Valid(enc) {
			t.Fatalf("encoding of a decoded sample is not valid JSON: %s", enc)
		}
		back, err := bridge.DecodeJSON(enc)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", enc, err)
		}
		if !back.Value.Equal(s.Value) || back.Source != s.Source || back.Point != s.Point ||
			back.Quality != s.Quality || back.Reason != s.Reason || back.Unit != s.Unit ||
			back.Code != s.Code || back.Seq != s.Seq || !back.Time.Equal(s.Time) {
			t.Fatalf("round trip changed the sample:\n%+v\n%+v\nvia %s", s, back, enc)
		}
	})
}

func TestJSONLinesConformance(t *testing.T) {
	bridgetest.TestSink(t, bridgetest.Harness{New: func(t *testing.T) (bridge.Sink, bridgetest.Readback) {
		path := filepath.Join(t.TempDir(), "samples.jsonl")
		s, err := bridge.OpenJSONLinesFile(path)
		require.NoError(t, err)
		return s, func(ctx context.Context, want int) ([]bridge.Sample, error) {
			return readJSONLines(path)
		}
	}})
}

func readJSONLines(path string) ([]bridge.Sample, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []bridge.Sample
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		s, err := bridge.DecodeJSON(sc.Bytes())
		if err != nil {
			return out, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

type failingWriter struct{ fail bool }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.fail {
		return 0, fmt.Errorf("disk full")
	}
	return len(p), nil
}

func TestJSONLinesRecoversAfterWriteError(t *testing.T) {
	w := &failingWriter{fail: true}
	s := bridge.NewJSONLines(w)
	ctx := context.Background()
	err := s.Write(ctx, bridgetest.Samples("s", 3, t0))
	require.ErrorContains(t, err, "disk full")
	assert.True(t, bridge.IsRetriable(err))
	w.fail = false
	require.NoError(t, s.Write(ctx, bridgetest.Samples("s", 3, t0)))
	require.NoError(t, s.Close(ctx))
}

func ExampleAppendJSON() {
	s := bridge.Sample{
		Source: "meter1", Point: "voltage_l1", Value: bridge.Float(230.5), Unit: "V",
		Time: time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.UTC),
	}
	fmt.Println(string(bridge.AppendJSON(nil, &s)))
	bad := bridge.BadSample("meter1", "energy", s.Time, fmt.Errorf("i/o timeout"))
	fmt.Println(string(bridge.AppendJSON(nil, &bad)))
	// Output:
	// {"source":"meter1","point":"voltage_l1","value":230.5,"unit":"V","quality":"good","time":"2026-11-21T10:00:00.123456789Z"}
	// {"source":"meter1","point":"energy","quality":"bad","time":"2026-11-21T10:00:00.123456789Z","error":"i/o timeout"}
}

func ExampleDecodeJSON() {
	s, err := bridge.DecodeJSON([]byte(`{"source":"plc1","point":"count","value":18446744073709551615,"quality":"good"}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Source, s.Point, s.Value.Kind(), s.Value)
	// Output: plc1 count uint 18446744073709551615
}
