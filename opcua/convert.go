package opcua

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// errArray is the reason of the Bad sample produced for an array value.
var errArray = errors.New("opcua: array values are not supported (ValueRank is not scalar)")

// toValue converts a Variant to a bridge.Value.
//
// Numbers keep their kind (signed → Int, unsigned → Uint, Float/Double →
// Float), Boolean → Bool, String → String, DateTime → a String in RFC 3339
// with nanoseconds, UTC; LocalizedText → its text, Guid and NodeId → their
// text form, StatusCode → Uint, ByteString → base64 text (ua's String
// form). Arrays, matrices and structures (ExtensionObjects) are refused
// with an error: see the package doc.
func toValue(v *ua.Variant) (bridge.Value, error) {
	if v == nil {
		return bridge.Value{}, nil
	}
	if v.ArrayLength() > 0 || v.Has(ua.VariantArrayValues) {
		return bridge.Value{}, errArray
	}
	if val, ok := bridge.ValueOf(v.Value()); ok {
		return val, nil
	}
	switch x := v.Value().(type) {
	case nil:
		return bridge.Value{}, nil
	case time.Time:
		return bridge.String(x.UTC().Format(time.RFC3339Nano)), nil
	case *ua.LocalizedText:
		if x == nil {
			return bridge.Value{}, nil
		}
		return bridge.String(x.Text), nil
	case *ua.GUID:
		return bridge.String(x.String()), nil
	case *ua.NodeID:
		return bridge.String(x.String()), nil
	case ua.StatusCode:
		return bridge.Uint(uint64(x)), nil
	case []byte:
		return bridge.String(v.String()), nil
	case *ua.ExtensionObject:
		return bridge.Value{}, fmt.Errorf("opcua: structure values (%T) are not supported", x.Value)
	default:
		return bridge.Value{}, fmt.Errorf("opcua: values of type %s are not supported", v.Type())
	}
}

// quality maps a StatusCode's severity bits (Part 4, 7.39: bits 31–30 are
// 00 Good, 01 Uncertain, 10/11 Bad) to a Quality.
func quality(code ua.StatusCode) bridge.Quality {
	switch uint32(code) >> 30 {
	case 0:
		return bridge.Good
	case 1:
		return bridge.Uncertain
	}
	return bridge.Bad
}

// StatusName returns the symbolic name of a StatusCode as the specification
// writes it ("BadSensorFailure"), ignoring the info bits; an unknown code
// gives its hex form.
func StatusName(code ua.StatusCode) string {
	if d, ok := ua.StatusCodes[code]; ok {
		return strings.TrimPrefix(d.Name, "Status")
	}
	if d, ok := ua.StatusCodes[code&0xFFFF0000]; ok {
		return strings.TrimPrefix(d.Name, "Status")
	}
	return "0x" + strconv.FormatUint(uint64(code), 16)
}

// fill sets s from a DataValue: the value, the quality and code from the
// status, the reason (the status name) for a non-good status, and the time:
// SourceTimestamp, else ServerTimestamp, else arrival.
//
// A Bad sample carries no value: the specification says the value of a Bad
// status must not be used. An Uncertain sample keeps it.
func fill(s *bridge.Sample, dv *ua.DataValue, arrival time.Time) {
	if dv == nil {
		s.Quality, s.Code, s.Reason = bridge.Bad, uint32(ua.StatusBadNoData), StatusName(ua.StatusBadNoData)
		s.Time = arrival
		return
	}
	switch {
	case dv.Has(ua.DataValueSourceTimestamp) && !dv.SourceTimestamp.IsZero():
		s.Time = dv.SourceTimestamp
	case dv.Has(ua.DataValueServerTimestamp) && !dv.ServerTimestamp.IsZero():
		s.Time = dv.ServerTimestamp
	default:
		s.Time = arrival
	}
	code := ua.StatusOK
	if dv.Has(ua.DataValueStatusCode) {
		code = dv.Status
	}
	s.Code = uint32(code)
	s.Quality = quality(code)
	if s.Quality != bridge.Good {
		s.Reason = StatusName(code)
	}
	if s.Quality == bridge.Bad {
		return
	}
	v, err := toValue(dv.Value)
	if err != nil {
		s.Value = bridge.Value{}
		s.Quality = bridge.Bad
		s.Code = uint32(ua.StatusBadTypeMismatch)
		s.Reason = err.Error()
		return
	}
	s.Value = v
}
