package opcua

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
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
// 300 to a Byte) is refused before anything is sent, with an error wrapping
// bridge.ErrWrongType or bridge.ErrOutOfRange. A status that is not Good
// gives a [*WriteError]. WriteNode needs the Source to be running and
// connected ([ErrNotConnected] otherwise); it is safe to call concurrently
// with Run. It does not look at the node's Writable, Min, Max and Allowed,
// which are the rules of [Source.Write] (commands from the IoT side): it is
// for Go programs that decide for themselves.
func (s *Source) WriteNode(ctx context.Context, name string, value any) error {
	idx := s.index(name)
	if idx < 0 {
		return fmt.Errorf("%w %q in source %s", ErrUnknownNode, name, s.st.Name)
	}
	sess := s.getLive()
	if sess == nil {
		return fmt.Errorf("opcua: write %s/%s: %w", s.st.Name, name, ErrNotConnected)
	}
	if err := s.write(ctx, sess, idx, value); err != nil {
		var we *WriteError
		if errors.As(err, &we) {
			return err
		}
		return fmt.Errorf("opcua: write %s/%s: %w", s.st.Name, name, err)
	}
	return nil
}

var _ bridge.Writer = (*Source)(nil)

// Write implements [bridge.Writer]: it writes v to the node named point and
// returns the node read back. Deny by default, and nothing is sent to the
// server for a write that breaks a rule:
//
//   - a name that is not in the Config is refused with an error wrapping
//     bridge.ErrUnknownPoint, a node without Writable with
//     bridge.ErrNotWritable;
//   - with Min, Max or Allowed, v must be a number within them (exactly:
//     an integer is not rounded to a float64 to be compared), else
//     bridge.ErrOutOfRange (bridge.ErrWrongType for a string or a bool);
//   - v is converted to the node's data type as the server announces it
//     (see [Source.WriteNode]) without truncation, rounding to an integer
//     or wrap-around: a fraction for an Int32 or a string for a Double is
//     bridge.ErrWrongType, 70000 for a UInt16 or 2^24+1 for a Float
//     bridge.ErrOutOfRange.
//
// These errors read "<point>: <value> <rule>: <refusal>", for example
// "setpoint: 95 is above max 80: out of range".
//
// Then Write sends one Write request and one Read of the node's Value on
// the current session, each bounded by Timeout and ctx. The sample
// returned carries the value read back, the node's unit, the server's
// SourceTimestamp (else ServerTimestamp, else the time of the answer) and
// the quality and code of the read's status, like any sample of the
// source. A write the server refuses (BadNotWritable,
// BadUserAccessDenied, BadTypeMismatch, BadOutOfRange...) gives a
// [*WriteError] naming that status: the server answered, so it is not a
// refusal by rule. Without a session Write fails at once with
// [ErrNotConnected]; it never waits for a connection nor retries: the
// caller decides. A write that succeeded but could not be read back gives
// an error saying so.
func (s *Source) Write(ctx context.Context, point string, v bridge.Value) (bridge.Sample, error) {
	idx := s.index(point)
	if idx < 0 {
		return bridge.Sample{}, fmt.Errorf("%s: no such node in source %s: %w", point, s.st.Name, bridge.ErrUnknownPoint)
	}
	n := &s.st.nodes[idx]
	if !n.Writable {
		return bridge.Sample{}, fmt.Errorf("%s: writes are not allowed (the node is not configured writable: true): %w", point, bridge.ErrNotWritable)
	}
	if err := checkRules(&n.Node, v); err != nil {
		return bridge.Sample{}, fmt.Errorf("%s: %w", point, err)
	}
	sess := s.getLive()
	if sess == nil {
		return bridge.Sample{}, fmt.Errorf("opcua: write %s/%s: %w", s.st.Name, point, ErrNotConnected)
	}
	if err := s.write(ctx, sess, idx, v); err != nil {
		var we *WriteError
		switch {
		case errors.As(err, &we):
			return bridge.Sample{}, err
		case bridge.IsRefusal(err):
			return bridge.Sample{}, fmt.Errorf("%s: %w", point, err)
		}
		return bridge.Sample{}, fmt.Errorf("opcua: write %s/%s: %w", s.st.Name, point, err)
	}
	rctx, cancel := context.WithTimeout(ctx, s.st.Timeout)
	defer cancel()
	res, err := sess.c.Read(rctx, &ua.ReadRequest{
		NodesToRead:        []*ua.ReadValueID{{NodeID: sess.nodes[idx].id, AttributeID: ua.AttributeIDValue}},
		TimestampsToReturn: ua.TimestampsToReturnBoth,
	})
	if err == nil && len(res.Results) != 1 {
		err = fmt.Errorf("%d results", len(res.Results))
	}
	if err != nil {
		return bridge.Sample{}, fmt.Errorf("opcua: write %s/%s: written, but reading it back failed: %w", s.st.Name, point, err)
	}
	smp := s.sample(sess, idx)
	fill(&smp, res.Results[0], time.Now())
	return smp, nil
}

// index returns the index of the node named name, or -1.
func (s *Source) index(name string) int {
	for i := range s.st.nodes {
		if s.st.nodes[i].Name == name {
			return i
		}
	}
	return -1
}

// write converts value for node idx and writes it on sess. An error
// wrapping a refusal (bridge.IsRefusal) means nothing was sent; a status
// that is not Good is a *WriteError.
func (s *Source) write(ctx context.Context, sess *session, idx int, value any) error {
	name := s.st.nodes[idx].Name
	ln := sess.nodes[idx]
	if ln.err != nil {
		return ln.err
	}
	ctx, cancel := context.WithTimeout(ctx, s.st.Timeout)
	defer cancel()
	t, err := s.writeType(ctx, sess, ln)
	if err != nil {
		return err
	}
	v, err := convertFor(value, t)
	if err != nil {
		return err
	}
	variant, err := ua.NewVariant(v)
	if err != nil {
		return err
	}
	res, err := sess.c.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
		NodeID:      ln.id,
		AttributeID: ua.AttributeIDValue,
		Value:       &ua.DataValue{EncodingMask: ua.DataValueValue, Value: variant},
	}}})
	if err != nil {
		return err
	}
	if len(res.Results) != 1 {
		return fmt.Errorf("%d results", len(res.Results))
	}
	// Good with info bits (GoodClamped, Part 4, 7.39) is a write done; the
	// read-back shows what the server made of it.
	if quality(res.Results[0]) != bridge.Good {
		return &WriteError{Source: s.st.Name, Node: name, Status: res.Results[0]}
	}
	return nil
}

// checkRules checks v against a node's Min, Max and Allowed, exactly.
func checkRules(n *Node, v bridge.Value) error {
	if n.Min == nil && n.Max == nil && len(n.Allowed) == 0 {
		return nil
	}
	switch v.Kind() {
	case bridge.KindFloat, bridge.KindInt, bridge.KindUint:
	case bridge.KindNone:
		return fmt.Errorf("no value: %w", bridge.ErrWrongType)
	default:
		return fmt.Errorf("%q is a %s, the node takes a number within its rules: %w", v.String(), v.Kind(), bridge.ErrWrongType)
	}
	if math.IsNaN(v.Float()) {
		return fmt.Errorf("NaN is not within the node's rules: %w", bridge.ErrOutOfRange)
	}
	if n.Min != nil && compare(v, *n.Min) < 0 {
		return fmt.Errorf("%s is below min %g: %w", v, *n.Min, bridge.ErrOutOfRange)
	}
	if n.Max != nil && compare(v, *n.Max) > 0 {
		return fmt.Errorf("%s is above max %g: %w", v, *n.Max, bridge.ErrOutOfRange)
	}
	if len(n.Allowed) == 0 {
		return nil
	}
	for _, a := range n.Allowed {
		if compare(v, a) == 0 {
			return nil
		}
	}
	shown := n.Allowed
	more := ""
	if len(shown) > 10 {
		shown, more = shown[:10], fmt.Sprintf(" and %d more", len(n.Allowed)-10)
	}
	list := make([]string, len(shown))
	for i, a := range shown {
		list[i] = strconv.FormatFloat(a, 'g', -1, 64)
	}
	return fmt.Errorf("%s is not one of the allowed values %s%s: %w", v, strings.Join(list, ", "), more, bridge.ErrOutOfRange)
}

// compare compares a number with f exactly (an int64 beyond 2^53 is not
// rounded to a float64 first). v and f are not NaN.
func compare(v bridge.Value, f float64) int {
	var x, y big.Float
	switch v.Kind() {
	case bridge.KindInt:
		i, _ := v.Int()
		x.SetInt64(i)
	case bridge.KindUint:
		u, _ := v.Uint()
		x.SetUint64(u)
	default:
		x.SetFloat64(v.Float())
	}
	y.SetFloat64(f)
	return x.Cmp(&y)
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

// convertFor converts a Go value to the Go type gopcua encodes as t. An
// error wraps bridge.ErrWrongType (a value of another kind, a fraction for
// an integer type, a type that cannot be written) or bridge.ErrOutOfRange
// (a number beyond the type's range, or an integer a Float or Double
// cannot hold exactly).
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
			return nil, fmt.Errorf("no value to write: %w", bridge.ErrWrongType)
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
	shown := func() string {
		switch {
		case isInt:
			return strconv.FormatInt(i, 10)
		case isUint:
			return strconv.FormatUint(u, 10)
		case isFloat:
			return strconv.FormatFloat(f, 'g', -1, 64)
		case value == nil:
			return "nil"
		}
		if s, ok := value.(string); ok {
			return strconv.Quote(s)
		}
		return fmt.Sprint(value)
	}
	kind := func() string {
		switch {
		case isInt || isUint:
			return "an integer"
		case isFloat:
			return "a number"
		}
		switch value.(type) {
		case string:
			return "a string"
		case bool:
			return "a bool"
		case time.Time:
			return "a time"
		}
		return fmt.Sprintf("a %T", value)
	}
	tn := typeName(t)
	wrongType := func() error {
		return fmt.Errorf("%s is %s, the node is %s: %w", shown(), kind(), tn, bridge.ErrWrongType)
	}
	outOfRange := func(lo, hi string) error {
		return fmt.Errorf("%s is outside the range of %s, %s to %s: %w", shown(), tn, lo, hi, bridge.ErrOutOfRange)
	}
	// asInt gives the value as an integer in [lo, hi], exactly.
	asInt := func(lo int64, hi uint64) (int64, uint64, error) {
		rangeErr := func() error {
			return outOfRange(strconv.FormatInt(lo, 10), strconv.FormatUint(hi, 10))
		}
		switch {
		case isInt:
			if i < lo || (i >= 0 && uint64(i) > hi) {
				return 0, 0, rangeErr()
			}
			return i, uint64(i), nil
		case isUint:
			if u > hi {
				return 0, 0, rangeErr()
			}
			return int64(u), u, nil
		case isFloat:
			if math.IsInf(f, 0) {
				return 0, 0, rangeErr()
			}
			if f != math.Trunc(f) {
				return 0, 0, fmt.Errorf("%s is not an integer, the node is %s: %w", shown(), tn, bridge.ErrWrongType)
			}
			var x, l, h big.Float
			x.SetFloat64(f)
			l.SetInt64(lo)
			h.SetUint64(hi)
			if x.Cmp(&l) < 0 || x.Cmp(&h) > 0 {
				return 0, 0, rangeErr()
			}
			if f < 0 {
				return int64(f), 0, nil
			}
			return int64(f), uint64(f), nil
		}
		return 0, 0, wrongType()
	}
	// asFloat gives an integer as a float of 24 (Float) or 53 (Double)
	// mantissa bits, when it is held exactly.
	asFloat := func(bits uint) (float64, bool) {
		var x big.Float
		if isInt {
			x.SetInt64(i)
		} else {
			x.SetUint64(u)
		}
		if bits == 24 {
			f32, acc := x.Float32()
			return float64(f32), acc == big.Exact
		}
		f64, acc := x.Float64()
		return f64, acc == big.Exact
	}
	switch t {
	case ua.TypeIDBoolean:
		if b, ok := value.(bool); ok {
			return b, nil
		}
		return nil, wrongType()
	case ua.TypeIDString:
		if s, ok := value.(string); ok {
			return s, nil
		}
		return nil, wrongType()
	case ua.TypeIDDateTime:
		switch x := value.(type) {
		case time.Time:
			return x, nil
		case string:
			tm, err := time.Parse(time.RFC3339Nano, x)
			if err != nil {
				return nil, fmt.Errorf("%s is not an RFC 3339 time, the node is DateTime: %w", shown(), bridge.ErrWrongType)
			}
			return tm, nil
		}
		return nil, wrongType()
	case ua.TypeIDFloat:
		if isFloat {
			if math.Abs(f) > math.MaxFloat32 && !math.IsInf(f, 0) {
				return nil, outOfRange("-3.4e38", "3.4e38")
			}
			return float32(f), nil
		}
		if !isInt && !isUint {
			return nil, wrongType()
		}
		g, ok := asFloat(24)
		if !ok {
			return nil, fmt.Errorf("%s cannot be held exactly by a Float (every integer up to 2^24 can): %w", shown(), bridge.ErrOutOfRange)
		}
		return float32(g), nil
	case ua.TypeIDDouble:
		if isFloat {
			return f, nil
		}
		if !isInt && !isUint {
			return nil, wrongType()
		}
		g, ok := asFloat(53)
		if !ok {
			return nil, fmt.Errorf("%s cannot be held exactly by a Double (every integer up to 2^53 can): %w", shown(), bridge.ErrOutOfRange)
		}
		return g, nil
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
	return nil, fmt.Errorf("writing %s nodes is not supported: %w", tn, bridge.ErrWrongType)
}

// typeName is a built-in type's name as the specification writes it
// (Part 6, 5.1.2): "Int32", "UInt16".
func typeName(t ua.TypeID) string {
	n := strings.TrimPrefix(t.String(), "TypeID")
	if strings.HasPrefix(n, "Uint") {
		n = "UInt" + strings.TrimPrefix(n, "Uint")
	}
	return n
}
