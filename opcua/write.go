package opcua

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// WriteError reports a write the server refused. It wraps the StatusCode,
// so errors.Is(err, ua.StatusBadTypeMismatch) and the like work.
type WriteError struct {
	Source string        // the Config's Name
	Node   string        // the node's Name
	Status ua.StatusCode // the server's status for the write
}

// Error names the source, the node and the status.
func (e *WriteError) Error() string {
	return fmt.Sprintf("opcua: write %s/%s: %s", e.Source, e.Node, StatusName(e.Status))
}

// Unwrap returns the StatusCode.
func (e *WriteError) Unwrap() error { return e.Status }

// WriteNode writes value to the node named name, converted to the node's
// data type (read from its DataType attribute at connect; for a data type
// that is not built in, the type of the node's current value): Go integers,
// floats, bools, strings, time.Time and bridge.Value are accepted, and a
// conversion that would lose information (3.5 to an Int32, -1 to a UInt16,
// 300 to a Byte) is refused before anything is sent. A status other than
// Good gives a [*WriteError]. WriteNode needs the Source to be running and
// connected ([ErrNotConnected] otherwise); it is safe to call concurrently
// with Run.
func (s *Source) WriteNode(ctx context.Context, name string, value any) error {
	idx := -1
	for i := range s.st.nodes {
		if s.st.nodes[i].Name == name {
			idx = i
			break
		}
	}
	if idx < 0 {
		return fmt.Errorf("%w %q in source %s", ErrUnknownNode, name, s.st.Name)
	}
	sess := s.getLive()
	if sess == nil {
		return fmt.Errorf("opcua: write %s/%s: %w", s.st.Name, name, ErrNotConnected)
	}
	ln := sess.nodes[idx]
	if ln.err != nil {
		return fmt.Errorf("opcua: write %s/%s: %w", s.st.Name, name, ln.err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.st.Timeout)
	defer cancel()
	t, err := s.writeType(ctx, sess, ln)
	if err != nil {
		return fmt.Errorf("opcua: write %s/%s: %w", s.st.Name, name, err)
	}
	v, err := convertFor(value, t)
	if err != nil {
		return fmt.Errorf("opcua: write %s/%s: %w", s.st.Name, name, err)
	}
	variant, err := ua.NewVariant(v)
	if err != nil {
		return fmt.Errorf("opcua: write %s/%s: %w", s.st.Name, name, err)
	}
	res, err := sess.c.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
		NodeID:      ln.id,
		AttributeID: ua.AttributeIDValue,
		Value:       &ua.DataValue{EncodingMask: ua.DataValueValue, Value: variant},
	}}})
	if err != nil {
		return fmt.Errorf("opcua: write %s/%s: %w", s.st.Name, name, err)
	}
	if len(res.Results) != 1 {
		return fmt.Errorf("opcua: write %s/%s: %d results", s.st.Name, name, len(res.Results))
	}
	if res.Results[0] != ua.StatusOK {
		return &WriteError{Source: s.st.Name, Node: name, Status: res.Results[0]}
	}
	return nil
}

// writeType returns the built-in type to write: the DataType when it is a
// built-in type (ns=0, i=1..25: their ids equal the Variant type ids,
// Part 6, 5.1.2), else the type of the current value.
func (s *Source) writeType(ctx context.Context, sess *session, ln liveNode) (ua.TypeID, error) {
	if dt := ln.dtype; dt != nil && dt.Namespace() == 0 && dt.Type() != ua.NodeIDTypeString && dt.IntID() >= 1 && dt.IntID() <= 25 {
		return ua.TypeID(dt.IntID()), nil
	}
	res, err := sess.c.Read(ctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: ln.id, AttributeID: ua.AttributeIDValue}}})
	if err != nil {
		return 0, fmt.Errorf("read current value for its type: %w", err)
	}
	if len(res.Results) != 1 || res.Results[0] == nil || res.Results[0].Value == nil || res.Results[0].Value.Type() == ua.TypeIDNull {
		return 0, errors.New("cannot tell the node's data type")
	}
	return res.Results[0].Value.Type(), nil
}

// convertFor converts a Go value to the Go type gopcua encodes as t.
func convertFor(value any, t ua.TypeID) (any, error) {
	if bv, ok := value.(bridge.Value); ok {
		switch bv.Kind() {
		case bridge.KindFloat:
			value = bv.Float()
		case bridge.KindInt:
			value, _ = bv.Int()
		case bridge.KindUint:
			value, _ = bv.Uint()
		case bridge.KindBool:
			value, _ = bv.Bool()
		case bridge.KindString:
			value = bv.Str()
		default:
			return nil, errors.New("no value to write")
		}
	}
	var (
		isInt, isUint, isFloat bool
		i                      int64
		u                      uint64
		f                      float64
	)
	switch x := value.(type) {
	case int:
		i, isInt = int64(x), true
	case int8:
		i, isInt = int64(x), true
	case int16:
		i, isInt = int64(x), true
	case int32:
		i, isInt = int64(x), true
	case int64:
		i, isInt = x, true
	case uint:
		u, isUint = uint64(x), true
	case uint8:
		u, isUint = uint64(x), true
	case uint16:
		u, isUint = uint64(x), true
	case uint32:
		u, isUint = uint64(x), true
	case uint64:
		u, isUint = x, true
	case float32:
		f, isFloat = float64(x), true
	case float64:
		f, isFloat = x, true
	}
	bad := func() error { return fmt.Errorf("cannot write %T %v to a %s node", value, value, t) }
	// asInt gives the value as an integer in [lo, hi], exactly.
	asInt := func(lo int64, hi uint64) (int64, uint64, error) {
		switch {
		case isInt:
			if i < lo || (i >= 0 && uint64(i) > hi) {
				return 0, 0, bad()
			}
			return i, uint64(i), nil
		case isUint:
			if u > hi {
				return 0, 0, bad()
			}
			return int64(u), u, nil
		case isFloat:
			if f != math.Trunc(f) || f < float64(lo) || f > float64(hi) || math.IsInf(f, 0) {
				return 0, 0, bad()
			}
			if f < 0 {
				return int64(f), 0, nil
			}
			return int64(f), uint64(f), nil
		}
		return 0, 0, bad()
	}
	switch t {
	case ua.TypeIDBoolean:
		if b, ok := value.(bool); ok {
			return b, nil
		}
		return nil, bad()
	case ua.TypeIDString:
		if s, ok := value.(string); ok {
			return s, nil
		}
		return nil, bad()
	case ua.TypeIDDateTime:
		switch x := value.(type) {
		case time.Time:
			return x, nil
		case string:
			tm, err := time.Parse(time.RFC3339Nano, x)
			if err != nil {
				return nil, bad()
			}
			return tm, nil
		}
		return nil, bad()
	case ua.TypeIDFloat:
		switch {
		case isFloat:
			if math.Abs(f) > math.MaxFloat32 && !math.IsInf(f, 0) {
				return nil, bad()
			}
			return float32(f), nil
		case isInt:
			return float32(i), nil
		case isUint:
			return float32(u), nil
		}
		return nil, bad()
	case ua.TypeIDDouble:
		switch {
		case isFloat:
			return f, nil
		case isInt:
			return float64(i), nil
		case isUint:
			return float64(u), nil
		}
		return nil, bad()
	case ua.TypeIDSByte:
		v, _, err := asInt(math.MinInt8, math.MaxInt8)
		return int8(v), err
	case ua.TypeIDInt16:
		v, _, err := asInt(math.MinInt16, math.MaxInt16)
		return int16(v), err
	case ua.TypeIDInt32:
		v, _, err := asInt(math.MinInt32, math.MaxInt32)
		return int32(v), err
	case ua.TypeIDInt64:
		v, _, err := asInt(math.MinInt64, math.MaxInt64)
		return v, err
	case ua.TypeIDByte:
		_, v, err := asInt(0, math.MaxUint8)
		return uint8(v), err
	case ua.TypeIDUint16:
		_, v, err := asInt(0, math.MaxUint16)
		return uint16(v), err
	case ua.TypeIDUint32:
		_, v, err := asInt(0, math.MaxUint32)
		return uint32(v), err
	case ua.TypeIDUint64:
		_, v, err := asInt(0, math.MaxUint64)
		return v, err
	}
	return nil, fmt.Errorf("writing %s nodes is not supported", t)
}
