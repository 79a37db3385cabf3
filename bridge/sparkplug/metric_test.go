package sparkplug

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/sparkplug/internal/sppb"
	"google.golang.org/protobuf/proto"
)

func TestDataType(t *testing.T) {
	tests := []struct {
		name     string
		kind     bridge.Kind
		declared string
		want     sppb.DataType
	}{
		{"int16", bridge.KindInt, "int16", sppb.DataType_Int16},
		{"uint16", bridge.KindUint, "uint16", sppb.DataType_UInt16},
		{"int32", bridge.KindInt, "int32", sppb.DataType_Int32},
		{"uint32", bridge.KindUint, "uint32", sppb.DataType_UInt32},
		{"int64", bridge.KindInt, "int64", sppb.DataType_Int64},
		{"uint64", bridge.KindUint, "uint64", sppb.DataType_UInt64},
		{"float32", bridge.KindFloat, "float32", sppb.DataType_Float},
		{"float64", bridge.KindFloat, "float64", sppb.DataType_Double},
		{"bool", bridge.KindBool, "bool", sppb.DataType_Boolean},
		{"string", bridge.KindString, "string", sppb.DataType_String},
		{"undeclared float", bridge.KindFloat, "", sppb.DataType_Double},
		{"undeclared int", bridge.KindInt, "", sppb.DataType_Int64},
		{"undeclared uint", bridge.KindUint, "", sppb.DataType_UInt64},
		{"undeclared bool", bridge.KindBool, "", sppb.DataType_Boolean},
		{"undeclared string", bridge.KindString, "", sppb.DataType_String},
		{"scaled int16 gives a float", bridge.KindFloat, "int16", sppb.DataType_Double},
		{"scaled uint32 gives a float", bridge.KindFloat, "uint32", sppb.DataType_Double},
		{"unknown declared type", bridge.KindInt, "int128", sppb.DataType_Int64},
		{"bad sample without value, declared", bridge.KindNone, "float32", sppb.DataType_Float},
		{"bad sample without value, undeclared", bridge.KindNone, "", sppb.DataType_Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := dataType(tt.kind, tt.declared); got != tt.want {
				t.Errorf("dataType(%s, %q) = %s, want %s", tt.kind, tt.declared, got, tt.want)
			}
		})
	}
}

func TestSetValue(t *testing.T) {
	tests := []struct {
		name string
		dt   sppb.DataType
		v    bridge.Value
		want *sppb.Payload_Metric // nil: an error
	}{
		{"Int16 min", sppb.DataType_Int16, bridge.Int(math.MinInt16), intValue(uint32(0xFFFF8000))},
		{"Int16 max", sppb.DataType_Int16, bridge.Int(math.MaxInt16), intValue(math.MaxInt16)},
		{"Int16 over", sppb.DataType_Int16, bridge.Int(math.MaxInt16 + 1), nil},
		{"Int16 under", sppb.DataType_Int16, bridge.Int(math.MinInt16 - 1), nil},
		{"Int32 -1", sppb.DataType_Int32, bridge.Int(-1), intValue(math.MaxUint32)},
		{"Int32 over", sppb.DataType_Int32, bridge.Int(math.MaxInt32 + 1), nil},
		{"Int32 from uint", sppb.DataType_Int32, bridge.Uint(7), intValue(7)},
		{"Int64 min", sppb.DataType_Int64, bridge.Int(math.MinInt64), longValue(1 << 63)},
		{"Int64 from huge uint", sppb.DataType_Int64, bridge.Uint(math.MaxUint64), nil},
		{"UInt16 max", sppb.DataType_UInt16, bridge.Uint(math.MaxUint16), intValue(math.MaxUint16)},
		{"UInt16 over", sppb.DataType_UInt16, bridge.Uint(math.MaxUint16 + 1), nil},
		{"UInt16 negative", sppb.DataType_UInt16, bridge.Int(-1), nil},
		{"UInt32 max in int_value", sppb.DataType_UInt32, bridge.Uint(math.MaxUint32), intValue(math.MaxUint32)},
		{"UInt32 over", sppb.DataType_UInt32, bridge.Uint(math.MaxUint32 + 1), nil},
		{"UInt64 max", sppb.DataType_UInt64, bridge.Uint(math.MaxUint64), longValue(math.MaxUint64)},
		{"Float", sppb.DataType_Float, bridge.Float(230.5), &sppb.Payload_Metric{Value: &sppb.Payload_Metric_FloatValue{FloatValue: 230.5}}},
		{"Float NaN", sppb.DataType_Float, bridge.Float(math.NaN()), &sppb.Payload_Metric{Value: &sppb.Payload_Metric_FloatValue{FloatValue: float32(math.NaN())}}},
		{"Float +Inf", sppb.DataType_Float, bridge.Float(math.Inf(1)), &sppb.Payload_Metric{Value: &sppb.Payload_Metric_FloatValue{FloatValue: float32(math.Inf(1))}}},
		{"Float overflow", sppb.DataType_Float, bridge.Float(1e300), nil},
		{"Float from int", sppb.DataType_Float, bridge.Int(1), nil},
		{"Double", sppb.DataType_Double, bridge.Float(math.MaxFloat64), &sppb.Payload_Metric{Value: &sppb.Payload_Metric_DoubleValue{DoubleValue: math.MaxFloat64}}},
		{"Double from string", sppb.DataType_Double, bridge.String("1"), nil},
		{"Boolean", sppb.DataType_Boolean, bridge.Bool(true), &sppb.Payload_Metric{Value: &sppb.Payload_Metric_BooleanValue{BooleanValue: true}}},
		{"Boolean from int", sppb.DataType_Boolean, bridge.Int(1), nil},
		{"String", sppb.DataType_String, bridge.String("°C"), &sppb.Payload_Metric{Value: &sppb.Payload_Metric_StringValue{StringValue: "°C"}}},
		{"String from float", sppb.DataType_String, bridge.Float(1), nil},
		{"no value is null", sppb.DataType_Double, bridge.Value{}, &sppb.Payload_Metric{IsNull: proto.Bool(true)}},
		{"datatype not sent", sppb.DataType_DataSet, bridge.Int(1), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &sppb.Payload_Metric{Value: &sppb.Payload_Metric_StringValue{StringValue: "stale"}}
			err := setValue(m, tt.dt, tt.v)
			if tt.want == nil {
				if err == nil {
					t.Fatalf("setValue(%s, %v) = nil, want an error; metric %v", tt.dt, tt.v, m)
				}
				if m.Value != nil {
					t.Errorf("value left set after an error: %v", m.Value)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(m, tt.want) {
				t.Errorf("metric = %v, want %v", m, tt.want)
			}
		})
	}
}

func intValue(u uint32) *sppb.Payload_Metric {
	return &sppb.Payload_Metric{Value: &sppb.Payload_Metric_IntValue{IntValue: u}}
}

func longValue(u uint64) *sppb.Payload_Metric {
	return &sppb.Payload_Metric{Value: &sppb.Payload_Metric_LongValue{LongValue: u}}
}

func TestQualityProperty(t *testing.T) {
	tests := []struct {
		q    bridge.Quality
		want uint32
	}{{bridge.Good, 192}, {bridge.Uncertain, 64}, {bridge.Bad, 0}}
	for _, tt := range tests {
		t.Run(tt.q.String(), func(t *testing.T) {
			p := qualityProperty(tt.q)
			// Spec 6.4.9.1: the property's type is Int32 (3), the value in int_value.
			if p.GetType() != uint32(sppb.DataType_Int32) {
				t.Errorf("type = %d, want 3 (Int32)", p.GetType())
			}
			if _, ok := p.GetValue().(*sppb.Payload_PropertyValue_IntValue); !ok || p.GetIntValue() != tt.want {
				t.Errorf("value = %v, want int_value %d", p.GetValue(), tt.want)
			}
		})
	}
}

func TestSampleMetric(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.UTC)
	quality := func(m *sppb.Payload_Metric) (uint32, bool) {
		ps := m.GetProperties()
		for i, k := range ps.GetKeys() {
			if k == qualityKey {
				return ps.GetValues()[i].GetIntValue(), true
			}
		}
		return 0, false
	}
	tests := []struct {
		name        string
		s           bridge.Sample
		dt          sppb.DataType
		wantQuality uint32
		wantNull    bool
		wantErr     string
	}{
		{"good", bridge.Sample{Source: "meter1", Point: "v", Value: bridge.Float(230.5), Time: at}, sppb.DataType_Float, 192, false, ""},
		{"uncertain", bridge.Sample{Source: "meter1", Point: "v", Value: bridge.Float(230.5), Time: at, Quality: bridge.Uncertain}, sppb.DataType_Float, 64, false, ""},
		{"bad without value", bridge.BadSample("meter1", "v", at, nil), sppb.DataType_Float, 0, true, ""},
		{"bad with a value that does not fit", bridge.Sample{Source: "meter1", Point: "v", Value: bridge.String("x"), Time: at, Quality: bridge.Bad}, sppb.DataType_Float, 0, true, ""},
		{"good with a value that does not fit", bridge.Sample{Source: "meter1", Point: "v", Value: bridge.Int(70000), Time: at}, sppb.DataType_Int16, 0, false, "meter1/v"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := sampleMetric(tt.s, tt.dt)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.GetTimestamp() != uint64(at.UnixMilli()) {
				t.Errorf("timestamp = %d, want %d (ms since the epoch)", m.GetTimestamp(), at.UnixMilli())
			}
			if m.GetDatatype() != uint32(tt.dt) {
				t.Errorf("datatype = %d, want %d", m.GetDatatype(), tt.dt)
			}
			if m.GetIsNull() != tt.wantNull || (tt.wantNull && m.Value != nil) {
				t.Errorf("is_null = %t value %v, want is_null %t", m.GetIsNull(), m.Value, tt.wantNull)
			}
			if q, ok := quality(m); !ok || q != tt.wantQuality {
				t.Errorf("Quality property = %d (present %t), want %d", q, ok, tt.wantQuality)
			}
			// What goes on the wire comes back the same.
			b, err := proto.Marshal(&sppb.Payload{Metrics: []*sppb.Payload_Metric{m}})
			if err != nil {
				t.Fatal(err)
			}
			var back sppb.Payload
			if err := proto.Unmarshal(b, &back); err != nil || !proto.Equal(back.GetMetrics()[0], m) {
				t.Errorf("round trip: %v, %v", err, back.GetMetrics())
			}
		})
	}
}

// TestSharedQualitySets: births that add the unit to a metric's
// properties leave the quality sets that DDATA metrics share untouched.
func TestSharedQualitySets(t *testing.T) {
	for _, q := range []bridge.Quality{bridge.Good, bridge.Uncertain, bridge.Bad} {
		m := &metric{name: "v", alias: 1, dt: sppb.DataType_Double, unit: "V", hasLast: true,
			last: bridge.Sample{Source: "d", Point: "v", Value: bridge.Float(1), Unit: "V", Quality: q, Time: time.Now()}}
		pm := birthMetric(m, true)
		if got := pm.GetProperties().GetKeys(); len(got) != 2 || got[1] != PropertyEngUnit {
			t.Fatalf("birth properties %q", got)
		}
	}
	for i, ps := range qualitySets {
		if len(ps.Keys) != 1 || len(ps.Values) != 1 || ps.Keys[0] != qualityKey {
			t.Errorf("quality set %d changed: %v", i, ps)
		}
	}
}
