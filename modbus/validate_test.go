package modbus

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fieldErrors(t *testing.T, err error) []*FieldError {
	t.Helper()
	require.Error(t, err)
	var out []*FieldError
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *FieldError
		require.True(t, errors.As(e, &fe), "not a FieldError: %v", e)
		out = append(out, fe)
	}
	return out
}

func TestValidateAcceptsGoodProfile(t *testing.T) {
	p := &Profile{
		Name:   "good",
		Limits: Limits{MaxRegisters: 100, MaxBits: 1000, Forbidden: []AddressRange{{Table: Holding, First: 100, Last: 199}}},
		Points: []Point{
			{Name: "status", Table: Holding, Address: 0, Type: Uint16},
			{Name: "alarm", Table: Holding, Address: 0, Type: Bool, Bit: BitOf(0)},  // shares with status
			{Name: "ready", Table: Holding, Address: 0, Type: Bool, Bit: BitOf(15)}, // and with alarm
			{Name: "flag", Table: Holding, Address: 3, Type: Bool, Bit: BitOf(2)},   // inside energy
			{Name: "energy", Table: Holding, Address: 2, Type: Uint32, WordOrder: LowFirst, Scale: 0.1},
			{Name: "name", Table: Holding, Address: 10, Type: String, Length: 8},
			{Name: "temp", Table: Input, Address: 0, Type: Float32, ByteOrder: LittleEndian, Offset: -273.15, Unit: "°C", Interval: time.Second},
			{Name: "last", Table: Input, Address: 65532, Type: Float64},
			{Name: "run", Table: Coil, Address: 0, Type: Bool},
			{Name: "door", Table: Discrete, Address: 0, Type: Bool},
			{Name: "big", Table: Holding, Address: 200, Type: Uint16},
		},
	}
	require.NoError(t, p.Validate())
}

func TestValidateReportsEveryProblem(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name  string
		lim   Limits
		pts   []Point
		index int
		field string
		msg   string
	}{
		{"missing name", Limits{}, []Point{{Table: Holding, Type: Uint16}}, 0, "name", "missing"},
		{"duplicate name", Limits{}, []Point{{Name: "a", Table: Holding, Type: Uint16}, {Name: "a", Table: Holding, Address: 1, Type: Uint16}}, 1, "name", "duplicate of point 0"},
		{"missing table", Limits{}, []Point{{Name: "a", Type: Uint16}}, 0, "table", "missing"},
		{"unknown table", Limits{}, []Point{{Name: "a", Table: "holdings", Type: Uint16}}, 0, "table", `unknown table "holdings"`},
		{"missing type", Limits{}, []Point{{Name: "a", Table: Holding}}, 0, "type", "missing"},
		{"unknown type", Limits{}, []Point{{Name: "a", Table: Holding, Type: "float"}}, 0, "type", `unknown type "float"`},
		{"unknown word order", Limits{}, []Point{{Name: "a", Table: Holding, Type: Int32, WordOrder: "little"}}, 0, "word_order", "unknown word order"},
		{"unknown byte order", Limits{}, []Point{{Name: "a", Table: Holding, Type: Int32, ByteOrder: "high_first"}}, 0, "byte_order", "unknown byte order"},
		{"float on coil", Limits{}, []Point{{Name: "a", Table: Coil, Type: Float32}}, 0, "type", "must be bool, not float32"},
		{"int on discrete", Limits{}, []Point{{Name: "a", Table: Discrete, Type: Uint16}}, 0, "type", "must be bool"},
		{"bit on coil", Limits{}, []Point{{Name: "a", Table: Coil, Type: Bool, Bit: BitOf(1)}}, 0, "bit", "no bits within registers"},
		{"bit out of range", Limits{}, []Point{{Name: "a", Table: Holding, Type: Bool, Bit: BitOf(16)}}, 0, "bit", "16 outside 0-15"},
		{"bit on number", Limits{}, []Point{{Name: "a", Table: Holding, Type: Uint16, Bit: BitOf(1)}}, 0, "bit", "only a bool"},
		{"string without length", Limits{}, []Point{{Name: "a", Table: Holding, Type: String}}, 0, "length", "needs its length"},
		{"string low first", Limits{}, []Point{{Name: "a", Table: Holding, Type: String, Length: 2, WordOrder: LowFirst}}, 0, "word_order", "address order"},
		{"length on number", Limits{}, []Point{{Name: "a", Table: Holding, Type: Uint16, Length: 2}}, 0, "length", "only a string"},
		{"negative scale", Limits{}, []Point{{Name: "a", Table: Holding, Type: Int16, Scale: -1}}, 0, "scale", "negative"},
		{"NaN scale", Limits{}, []Point{{Name: "a", Table: Holding, Type: Int16, Scale: nan}}, 0, "scale", "not a finite"},
		{"infinite offset", Limits{}, []Point{{Name: "a", Table: Holding, Type: Int16, Offset: math.Inf(1)}}, 0, "offset", "not a finite"},
		{"scaled bool", Limits{}, []Point{{Name: "a", Table: Holding, Type: Bool, Scale: 2}}, 0, "scale", "cannot be scaled"},
		{"offset string", Limits{}, []Point{{Name: "a", Table: Holding, Type: String, Length: 1, Offset: 2}}, 0, "offset", "cannot be scaled"},
		{"negative interval", Limits{}, []Point{{Name: "a", Table: Holding, Type: Int16, Interval: -time.Second}}, 0, "interval", "negative"},
		{"past 65535", Limits{}, []Point{{Name: "a", Table: Holding, Address: 65535, Type: Float32}, {Name: "b", Table: Input, Address: 65535, Type: Int32}}, 0, "address", "65535 + 2 registers runs past 65535"},
		{"string past 65535", Limits{}, []Point{{Name: "a", Table: Holding, Address: 65500, Type: String, Length: 100}}, 0, "address", "runs past 65535"},
		{"longer than a request", Limits{MaxRegisters: 10}, []Point{{Name: "a", Table: Holding, Type: String, Length: 11}}, 0, "length", "11 registers do not fit one request (at most 10)"},
		{"overlap", Limits{}, []Point{{Name: "a", Table: Holding, Address: 0, Type: Float32}, {Name: "b", Table: Holding, Address: 1, Type: Uint16}}, 1, "address", `holding registers 1-1 overlap point 0 "a" (0-1)`},
		{"overlap reported on later index", Limits{}, []Point{{Name: "a", Table: Input, Address: 4, Type: Uint16}, {Name: "b", Table: Input, Address: 2, Type: Float64}}, 1, "address", `overlap point 0 "a" (4-4)`},
		{"same coil", Limits{}, []Point{{Name: "a", Table: Coil, Address: 7, Type: Bool}, {Name: "b", Table: Coil, Address: 7, Type: Bool}}, 1, "address", "overlap"},
		{"same bit", Limits{}, []Point{{Name: "a", Table: Holding, Type: Bool, Bit: BitOf(3)}, {Name: "b", Table: Holding, Type: Bool, Bit: BitOf(3)}}, 1, "bit", `already read by point 0 "a"`},
		{"forbidden contains point", Limits{Forbidden: []AddressRange{{Table: Input, First: 10, Last: 10}}}, []Point{{Name: "a", Table: Input, Address: 9, Type: Float32}}, 0, "address", "reads forbidden range input 10-10 (limits.forbidden[0])"},
		{"max registers", Limits{MaxRegisters: 126}, nil, -1, "limits.max_registers", "126 outside the protocol's 1-125"},
		{"max bits", Limits{MaxBits: 2001}, nil, -1, "limits.max_bits", "2001 outside"},
		{"forbidden table", Limits{Forbidden: []AddressRange{{Table: "x", First: 1, Last: 2}}}, nil, -1, "limits.forbidden[0].table", "unknown table"},
		{"forbidden reversed", Limits{Forbidden: []AddressRange{{}, {Table: Coil, First: 5, Last: 4}}}, nil, -1, "limits.forbidden[1].last", "4 is below first 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidatePoints(tt.pts, tt.lim)
			var found bool
			for _, fe := range fieldErrors(t, err) {
				if fe.Index == tt.index && fe.Field == tt.field {
					assert.Contains(t, fe.Msg, tt.msg)
					if tt.index >= 0 {
						assert.Equal(t, tt.pts[tt.index].Name, fe.Point)
						assert.Contains(t, fe.Error(), "point ")
					}
					found = true
				}
			}
			assert.True(t, found, "no error on %d %s in: %v", tt.index, tt.field, err)
		})
	}
}

func TestValidateJoinsAll(t *testing.T) {
	p := &Profile{Limits: Limits{MaxRegisters: 200}, Points: []Point{
		{Name: "a", Table: "x", Type: "y"},
		{Name: "a", Table: Coil, Type: Float32, Bit: BitOf(1)},
		{Table: Holding, Type: String},
	}}
	errs := fieldErrors(t, p.Validate())
	got := map[string]bool{}
	for _, fe := range errs {
		got[fe.Field+"@"+string(rune('0'+fe.Index+1))] = true
	}
	for _, want := range []string{"limits.max_registers@0", "table@1", "type@1", "name@2", "type@2", "bit@2", "name@3", "length@3"} {
		assert.True(t, got[want], "missing %s in %v", want, errs)
	}
	var nilProfile *Profile
	require.Error(t, nilProfile.Validate())
}

func TestFieldErrorFormat(t *testing.T) {
	fe := &FieldError{File: "m.yaml", Line: 12, Index: 3, Point: "v", Field: "bit", Msg: "16 outside 0-15"}
	assert.Equal(t, `modbus: m.yaml:12: point 3 "v": bit: 16 outside 0-15`, fe.Error())
	fe = &FieldError{Index: -1, Field: "limits.max_bits", Msg: "x"}
	assert.Equal(t, `modbus: limits.max_bits: x`, fe.Error())
}
