package bridge_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/m2mbridge/m2mbridge/bridge"
)

func TestValueAccessors(t *testing.T) {
	tests := []struct {
		name  string
		v     bridge.Value
		kind  bridge.Kind
		f     float64
		i     int64
		iok   bool
		u     uint64
		uok   bool
		str   string
		print string
	}{
		{"float", bridge.Float(230.5), bridge.KindFloat, 230.5, 0, false, 0, false, "", "230.5"},
		{"integral float", bridge.Float(-4), bridge.KindFloat, -4, -4, true, 0, false, "", "-4"},
		{"int", bridge.Int(-7), bridge.KindInt, -7, -7, true, 0, false, "", "-7"},
		{"max int", bridge.Int(math.MaxInt64), bridge.KindInt, math.MaxInt64, math.MaxInt64, true, math.MaxInt64, true, "", "9223372036854775807"},
		{"big uint", bridge.Uint(math.MaxUint64), bridge.KindUint, math.MaxUint64, -1, false, math.MaxUint64, true, "", "18446744073709551615"},
		{"true", bridge.Bool(true), bridge.KindBool, 1, 1, true, 1, true, "", "true"},
		{"false", bridge.Bool(false), bridge.KindBool, 0, 0, true, 0, true, "", "false"},
		{"string", bridge.String("on"), bridge.KindString, math.NaN(), 0, false, 0, false, "on", "on"},
		{"none", bridge.Value{}, bridge.KindNone, math.NaN(), 0, false, 0, false, "", "<none>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.kind, tt.v.Kind())
			if math.IsNaN(tt.f) {
				assert.True(t, math.IsNaN(tt.v.Float()))
			} else {
				assert.Equal(t, tt.f, tt.v.Float())
			}
			i, iok := tt.v.Int()
			assert.Equal(t, tt.iok, iok)
			if iok {
				assert.Equal(t, tt.i, i)
			}
			u, uok := tt.v.Uint()
			assert.Equal(t, tt.uok, uok)
			if uok {
				assert.Equal(t, tt.u, u)
			}
			assert.Equal(t, tt.str, tt.v.Str())
			assert.Equal(t, tt.print, tt.v.String())
			assert.Equal(t, tt.kind == bridge.KindNone, tt.v.IsNone())
		})
	}
}

func TestValueEqual(t *testing.T) {
	tests := []struct {
		name string
		a, b bridge.Value
		want bool
	}{
		{"same float", bridge.Float(1.5), bridge.Float(1.5), true},
		{"NaN", bridge.Float(math.NaN()), bridge.Float(math.NaN()), true},
		{"int and uint", bridge.Int(5), bridge.Uint(5), true},
		{"negative int and uint", bridge.Int(-1), bridge.Uint(math.MaxUint64), false},
		{"int and float", bridge.Int(5), bridge.Float(5), true},
		{"uint and float", bridge.Uint(1 << 63), bridge.Float(1 << 63), true},
		{"int and fractional float", bridge.Int(5), bridge.Float(5.5), false},
		{"large int not exact as float", bridge.Int(math.MaxInt64), bridge.Float(math.MaxInt64), false},
		{"bool and int", bridge.Bool(true), bridge.Int(1), false},
		{"strings", bridge.String("a"), bridge.String("a"), true},
		{"different strings", bridge.String("a"), bridge.String("b"), false},
		{"none", bridge.Value{}, bridge.Value{}, true},
		{"none and zero", bridge.Value{}, bridge.Int(0), false},
		{"string and number", bridge.String("5"), bridge.Int(5), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.a.Equal(tt.b))
			assert.Equal(t, tt.want, tt.b.Equal(tt.a), "Equal must be symmetric")
		})
	}
}

func TestValueIsSmallAndAllocationFree(t *testing.T) {
	var s []bridge.Sample = make([]bridge.Sample, 1)
	allocs := testing.AllocsPerRun(100, func() {
		s[0].Value = bridge.Float(1)
		s[0].Value = bridge.Int(2)
		s[0].Value = bridge.Uint(3)
		s[0].Value = bridge.Bool(true)
		s[0].Value = bridge.String("x")
	})
	assert.Zero(t, allocs)
}

func TestValueOf(t *testing.T) {
	tests := []struct {
		in   any
		want bridge.Value
		ok   bool
	}{
		{bridge.Uint(7), bridge.Uint(7), true},
		{true, bridge.Bool(true), true},
		{int8(-3), bridge.Int(-3), true},
		{int(-1 << 40), bridge.Int(-1 << 40), true},
		{uint16(65535), bridge.Uint(65535), true},
		{uint64(math.MaxUint64), bridge.Uint(math.MaxUint64), true},
		{float32(0.5), bridge.Float(0.5), true},
		{230.1, bridge.Float(230.1), true},
		{"on", bridge.String("on"), true},
		{nil, bridge.Value{}, false},
		{[]int{1}, bridge.Value{}, false},
	}
	for _, tt := range tests {
		got, ok := bridge.ValueOf(tt.in)
		assert.Equal(t, tt.ok, ok, "%T", tt.in)
		assert.Equal(t, tt.want, got, "%T", tt.in)
		if ok {
			assert.Equal(t, tt.want.Kind(), got.Kind(), "%T", tt.in)
		}
	}
}
