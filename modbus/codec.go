package modbus

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"unsafe"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// Errors that [Point.Decode] and [Point.Encode] wrap, so that callers can tell
// a value that does not fit from one of the wrong kind with errors.Is.
var (
	// ErrRange: the value does not fit the point's type (after the inverse
	// scale and offset), or a string is longer than the point's registers.
	ErrRange = errors.New("modbus: value out of range")
	// ErrKind: the value is of a kind the point cannot hold (a string for a
	// number, a number for a string, no value at all).
	ErrKind = errors.New("modbus: wrong kind of value")
	// ErrRegisters: Decode was given a number of registers other than
	// [Point.Registers].
	ErrRegisters = errors.New("modbus: wrong number of registers")
)

// raw assembles the point's registers into one unsigned integer, applying
// word order (which register holds the most significant word) and byte order
// (which byte of each register is the more significant). The registers are
// those of a numeric point: at most four.
func (p *Point) raw(regs []uint16) uint64 {
	var raw uint64
	n := len(regs)
	low := p.WordOrder == LowFirst
	swap := p.ByteOrder == LittleEndian
	for i := 0; i < n; i++ {
		w := regs[i]
		if low {
			w = regs[n-1-i]
		}
		if swap {
			w = bits.ReverseBytes16(w)
		}
		raw = raw<<16 | uint64(w)
	}
	return raw
}

// words splits raw into n registers, the inverse of raw.
func (p Point) words(raw uint64, n int) []uint16 {
	regs := make([]uint16, n)
	for i := 0; i < n; i++ {
		shift := 16 * (n - 1 - i)
		if p.WordOrder == LowFirst {
			shift = 16 * i
		}
		w := uint16(raw >> shift)
		if p.ByteOrder == LittleEndian {
			w = bits.ReverseBytes16(w)
		}
		regs[i] = w
	}
	return regs
}

// Decode turns the registers a point spans into its value. regs must hold
// exactly [Point.Registers] words, in address order, as read from a holding or
// input register table. Decode applies the point's bit, word order, byte
// order, scale and offset:
//
//   - bool: the bit Bit of the register (after byte order), or, without Bit,
//     whether the register is non-zero;
//   - integer types: [bridge.Int] (signed) or [bridge.Uint] (unsigned), exact
//     for 64-bit integers, when the point has no scale and no offset; a
//     [bridge.Float] of raw*Scale+Offset otherwise;
//   - float32, float64: a [bridge.Float] of raw*Scale+Offset;
//   - string: the bytes in address order (byte order swaps the two bytes of
//     each register), trailing NULs and spaces removed.
//
// Decode does not allocate for the numeric and bool types. For a point of a
// coil or discrete table use [Point.DecodeBit] (Decode accepts one word there
// too: non-zero is true).
func (p Point) Decode(regs []uint16) (bridge.Value, error) { return p.decode(regs) }

// decode is Decode without copying the point (a poller decodes every point
// of every cycle).
func (p *Point) decode(regs []uint16) (bridge.Value, error) {
	if n := p.Registers(); len(regs) != int(n) || n == 0 {
		return bridge.Value{}, fmt.Errorf("modbus: point %q: decoding %d registers, want %d: %w", p.Name, len(regs), n, ErrRegisters)
	}
	if p.Table.IsBits() {
		return bridge.Bool(regs[0] != 0), nil
	}
	switch p.Type {
	case Bool:
		w := regs[0]
		if p.ByteOrder == LittleEndian {
			w = bits.ReverseBytes16(w)
		}
		if p.Bit != nil {
			return bridge.Bool(w>>(*p.Bit&15)&1 != 0), nil
		}
		return bridge.Bool(w != 0), nil
	case Int16:
		return p.signed(int64(int16(p.raw(regs)))), nil
	case Int32:
		return p.signed(int64(int32(p.raw(regs)))), nil
	case Int64:
		return p.signed(int64(p.raw(regs))), nil
	case Uint16, Uint32, Uint64:
		raw := p.raw(regs)
		if p.scaled() {
			return bridge.Float(p.applyScale(float64(raw))), nil
		}
		return bridge.Uint(raw), nil
	case Float32:
		return p.float(shortest32(math.Float32frombits(uint32(p.raw(regs))))), nil
	case Float64:
		return p.float(math.Float64frombits(p.raw(regs))), nil
	case String:
		b := make([]byte, 0, 2*len(regs))
		for _, w := range regs {
			if p.ByteOrder == LittleEndian {
				w = bits.ReverseBytes16(w)
			}
			b = append(b, byte(w>>8), byte(w))
		}
		return bridge.String(strings.TrimRight(string(b), "\x00 ")), nil
	}
	return bridge.Value{}, fmt.Errorf("modbus: point %q: cannot decode type %q", p.Name, p.Type)
}

func (p *Point) signed(raw int64) bridge.Value {
	if p.scaled() {
		return bridge.Float(p.applyScale(float64(raw)))
	}
	return bridge.Int(raw)
}

func (p *Point) float(f float64) bridge.Value {
	if p.scaled() {
		f = p.applyScale(f)
	}
	return bridge.Float(f)
}

// decimalScales are the scales applied by division, so that a register of
// 2301 with scale 0.1 reads 230.1 and not 230.10000000000002: dividing by
// an exact power of ten rounds correctly, multiplying by 0.1 (which no
// binary float holds exactly) does not.
var decimalScales = [...]struct{ scale, divisor float64 }{
	{0.1, 1e1}, {0.01, 1e2}, {0.001, 1e3}, {0.0001, 1e4}, {0.00001, 1e5},
	{0.000001, 1e6}, {0.0000001, 1e7}, {0.00000001, 1e8}, {0.000000001, 1e9},
}

// applyScale returns x*Scale + Offset.
func (p *Point) applyScale(x float64) float64 {
	s := p.scale()
	for _, d := range decimalScales {
		if s == d.scale {
			return x/d.divisor + p.Offset
		}
		if -s == d.scale {
			return -x/d.divisor + p.Offset
		}
	}
	return x*s + p.Offset
}

// shortest32 widens a float32 to the float64 nearest to the shortest decimal
// that identifies it (233.22108, not 233.22108459472656): the value a person
// who wrote the float32 meant, and the one that prints cleanly. Encoding it
// back as float32 gives the same bits.
func shortest32(f float32) float64 {
	if f != f || math.IsInf(float64(f), 0) || f == 0 {
		return float64(f)
	}
	// The values meters report (0.01 ≤ |f| < 2^23), without formatting
	// and parsing: the decimal with the fewest fraction digits k that gives
	// f back, and of two such the nearer, a tie to the even one, as
	// strconv's shortest formatting chooses. Below 2^23 (float32s at most
	// half a unit apart, so no decimal rounded to tens gives f back) the
	// fewest fraction digits are the fewest significant digits. The product
	// |f| × 10^k (k ≤ 11: 24 + 26 bits) is exact, so nearness and ties are
	// exact; m / 10^k (m < 2^53, 10^k exact) is the float64 nearest the
	// decimal; and no decimal of ten digits lies within a float64 rounding
	// of a point halfway between two float32s without being on it, so
	// converting that float64 to float32 rounds as the decimal does.
	if a := math.Abs(float64(f)); a < 1<<23 && a >= 0.01 {
		for k := 0; k <= 11; k++ {
			m := math.RoundToEven(a * pow10[k])
			if m >= 1e10 {
				break // more digits than a float32's shortest decimal has
			}
			if c := m / pow10[k]; float32(c) == float32(a) {
				if f < 0 {
					return -c
				}
				return c
			}
		}
	}
	// The shortest decimal, as d.ddddddde±x: at most 9 digits.
	var buf [32]byte
	b := strconv.AppendFloat(buf[:0], float64(f), 'e', -1, 32)
	// Its digits as an integer m and its exponent, so that f's decimal is
	// m × 10^exp. m < 10^9 is exact in a float64, and so is 10^k for k ≤
	// 22: one multiplication or division of the two is then correctly
	// rounded, which is what parsing the decimal gives (Clinger's fast
	// path), without parsing it.
	i, neg := 0, false
	if b[0] == '-' {
		neg, i = true, 1
	}
	var m uint64
	digits := 0
	for ; i < len(b) && b[i] != 'e'; i++ {
		if b[i] != '.' {
			m = m*10 + uint64(b[i]-'0')
			digits++
		}
	}
	exp, expNeg := 0, false
	for i++; i < len(b); i++ {
		switch c := b[i]; c {
		case '-':
			expNeg = true
		case '+':
		default:
			exp = exp*10 + int(c-'0')
		}
	}
	if expNeg {
		exp = -exp
	}
	exp -= digits - 1 // d.ddd: the point follows the first digit
	var v float64
	switch {
	case exp >= 0 && exp < len(pow10):
		v = float64(m) * pow10[exp]
	case exp < 0 && -exp < len(pow10):
		v = float64(m) / pow10[-exp]
	default: // beyond the fast path's exact powers (|f| < 1e-13 or > 1e30)
		v, err := strconv.ParseFloat(unsafe.String(&b[0], len(b)), 64)
		if err != nil {
			return float64(f)
		}
		return v
	}
	if neg {
		v = -v
	}
	return v
}

// pow10 are the powers of ten a float64 holds exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// DecodeBit returns the value of a point of a coil or discrete table whose bit
// reads on.
func (p Point) DecodeBit(on bool) bridge.Value { return bridge.Bool(on) }

// Encode turns v into the registers the point spans, the inverse of
// [Point.Decode]: for a number, raw = (v - Offset) / Scale, rounded to the
// nearest integer for the integer types, and range-checked against the type;
// a point with no scale and no offset takes integers exactly (a float must then
// be integral). A string is padded with NULs to Length registers. A bool is 1
// or 0; for a point of a coil or discrete table Encode returns one word, 1 or
// 0 (use [Point.EncodeBit] for the bool itself).
//
// A bit point (a bool in one bit of a register) cannot be encoded alone, since
// writing it is a read-modify-write of the register: use [Point.EncodeBit] and
// [Point.SetBit].
//
// Errors name the point and wrap [ErrKind] or [ErrRange].
func (p Point) Encode(v bridge.Value) ([]uint16, error) {
	n := int(p.Registers())
	if p.Table.IsBits() || p.Type == Bool {
		if p.IsBitPoint() {
			return nil, fmt.Errorf("modbus: point %q is bit %d of a register: write it with EncodeBit and SetBit", p.Name, *p.Bit)
		}
		on, err := p.EncodeBit(v)
		if err != nil {
			return nil, err
		}
		if on {
			return []uint16{1}, nil
		}
		return []uint16{0}, nil
	}
	switch p.Type {
	case String:
		if v.Kind() != bridge.KindString {
			return nil, p.kindErr(v)
		}
		s := v.Str()
		if len(s) > 2*n {
			return nil, fmt.Errorf("modbus: point %q: string of %d bytes does not fit %d registers: %w", p.Name, len(s), n, ErrRange)
		}
		regs := make([]uint16, n)
		for i := 0; i < len(s); i++ {
			if i%2 == 0 {
				regs[i/2] = uint16(s[i]) << 8
			} else {
				regs[i/2] |= uint16(s[i])
			}
		}
		if p.ByteOrder == LittleEndian {
			for i, w := range regs {
				regs[i] = bits.ReverseBytes16(w)
			}
		}
		return regs, nil
	case Float32, Float64:
		if !isNumber(v) {
			return nil, p.kindErr(v)
		}
		f := v.Float()
		if p.scaled() {
			f = (f - p.Offset) / p.scale()
		}
		if p.Type == Float64 {
			return p.words(math.Float64bits(f), n), nil
		}
		if !math.IsInf(f, 0) && math.IsInf(float64(float32(f)), 0) {
			return nil, p.rangeErr(v)
		}
		return p.words(uint64(math.Float32bits(float32(f))), n), nil
	case Int16, Int32, Int64, Uint16, Uint32, Uint64:
		if !isNumber(v) {
			return nil, p.kindErr(v)
		}
		raw, ok := p.integer(v)
		if !ok {
			return nil, p.rangeErr(v)
		}
		return p.words(raw, n), nil
	}
	return nil, fmt.Errorf("modbus: point %q: cannot encode type %q", p.Name, p.Type)
}

// integer returns v as the raw bits of the point's integer type, and whether
// it fits.
func (p Point) integer(v bridge.Value) (uint64, bool) {
	var lo, hi int64 // signed types' range
	var max uint64   // unsigned types' range
	signed := true
	switch p.Type {
	case Int16:
		lo, hi = math.MinInt16, math.MaxInt16
	case Int32:
		lo, hi = math.MinInt32, math.MaxInt32
	case Int64:
		lo, hi = math.MinInt64, math.MaxInt64
	case Uint16:
		max, signed = math.MaxUint16, false
	case Uint32:
		max, signed = math.MaxUint32, false
	default:
		max, signed = math.MaxUint64, false
	}
	if p.scaled() {
		f := math.Round((v.Float() - p.Offset) / p.scale())
		if math.IsNaN(f) {
			return 0, false
		}
		if signed {
			// float64(hi)+1 is exactly 2^15, 2^31 or 2^63.
			if f < float64(lo) || f >= float64(hi)+1 {
				return 0, false
			}
			return uint64(int64(f)) & p.mask(), true
		}
		if f < 0 || f >= float64(max)+1 {
			return 0, false
		}
		return uint64(f), true
	}
	// No scale: integers exactly, floats only when integral (Value.Int/Uint).
	if signed {
		i, ok := v.Int()
		if !ok || i < lo || i > hi {
			return 0, false
		}
		return uint64(i) & p.mask(), true
	}
	u, ok := v.Uint()
	if !ok || u > max {
		return 0, false
	}
	return u, true
}

// mask keeps the bits of the point's integer width.
func (p Point) mask() uint64 {
	switch p.Registers() {
	case 1:
		return 0xFFFF
	case 2:
		return 0xFFFFFFFF
	}
	return math.MaxUint64
}

// EncodeBit returns the bool to write for a bool point (a coil, or one bit of
// a register): v must be a bool or a number (non-zero is true).
func (p Point) EncodeBit(v bridge.Value) (bool, error) {
	if p.Type != Bool && !p.Table.IsBits() {
		return false, fmt.Errorf("modbus: point %q is %s, not bool", p.Name, p.Type)
	}
	on, ok := v.Bool()
	if !ok {
		return false, p.kindErr(v)
	}
	return on, nil
}

// SetBit returns the register reg with the point's bit set to on; the point
// must be a bit point ([Point.IsBitPoint]). Bits count in the register's value
// after byte order, as in [Point.Decode].
func (p Point) SetBit(reg uint16, on bool) uint16 {
	if p.Bit == nil {
		return reg
	}
	if p.ByteOrder == LittleEndian {
		reg = bits.ReverseBytes16(reg)
	}
	m := uint16(1) << (*p.Bit & 15)
	if on {
		reg |= m
	} else {
		reg &^= m
	}
	if p.ByteOrder == LittleEndian {
		reg = bits.ReverseBytes16(reg)
	}
	return reg
}

func isNumber(v bridge.Value) bool {
	switch v.Kind() {
	case bridge.KindFloat, bridge.KindInt, bridge.KindUint:
		return true
	}
	return false
}

func (p Point) kindErr(v bridge.Value) error {
	return fmt.Errorf("modbus: point %q (%s) cannot take a %s value: %w", p.Name, p.Type, v.Kind(), ErrKind)
}

func (p Point) rangeErr(v bridge.Value) error {
	what := string(p.Type)
	if p.scaled() {
		what = fmt.Sprintf("%s with scale %g and offset %g", p.Type, p.scale(), p.Offset)
	}
	return fmt.Errorf("modbus: point %q: %s does not fit %s: %w", p.Name, v, what, ErrRange)
}
