package bridge

import (
	"math"
	"strconv"
)

// Kind is the type held by a [Value].
type Kind uint8

// The kinds a [Value] can hold. KindNone is the zero Value: no reading (for
// example a Bad sample whose read failed).
const (
	KindNone Kind = iota
	KindFloat
	KindInt
	KindUint
	KindBool
	KindString
)

var kindNames = [...]string{"none", "float", "int", "uint", "bool", "string"}

// String returns the kind's lower-case name ("float", "int", ...).
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is a typed reading: a float64, int64, uint64, bool or string, or
// nothing. It is a small comparable struct held by value, so a Sample carries
// its reading without boxing it in an interface and without allocating.
//
// The zero Value holds nothing (Kind() == KindNone).
type Value struct {
	kind Kind
	bits uint64 // float64 bits, int64 (two's complement), uint64 or bool (0/1)
	str  string
}

// Float returns a Value holding f.
func Float(f float64) Value { return Value{kind: KindFloat, bits: math.Float64bits(f)} }

// Int returns a Value holding i.
func Int(i int64) Value { return Value{kind: KindInt, bits: uint64(i)} }

// Uint returns a Value holding u.
func Uint(u uint64) Value { return Value{kind: KindUint, bits: u} }

// Bool returns a Value holding b.
func Bool(b bool) Value {
	v := Value{kind: KindBool}
	if b {
		v.bits = 1
	}
	return v
}

// String returns a Value holding s.
func String(s string) Value { return Value{kind: KindString, str: s} }

// Kind reports what v holds.
func (v Value) Kind() Kind { return v.kind }

// IsNone reports whether v holds no reading.
func (v Value) IsNone() bool { return v.kind == KindNone }

// Float returns v as a float64. Integers are converted (large 64-bit
// integers may lose precision), a bool is 0 or 1, a string or no value is NaN.
func (v Value) Float() float64 {
	switch v.kind {
	case KindFloat:
		return math.Float64frombits(v.bits)
	case KindInt:
		return float64(int64(v.bits))
	case KindUint:
		return float64(v.bits)
	case KindBool:
		return float64(v.bits)
	}
	return math.NaN()
}

// Int returns v as an int64 and whether it fits exactly: a float must be
// integral and in range, a uint at most math.MaxInt64, a bool is 0 or 1.
func (v Value) Int() (int64, bool) {
	switch v.kind {
	case KindInt, KindBool:
		return int64(v.bits), true
	case KindUint:
		return int64(v.bits), v.bits <= math.MaxInt64
	case KindFloat:
		f := math.Float64frombits(v.bits)
		if f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
			return 0, false
		}
		return int64(f), true
	}
	return 0, false
}

// Uint returns v as a uint64 and whether it fits exactly: a float must be
// integral and in range, an int not negative, a bool is 0 or 1.
func (v Value) Uint() (uint64, bool) {
	switch v.kind {
	case KindUint, KindBool:
		return v.bits, true
	case KindInt:
		return v.bits, int64(v.bits) >= 0
	case KindFloat:
		f := math.Float64frombits(v.bits)
		if f != math.Trunc(f) || f < 0 || f >= 1<<64 {
			return 0, false
		}
		return uint64(f), true
	}
	return 0, false
}

// Bool returns v as a bool and whether v is a bool or a number (non-zero is
// true).
func (v Value) Bool() (bool, bool) {
	switch v.kind {
	case KindBool, KindInt, KindUint:
		return v.bits != 0, true
	case KindFloat:
		return math.Float64frombits(v.bits) != 0, true
	}
	return false, false
}

// Str returns the string v holds, or "" when v is not a string. Use
// [Value.String] for a printable form of any kind.
func (v Value) Str() string { return v.str }

// String formats v for people: numbers in Go syntax, bools as true/false,
// strings as they are, no value as "<none>". Use [AppendJSON] for the wire
// encoding.
func (v Value) String() string {
	switch v.kind {
	case KindFloat:
		return strconv.FormatFloat(math.Float64frombits(v.bits), 'g', -1, 64)
	case KindInt:
		return strconv.FormatInt(int64(v.bits), 10)
	case KindUint:
		return strconv.FormatUint(v.bits, 10)
	case KindBool:
		return strconv.FormatBool(v.bits != 0)
	case KindString:
		return v.str
	}
	return "<none>"
}

// Equal reports whether v and w hold the same reading. Numbers of different
// kinds are equal when they denote the same number exactly (Int(5) equals
// Uint(5) and Float(5)); NaN equals NaN, so that a round trip can be checked.
func (v Value) Equal(w Value) bool {
	if v.kind == w.kind {
		if v.kind == KindFloat {
			a, b := math.Float64frombits(v.bits), math.Float64frombits(w.bits)
			return a == b || (a != a && b != b)
		}
		return v.bits == w.bits && v.str == w.str
	}
	switch {
	case v.kind == KindNone || w.kind == KindNone, v.kind == KindString || w.kind == KindString,
		v.kind == KindBool || w.kind == KindBool:
		return false
	case v.kind == KindFloat || w.kind == KindFloat:
		f, o := v, w
		if f.kind != KindFloat {
			f, o = w, v
		}
		if o.kind == KindInt {
			i, ok := f.Int()
			return ok && i == int64(o.bits)
		}
		u, ok := f.Uint()
		return ok && u == o.bits
	default: // one int, one uint
		i, u := v, w
		if i.kind != KindInt {
			i, u = w, v
		}
		return int64(i.bits) >= 0 && i.bits == u.bits
	}
}

// ValueOf converts a Go value to a Value: a Value as it is, a bool, any
// signed integer type (Int), any unsigned integer type (Uint), float32 or
// float64 (Float), a string. It reports false for any other type.
func ValueOf(v any) (Value, bool) {
	switch x := v.(type) {
	case Value:
		return x, true
	case bool:
		return Bool(x), true
	case int:
		return Int(int64(x)), true
	case int8:
		return Int(int64(x)), true
	case int16:
		return Int(int64(x)), true
	case int32:
		return Int(int64(x)), true
	case int64:
		return Int(x), true
	case uint:
		return Uint(uint64(x)), true
	case uint8:
		return Uint(uint64(x)), true
	case uint16:
		return Uint(uint64(x)), true
	case uint32:
		return Uint(uint64(x)), true
	case uint64:
		return Uint(x), true
	case float32:
		return Float(float64(x)), true
	case float64:
		return Float(x), true
	case string:
		return String(x), true
	}
	return Value{}, false
}
