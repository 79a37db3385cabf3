package sparkplug

import (
	"fmt"
	"math"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/sparkplug/internal/sppb"
	"google.golang.org/protobuf/proto"
)

// Quality codes carried in a metric's "Quality" property (spec 6.4.9.1).
// Good and Bad are the spec's 192 and 0. The spec lists a third code, 500
// (STALE), and no uncertain one; issue 13 asks for the OPC UA convention,
// 64, so that an Uncertain reading is told apart from a good one. The
// spec's TCK assertion tck-id-payloads-propertyset-quality-value-value
// allows only 0, 192 and 500: see the package doc.
const (
	qualityGood      = 192
	qualityUncertain = 64
	qualityBad       = 0
)

// qualityKey is the property key of a metric's quality (spec 6.4.9.1).
const qualityKey = "Quality"

// qualityCode returns the Quality property value of q.
func qualityCode(q bridge.Quality) int32 {
	switch q {
	case bridge.Good:
		return qualityGood
	case bridge.Uncertain:
		return qualityUncertain
	}
	return qualityBad
}

// qualityProperty returns the "Quality" property value of q: datatype Int32
// in int_value, as spec 6.4.9.1 requires
// (tck-id-payloads-propertyset-quality-value-type).
func qualityProperty(q bridge.Quality) *sppb.Payload_PropertyValue {
	return &sppb.Payload_PropertyValue{
		Type:  proto.Uint32(uint32(sppb.DataType_Int32)),
		Value: &sppb.Payload_PropertyValue_IntValue{IntValue: uint32(qualityCode(q))},
	}
}

// dataType returns the Sparkplug datatype of a point (spec 6.4.16). The
// declared type is the point's `type:` in the configuration ("int16",
// "float32", ... as in the modbus adapter; "" when the source declares
// none, as OPC UA nodes may not). It is used when the value's kind is that
// type's kind; otherwise, as for an integer register read with a scale
// (whose value is a float), the kind decides: float → Double, int → Int64,
// uint → UInt64, bool → Boolean, string → String. A value of no kind (a Bad
// sample without a value) takes the declared type, else Unknown.
func dataType(k bridge.Kind, declared string) sppb.DataType {
	d, dk := declaredType(declared)
	if dk != bridge.KindNone && (dk == k || k == bridge.KindNone) {
		return d
	}
	switch k {
	case bridge.KindFloat:
		return sppb.DataType_Double
	case bridge.KindInt:
		return sppb.DataType_Int64
	case bridge.KindUint:
		return sppb.DataType_UInt64
	case bridge.KindBool:
		return sppb.DataType_Boolean
	case bridge.KindString:
		return sppb.DataType_String
	}
	return sppb.DataType_Unknown
}

// declaredType maps a point's declared type to its Sparkplug datatype and
// the kind of value the adapters give it.
func declaredType(t string) (sppb.DataType, bridge.Kind) {
	switch t {
	case "bool":
		return sppb.DataType_Boolean, bridge.KindBool
	case "int16":
		return sppb.DataType_Int16, bridge.KindInt
	case "uint16":
		return sppb.DataType_UInt16, bridge.KindUint
	case "int32":
		return sppb.DataType_Int32, bridge.KindInt
	case "uint32":
		return sppb.DataType_UInt32, bridge.KindUint
	case "int64":
		return sppb.DataType_Int64, bridge.KindInt
	case "uint64":
		return sppb.DataType_UInt64, bridge.KindUint
	case "float32":
		return sppb.DataType_Float, bridge.KindFloat
	case "float64":
		return sppb.DataType_Double, bridge.KindFloat
	case "string":
		return sppb.DataType_String, bridge.KindString
	}
	return sppb.DataType_Unknown, bridge.KindNone
}

// setValue puts v in m's value field for datatype dt (spec 6.4.17): Int16,
// Int32, UInt16 and UInt32 in int_value (a negative value as its two's
// complement), Int64 and UInt64 in long_value, Float, Double, Boolean,
// String in their own fields. A value of no kind sets is_null (spec 6.4.6).
// A value that does not fit dt — out of range, of another kind, a Float
// that would round to infinity — is an error and m's value is left unset;
// nothing is truncated or wrapped.
func setValue(m *sppb.Payload_Metric, dt sppb.DataType, v bridge.Value) error {
	m.Value = nil
	m.IsNull = nil
	if v.IsNone() {
		m.IsNull = proto.Bool(true)
		return nil
	}
	k := v.Kind()
	bad := func() error { return fmt.Errorf("sparkplug: %s value %v does not fit datatype %s", k, v, dt) }
	signed := func(lo, hi int64) (int64, error) {
		i, ok := v.Int()
		if !ok || (k != bridge.KindInt && k != bridge.KindUint) || i < lo || i > hi {
			return 0, bad()
		}
		return i, nil
	}
	unsigned := func(hi uint64) (uint64, error) {
		u, ok := v.Uint()
		if !ok || (k != bridge.KindInt && k != bridge.KindUint) || u > hi {
			return 0, bad()
		}
		return u, nil
	}
	switch dt {
	case sppb.DataType_Int16, sppb.DataType_Int32:
		lo, hi := int64(math.MinInt32), int64(math.MaxInt32)
		if dt == sppb.DataType_Int16 {
			lo, hi = math.MinInt16, math.MaxInt16
		}
		i, err := signed(lo, hi)
		if err != nil {
			return err
		}
		m.Value = &sppb.Payload_Metric_IntValue{IntValue: uint32(int32(i))}
	case sppb.DataType_Int64:
		i, err := signed(math.MinInt64, math.MaxInt64)
		if err != nil {
			return err
		}
		m.Value = &sppb.Payload_Metric_LongValue{LongValue: uint64(i)}
	case sppb.DataType_UInt16, sppb.DataType_UInt32:
		hi := uint64(math.MaxUint32)
		if dt == sppb.DataType_UInt16 {
			hi = math.MaxUint16
		}
		u, err := unsigned(hi)
		if err != nil {
			return err
		}
		m.Value = &sppb.Payload_Metric_IntValue{IntValue: uint32(u)}
	case sppb.DataType_UInt64:
		u, err := unsigned(math.MaxUint64)
		if err != nil {
			return err
		}
		m.Value = &sppb.Payload_Metric_LongValue{LongValue: u}
	case sppb.DataType_Float:
		f := v.Float()
		if k != bridge.KindFloat || (!math.IsInf(f, 0) && math.IsInf(float64(float32(f)), 0)) {
			return bad()
		}
		m.Value = &sppb.Payload_Metric_FloatValue{FloatValue: float32(f)}
	case sppb.DataType_Double:
		if k != bridge.KindFloat {
			return bad()
		}
		m.Value = &sppb.Payload_Metric_DoubleValue{DoubleValue: v.Float()}
	case sppb.DataType_Boolean:
		b, ok := v.Bool()
		if !ok || k != bridge.KindBool {
			return bad()
		}
		m.Value = &sppb.Payload_Metric_BooleanValue{BooleanValue: b}
	case sppb.DataType_String:
		if k != bridge.KindString {
			return bad()
		}
		m.Value = &sppb.Payload_Metric_StringValue{StringValue: v.Str()}
	default:
		return fmt.Errorf("sparkplug: datatype %s is not one this edge node sends", dt)
	}
	return nil
}

// qualitySets are the property sets of the three qualities, shared by
// the metrics of DDATA so that a sample costs no allocation for them:
// read-only (a birth that adds to its set copies it first).
var qualitySets = func() [3]*sppb.Payload_PropertySet {
	var out [3]*sppb.Payload_PropertySet
	for i, q := range []bridge.Quality{bridge.Good, bridge.Uncertain, bridge.Bad} {
		out[i] = &sppb.Payload_PropertySet{Keys: []string{qualityKey}, Values: []*sppb.Payload_PropertyValue{qualityProperty(q)}}
	}
	return out
}()

func qualityIndex(q bridge.Quality) int {
	switch q {
	case bridge.Good:
		return 0
	case bridge.Uncertain:
		return 1
	}
	return 2
}

// datatypes holds a pointer to each datatype's number, shared by the
// metrics (read-only).
var datatypes = func() (out [sppb.DataType_Text + 1]*uint32) {
	for i := range out {
		out[i] = proto.Uint32(uint32(i))
	}
	return out
}()

func datatypePtr(dt sppb.DataType) *uint32 {
	if dt >= 0 && int(dt) < len(datatypes) {
		return datatypes[dt]
	}
	return proto.Uint32(uint32(dt))
}

// sampleMetric returns the metric of s for a DBIRTH or DDATA: datatype dt,
// the sample's time in milliseconds since the epoch (spec 5.1, 6.4.6), its
// value (or is_null) and its quality as the "Quality" property. A Bad sample
// whose value does not fit dt is sent null, so the Bad reading is still
// visible; for a Good or Uncertain one that error is returned. name and
// alias are the caller's: a birth carries the name and the alias, data the
// alias only (spec 6.4.6).
func sampleMetric(s bridge.Sample, dt sppb.DataType) (*sppb.Payload_Metric, error) {
	m := &sppb.Payload_Metric{Datatype: datatypePtr(dt)}
	if s.Time.UnixMilli() > 0 {
		m.Timestamp = proto.Uint64(uint64(s.Time.UnixMilli()))
	}
	if err := setValue(m, dt, s.Value); err != nil {
		if s.Quality != bridge.Bad {
			return nil, fmt.Errorf("%s/%s: %w", s.Source, s.Point, err)
		}
		m.IsNull = proto.Bool(true)
	}
	m.Properties = qualitySets[qualityIndex(s.Quality)]
	return m, nil
}
