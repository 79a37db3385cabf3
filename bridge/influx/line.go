package influx

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// Errors for samples that line protocol cannot carry. They are returned by
// [Encoder.Append] without allocating; [Sink.Write] reports them, wrapped in
// [bridge.Permanent], in a [*bridge.BatchError] naming the sample.
var (
	// ErrBadSample is returned for a Bad sample: it has no reading to
	// store, so the Sink leaves it out and counts it (Stats.Skipped).
	ErrBadSample = errors.New("influx: bad sample has no value to write")
	// ErrNoValue is returned for a Good or Uncertain sample without a value.
	ErrNoValue = errors.New("influx: sample has no value")
	// ErrNotFinite is returned for a NaN or infinite float, which line
	// protocol cannot represent.
	ErrNotFinite = errors.New("influx: NaN and infinite floats cannot be written")
	// ErrUintRange is returned, under the v1 API, for a uint64 above
	// math.MaxInt64: InfluxDB 1.x stores no unsigned integers.
	ErrUintRange = errors.New("influx: uint above MaxInt64 cannot be written to InfluxDB 1.x")
	// ErrName is returned when a source (measurement), point or unit (tag
	// value) cannot be written: empty (source, point), starting with '#'
	// (source: a comment line), holding a line break, or holding a
	// backslash before a space, comma, equals sign or at the end, which the
	// InfluxDB parser would take for an escape.
	ErrName = errors.New("influx: source, point or unit cannot be written in line protocol")
	// ErrTimeRange is returned for a time InfluxDB cannot store: before
	// 1677-09-21 or after 2262-04-11 (nanoseconds since 1970 in an int64).
	ErrTimeRange = errors.New("influx: time outside the range InfluxDB stores (1677 to 2262)")
)

// The earliest and latest times InfluxDB accepts (models.MinNanoTime and
// MaxNanoTime in its source: the int64 range minus the values it reserves).
var (
	minTime = time.Unix(0, math.MinInt64+2)
	maxTime = time.Unix(0, math.MaxInt64-1)
)

// Format says how samples become InfluxDB points; see [Encoder].
type Format struct {
	// PointTag is the tag key of the point ("point").
	PointTag string
	// UnitTag is the tag key of the unit ("unit"); empty leaves units out.
	UnitTag string
	// Field is the field key of the value ("value").
	Field string
	// ByKind names the field after the value's kind: Field for floats,
	// Field+"_int", Field+"_uint", Field+"_bool" and Field+"_string" for the
	// others. InfluxDB fixes a field's type per measurement, so without it
	// a source whose points hold values of different kinds cannot be
	// stored: the first kind written wins and the others are refused.
	ByKind bool
	// NoUint writes uints as integers ("i"), failing with ErrUintRange for
	// those above math.MaxInt64. InfluxDB 1.x needs it: it rejects "u".
	NoUint bool
}

// Encoder writes samples as InfluxDB line protocol (the format of
// https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/):
//
//	<source>,<point_tag>=<point>[,<unit_tag>=<unit>] <field>=<value> <unix nanoseconds>
//
// The source is the measurement, the point and the unit are tags (the unit
// only when the sample has one and UnitTag is not empty), the reading is one
// field typed after the [bridge.Value]: a float as a number, an int with the
// "i" suffix, a uint with "u" (or "i" with NoUint, for InfluxDB 1.x), a bool
// as true/false, a string quoted. Tags are written sorted by key, as
// InfluxDB prefers. A sample with the zero time gets no timestamp (the
// server stamps it on arrival); the quality is not written (Bad samples are
// refused, Uncertain ones written like Good ones).
//
// An Encoder is immutable and safe for concurrent use.
type Encoder struct {
	f                 Format
	pointKey, unitKey string
	fieldKeys         [bridge.KindString + 1]string
	unitFirst         bool
}

// NewEncoder returns an Encoder for f. Keys are used as given: [New] checks
// them, NewEncoder does not.
func NewEncoder(f Format) *Encoder {
	e := &Encoder{f: f}
	e.pointKey = string(appendEscaped(nil, f.PointTag, tagSpecial))
	e.unitKey = string(appendEscaped(nil, f.UnitTag, tagSpecial))
	for k := range e.fieldKeys {
		e.fieldKeys[k] = string(appendEscaped(nil, FieldKey(f.Field, bridge.Kind(k), f.ByKind), tagSpecial))
	}
	// InfluxDB sorts tags by key; sending them sorted saves it the work.
	e.unitFirst = f.UnitTag != "" && f.UnitTag < f.PointTag
	return e
}

// FieldKey returns the field key of a value of kind k: field itself, or with
// byKind the key of [Encoder.ByKind].
func FieldKey(field string, k bridge.Kind, byKind bool) string {
	if !byKind {
		return field
	}
	switch k {
	case bridge.KindInt:
		return field + "_int"
	case bridge.KindUint:
		return field + "_uint"
	case bridge.KindBool:
		return field + "_bool"
	case bridge.KindString:
		return field + "_string"
	}
	return field
}

// Append appends the line of s, ending in '\n', to dst and returns the
// extended buffer. When s cannot be written it returns dst unchanged and one
// of the errors above. It does not allocate when dst has room.
func (e *Encoder) Append(dst []byte, s *bridge.Sample) ([]byte, error) {
	if s.Quality == bridge.Bad {
		return dst, ErrBadSample
	}
	if s.Source == "" || s.Source[0] == '#' || !writable(s.Source, measSpecial) ||
		s.Point == "" || !writable(s.Point, tagSpecial) || !writable(s.Unit, tagSpecial) {
		return dst, ErrName
	}
	stamp := !s.Time.IsZero()
	if stamp && (s.Time.Before(minTime) || s.Time.After(maxTime)) {
		return dst, ErrTimeRange
	}
	start := len(dst)
	dst = appendEscaped(dst, s.Source, measSpecial)
	unit := e.f.UnitTag != "" && s.Unit != ""
	if unit && e.unitFirst {
		dst = e.appendTag(dst, e.unitKey, s.Unit)
	}
	dst = e.appendTag(dst, e.pointKey, s.Point)
	if unit && !e.unitFirst {
		dst = e.appendTag(dst, e.unitKey, s.Unit)
	}
	dst = append(dst, ' ')
	v := s.Value
	if k := v.Kind(); k <= bridge.KindString {
		dst = append(dst, e.fieldKeys[k]...)
	}
	dst = append(dst, '=')
	switch v.Kind() {
	case bridge.KindFloat:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return dst[:start], ErrNotFinite
		}
		dst = strconv.AppendFloat(dst, f, 'g', -1, 64)
	case bridge.KindInt:
		i, _ := v.Int()
		dst = strconv.AppendInt(dst, i, 10)
		dst = append(dst, 'i')
	case bridge.KindUint:
		u, _ := v.Uint()
		if e.f.NoUint {
			if u > math.MaxInt64 {
				return dst[:start], ErrUintRange
			}
			dst = strconv.AppendUint(dst, u, 10)
			dst = append(dst, 'i')
		} else {
			dst = strconv.AppendUint(dst, u, 10)
			dst = append(dst, 'u')
		}
	case bridge.KindBool:
		b, _ := v.Bool()
		if b {
			dst = append(dst, 't', 'r', 'u', 'e')
		} else {
			dst = append(dst, 'f', 'a', 'l', 's', 'e')
		}
	case bridge.KindString:
		dst = append(dst, '"')
		dst = appendEscaped(dst, v.Str(), stringSpecial)
		dst = append(dst, '"')
	default:
		return dst[:start], ErrNoValue
	}
	if stamp { // without a timestamp the server uses its own time
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, s.Time.UnixNano(), 10)
	}
	return append(dst, '\n'), nil
}

func (e *Encoder) appendTag(dst []byte, key, value string) []byte {
	dst = append(dst, ',')
	dst = append(dst, key...)
	dst = append(dst, '=')
	return appendEscaped(dst, value, tagSpecial)
}

// The characters to escape with a backslash, per element (line protocol
// reference, "Special characters").
const (
	measSpecial   = ", "
	tagSpecial    = ",= " // tag keys, tag values and field keys
	stringSpecial = `"\`  // string field values
)

// appendEscaped appends s with every byte of special preceded by a
// backslash.
func appendEscaped(dst []byte, s, special string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if strings.IndexByte(special, c) >= 0 {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return dst
}

// writable reports whether s survives as a measurement or tag: no line
// breaks, and no backslash the parser would read as an escape (one before a
// special character or at the end), since InfluxDB 1.x does not unescape
// "\\".
func writable(s, special string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\n', '\r':
			return false
		case '\\':
			if i == len(s)-1 || strings.IndexByte(special, s[i+1]) >= 0 || s[i+1] == '\\' {
				return false
			}
		}
	}
	return true
}
