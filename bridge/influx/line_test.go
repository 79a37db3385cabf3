package influx_test

import (
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/influx"
)

var t0 = time.Unix(1795255200, 123456789)

func TestEncoder(t *testing.T) {
	def := influx.Format{PointTag: "point", UnitTag: "unit", Field: "value", ByKind: true}
	single := influx.Format{PointTag: "point", UnitTag: "unit", Field: "value"}
	v1 := def
	v1.NoUint = true
	for _, tc := range []struct {
		name   string
		format influx.Format
		s      bridge.Sample
		want   string
		err    error
	}{
		{"Float", def, bridge.Sample{Source: "meter1", Point: "voltage_l1", Value: bridge.Float(230.5), Unit: "V", Time: t0},
			"meter1,point=voltage_l1,unit=V value=230.5 1795255200123456789\n", nil},
		{"FloatExponent", def, bridge.Sample{Source: "m", Point: "p", Value: bridge.Float(-1.5e-300), Time: t0},
			"m,point=p value=-1.5e-300 1795255200123456789\n", nil},
		{"Int", def, bridge.Sample{Source: "m", Point: "p", Value: bridge.Int(math.MinInt64), Time: t0},
			"m,point=p value_int=-9223372036854775808i 1795255200123456789\n", nil},
		{"Uint", def, bridge.Sample{Source: "m", Point: "p", Value: bridge.Uint(math.MaxUint64), Time: t0},
			"m,point=p value_uint=18446744073709551615u 1795255200123456789\n", nil},
		{"UintV1", v1, bridge.Sample{Source: "m", Point: "p", Value: bridge.Uint(42), Time: t0},
			"m,point=p value_uint=42i 1795255200123456789\n", nil},
		{"UintV1TooBig", v1, bridge.Sample{Source: "m", Point: "p", Value: bridge.Uint(math.MaxInt64 + 1), Time: t0}, "", influx.ErrUintRange},
		{"Bool", def, bridge.Sample{Source: "m", Point: "p", Value: bridge.Bool(true), Time: t0},
			"m,point=p value_bool=true 1795255200123456789\n", nil},
		{"String", def, bridge.Sample{Source: "m", Point: "p", Value: bridge.String("a \"q\" \\ b\nc"), Time: t0},
			"m,point=p value_string=\"a \\\"q\\\" \\\\ b\nc\" 1795255200123456789\n", nil},
		{"Single", single, bridge.Sample{Source: "m", Point: "p", Value: bridge.Int(1), Time: t0},
			"m,point=p value=1i 1795255200123456789\n", nil},
		{"Escaping", def, bridge.Sample{Source: "plc 1,hall=2", Point: "a b,c=d", Unit: "m/s²", Value: bridge.Float(1), Time: t0},
			"plc\\ 1\\,hall=2,point=a\\ b\\,c\\=d,unit=m/s² value=1 1795255200123456789\n", nil},
		{"InnerBackslash", def, bridge.Sample{Source: `C:\x`, Point: `a\b`, Value: bridge.Float(1), Time: t0},
			"C:\\x,point=a\\b value=1 1795255200123456789\n", nil},
		{"UnitTagSortedFirst", influx.Format{PointTag: "point", UnitTag: "eu", Field: "v"},
			bridge.Sample{Source: "m", Point: "p", Unit: "V", Value: bridge.Float(1), Time: t0},
			"m,eu=V,point=p v=1 1795255200123456789\n", nil},
		{"NoUnitTag", influx.Format{PointTag: "point", Field: "value"},
			bridge.Sample{Source: "m", Point: "p", Unit: "V", Value: bridge.Float(1), Time: t0},
			"m,point=p value=1 1795255200123456789\n", nil},
		{"Uncertain", def, bridge.Sample{Source: "m", Point: "p", Value: bridge.Float(2), Quality: bridge.Uncertain, Time: t0},
			"m,point=p value=2 1795255200123456789\n", nil},
		{"ZeroTime", def, bridge.Sample{Source: "m", Point: "p", Value: bridge.Float(1)}, "m,point=p value=1\n", nil},
		{"TooEarly", def, bridge.Sample{Source: "m", Point: "p", Value: bridge.Float(1), Time: time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)}, "", influx.ErrTimeRange},
		{"TooLate", def, bridge.Sample{Source: "m", Point: "p", Value: bridge.Float(1), Time: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}, "", influx.ErrTimeRange},
		{"Bad", def, bridge.BadSample("m", "p", t0, nil), "", influx.ErrBadSample},
		{"NaN", def, bridge.Sample{Source: "m", Point: "p", Value: bridge.Float(math.NaN()), Time: t0}, "", influx.ErrNotFinite},
		{"Inf", def, bridge.Sample{Source: "m", Point: "p", Value: bridge.Float(math.Inf(-1)), Time: t0}, "", influx.ErrNotFinite},
		{"NoValue", def, bridge.Sample{Source: "m", Point: "p", Time: t0}, "", influx.ErrNoValue},
		{"EmptySource", def, bridge.Sample{Point: "p", Value: bridge.Int(1), Time: t0}, "", influx.ErrName},
		{"EmptyPoint", def, bridge.Sample{Source: "m", Value: bridge.Int(1), Time: t0}, "", influx.ErrName},
		{"Comment", def, bridge.Sample{Source: "#m", Point: "p", Value: bridge.Int(1), Time: t0}, "", influx.ErrName},
		{"LineBreak", def, bridge.Sample{Source: "m", Point: "p\nq", Value: bridge.Int(1), Time: t0}, "", influx.ErrName},
		{"TrailingBackslash", def, bridge.Sample{Source: "m", Point: "p", Unit: `u\`, Value: bridge.Int(1), Time: t0}, "", influx.ErrName},
		{"BackslashBeforeSpace", def, bridge.Sample{Source: `m\ x`, Point: "p", Value: bridge.Int(1), Time: t0}, "", influx.ErrName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := influx.NewEncoder(tc.format)
			prefix := []byte("previous line\n")
			got, err := e.Append(prefix, &tc.s)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				assert.Equal(t, "previous line\n", string(got), "nothing appended on error")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "previous line\n"+tc.want, string(got))
		})
	}
}

// FuzzEncoder checks that any source, point, unit and string value either
// fails cleanly or makes exactly one line that splits back into the parts
// it was made from.
func FuzzEncoder(f *testing.F) {
	f.Add("meter1", "voltage_l1", "V", "text")
	f.Add("a b,c", "d=e f", `g\h`, "\"q\"\n\\")
	f.Add("#x", "", "\\", "")
	f.Fuzz(func(t *testing.T, source, point, unit, str string) {
		e := influx.NewEncoder(influx.Format{PointTag: "point", UnitTag: "unit", Field: "value", ByKind: true})
		s := bridge.Sample{Source: source, Point: point, Unit: unit, Value: bridge.String(str), Time: t0}
		line, err := e.Append(nil, &s)
		if err != nil {
			assert.ErrorIs(t, err, influx.ErrName)
			assert.Empty(t, line)
			return
		}
		require.True(t, strings.HasSuffix(string(line), " 1795255200123456789\n"), "%q", line)
		if !utf8.ValidString(source + point + unit + str) {
			return
		}
		// Split the way InfluxDB does: an unescaped space ends the
		// series key; the field value is quoted.
		key, rest := splitUnescaped(string(line), ' ')
		assert.True(t, strings.HasPrefix(rest, "value_string=\""), "%q", line)
		parts := splitAll(key, ',')
		require.GreaterOrEqual(t, len(parts), 2, "%q", line)
		assert.Equal(t, source, unescape(parts[0]))
		tags := map[string]string{}
		for _, p := range parts[1:] {
			k, v := splitUnescaped(p, '=')
			tags[unescape(k)] = unescape(v)
		}
		assert.Equal(t, point, tags["point"])
		if unit != "" {
			assert.Equal(t, unit, tags["unit"])
		}
	})
}

// splitUnescaped splits s at the first c not preceded by a backslash.
func splitUnescaped(s string, c byte) (string, string) {
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == c {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

func splitAll(s string, c byte) []string {
	var out []string
	for s != "" {
		var head string
		head, s = splitUnescaped(s, c)
		out = append(out, head)
	}
	return out
}

// unescape undoes the escapes of measurements and tags, as InfluxDB 1.x
// does: only "\ ", "\," and "\=".
func unescape(s string) string {
	return strings.NewReplacer(`\ `, " ", `\,`, ",", `\=`, "=").Replace(s)
}

func BenchmarkEncoder(b *testing.B) {
	e := influx.NewEncoder(influx.Format{PointTag: "point", UnitTag: "unit", Field: "value", ByKind: true, NoUint: true})
	batch := make([]bridge.Sample, 5000)
	for i := range batch {
		batch[i] = bridge.Sample{Source: "meter 1", Point: "voltage_l1", Unit: "V", Time: t0.Add(time.Duration(i))}
		switch i % 4 {
		case 0:
			batch[i].Value = bridge.Float(230.5 + float64(i))
		case 1:
			batch[i].Value = bridge.Int(int64(i) * 1000)
		case 2:
			batch[i].Value = bridge.Bool(i%3 == 0)
		case 3:
			batch[i].Value = bridge.String("state \"on\"")
		}
	}
	buf := make([]byte, 0, 1<<20)
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		buf = buf[:0]
		for i := range batch {
			var err error
			if buf, err = e.Append(buf, &batch[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "samples/s")
}
