package modbus

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
)

var allOrders = []struct {
	word WordOrder
	byte ByteOrder
}{{"", ""}, {HighFirst, BigEndian}, {LowFirst, BigEndian}, {HighFirst, LittleEndian}, {LowFirst, LittleEndian}}

func TestDecodeKnownValues(t *testing.T) {
	tests := []struct {
		name string
		p    Point
		regs []uint16
		want bridge.Value
	}{
		{"float32 high big", Point{Type: Float32}, []uint16{0x4366, 0x8000}, bridge.Float(230.5)},
		{"float32 low big", Point{Type: Float32, WordOrder: LowFirst}, []uint16{0x8000, 0x4366}, bridge.Float(230.5)},
		{"float32 high little", Point{Type: Float32, ByteOrder: LittleEndian}, []uint16{0x6643, 0x0080}, bridge.Float(230.5)},
		{"float32 low little", Point{Type: Float32, WordOrder: LowFirst, ByteOrder: LittleEndian}, []uint16{0x0080, 0x6643}, bridge.Float(230.5)},
		{"float64", Point{Type: Float64}, []uint16{0x400C, 0x0000, 0x0000, 0x0000}, bridge.Float(3.5)},
		{"float64 low first", Point{Type: Float64, WordOrder: LowFirst}, []uint16{0, 0, 0, 0x400C}, bridge.Float(3.5)},
		{"int16 negative", Point{Type: Int16}, []uint16{0xFFFE}, bridge.Int(-2)},
		{"int16 little", Point{Type: Int16, ByteOrder: LittleEndian}, []uint16{0xFEFF}, bridge.Int(-2)},
		{"uint16", Point{Type: Uint16}, []uint16{0xFFFE}, bridge.Uint(65534)},
		{"int32", Point{Type: Int32}, []uint16{0xFFFF, 0xFFFD}, bridge.Int(-3)},
		{"int32 low first", Point{Type: Int32, WordOrder: LowFirst}, []uint16{0xFFFD, 0xFFFF}, bridge.Int(-3)},
		{"uint32", Point{Type: Uint32}, []uint16{0x0001, 0x0002}, bridge.Uint(65538)},
		{"uint32 low little", Point{Type: Uint32, WordOrder: LowFirst, ByteOrder: LittleEndian}, []uint16{0x0200, 0x0100}, bridge.Uint(65538)},
		{"int64 beyond float precision", Point{Type: Int64}, []uint16{0xFFDF, 0xFFFF, 0xFFFF, 0xFFFF}, bridge.Int(-(1 << 53) - 1)},
		{"int64 min", Point{Type: Int64}, []uint16{0x8000, 0, 0, 0}, bridge.Int(math.MinInt64)},
		{"uint64 max", Point{Type: Uint64}, []uint16{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF}, bridge.Uint(math.MaxUint64)},
		{"uint64 odd exact", Point{Type: Uint64, WordOrder: LowFirst}, []uint16{0x0001, 0, 0, 0x0020}, bridge.Uint(1<<53 + 1)},
		{"int16 scaled", Point{Type: Int16, Scale: 0.1}, []uint16{0xFB2E}, bridge.Float(-1234 * 0.1)},
		{"uint32 scale offset", Point{Type: Uint32, Scale: 0.01, Offset: -40}, []uint16{0, 5000}, bridge.Float(5000*0.01 - 40)},
		{"int64 offset only", Point{Type: Int64, Offset: 1}, []uint16{0, 0, 0, 2}, bridge.Float(3)},
		{"scale 1 stays integer", Point{Type: Int32, Scale: 1}, []uint16{0, 7}, bridge.Int(7)},
		{"float32 scaled", Point{Type: Float32, Scale: 1000}, []uint16{0x3F80, 0}, bridge.Float(1000)},
		{"bool register", Point{Type: Bool}, []uint16{0x0100}, bridge.Bool(true)},
		{"bool register zero", Point{Type: Bool}, []uint16{0}, bridge.Bool(false)},
		{"bit 0", Point{Type: Bool, Bit: BitOf(0)}, []uint16{0x0001}, bridge.Bool(true)},
		{"bit 15", Point{Type: Bool, Bit: BitOf(15)}, []uint16{0x8000}, bridge.Bool(true)},
		{"bit 3 clear", Point{Type: Bool, Bit: BitOf(3)}, []uint16{0xFFF7}, bridge.Bool(false)},
		{"bit little", Point{Type: Bool, Bit: BitOf(8), ByteOrder: LittleEndian}, []uint16{0x0001}, bridge.Bool(true)},
		{"string trimmed", Point{Type: String, Length: 4}, []uint16{0x5344, 0x4D36, 0x3330, 0x2000}, bridge.String("SDM630")},
		{"string little", Point{Type: String, Length: 2, ByteOrder: LittleEndian}, []uint16{0x4241, 0x0043}, bridge.String("ABC")},
		{"string all NULs", Point{Type: String, Length: 2}, []uint16{0, 0}, bridge.String("")},
		{"string inner space kept", Point{Type: String, Length: 2}, []uint16{0x4120, 0x4200}, bridge.String("A B")},
		{"coil", Point{Table: Coil, Type: Bool}, []uint16{1}, bridge.Bool(true)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.p.Table == "" {
				tt.p.Table = Holding
			}
			got, err := tt.p.Decode(tt.regs)
			require.NoError(t, err)
			assert.Equal(t, tt.want.Kind(), got.Kind(), "kind of %v", got)
			assert.True(t, tt.want.Equal(got), "got %v, want %v", got, tt.want)
			if tt.want.Kind() == bridge.KindFloat && tt.p.Type != Float32 && tt.p.Type != Float64 {
				assert.InDelta(t, tt.want.Float(), got.Float(), 1e-9)
			}
		})
	}
}

func TestDecodeWrongLength(t *testing.T) {
	p := Point{Name: "v", Table: Input, Type: Float32}
	_, err := p.Decode([]uint16{1})
	require.ErrorIs(t, err, ErrRegisters)
	assert.Contains(t, err.Error(), `"v"`)
	_, err = p.Decode([]uint16{1, 2, 3})
	require.ErrorIs(t, err, ErrRegisters)
	_, err = Point{Name: "s", Table: Input, Type: String}.Decode(nil)
	require.ErrorIs(t, err, ErrRegisters, "a string without length decodes nothing")
	_, err = Point{Name: "x", Table: Input, Type: "complex"}.Decode([]uint16{1})
	require.Error(t, err)
}

func TestDecodeBit(t *testing.T) {
	p := Point{Name: "c", Table: Coil, Type: Bool}
	assert.Equal(t, bridge.Bool(true), p.DecodeBit(true))
	assert.Equal(t, bridge.Bool(false), p.DecodeBit(false))
}

func TestRegisters(t *testing.T) {
	for typ, n := range map[Type]uint16{Bool: 1, Int16: 1, Uint16: 1, Int32: 2, Uint32: 2, Float32: 2, Int64: 4, Uint64: 4, Float64: 4, "x": 0} {
		assert.Equal(t, n, Point{Table: Holding, Type: typ}.Registers(), typ)
	}
	assert.Equal(t, uint16(9), Point{Table: Input, Type: String, Length: 9}.Registers())
	assert.Equal(t, uint16(1), Point{Table: Coil, Type: Bool}.Registers())
	assert.Equal(t, uint16(1), Point{Table: Discrete, Type: Bool}.Registers())
	assert.Equal(t, uint16(1), Point{Table: Holding, Type: Bool, Bit: BitOf(4)}.Registers())
}

func TestEncodeKnownValues(t *testing.T) {
	tests := []struct {
		name string
		p    Point
		v    bridge.Value
		want []uint16
	}{
		{"float32", Point{Type: Float32}, bridge.Float(230.5), []uint16{0x4366, 0x8000}},
		{"float32 low little", Point{Type: Float32, WordOrder: LowFirst, ByteOrder: LittleEndian}, bridge.Float(230.5), []uint16{0x0080, 0x6643}},
		{"float32 from int", Point{Type: Float32}, bridge.Int(2), []uint16{0x4000, 0}},
		{"float64", Point{Type: Float64}, bridge.Float(3.5), []uint16{0x400C, 0, 0, 0}},
		{"int16 negative", Point{Type: Int16}, bridge.Int(-2), []uint16{0xFFFE}},
		{"int16 from uint", Point{Type: Int16}, bridge.Uint(5), []uint16{5}},
		{"int16 from integral float", Point{Type: Int16}, bridge.Float(-7), []uint16{0xFFF9}},
		{"int32 low first", Point{Type: Int32, WordOrder: LowFirst}, bridge.Int(-3), []uint16{0xFFFD, 0xFFFF}},
		{"int64 exact", Point{Type: Int64}, bridge.Int(-(1 << 53) - 1), []uint16{0xFFDF, 0xFFFF, 0xFFFF, 0xFFFF}},
		{"uint64 max", Point{Type: Uint64}, bridge.Uint(math.MaxUint64), []uint16{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF}},
		{"uint64 from int", Point{Type: Uint64, WordOrder: LowFirst}, bridge.Int(1<<53 + 1), []uint16{1, 0, 0, 0x20}},
		{"scaled rounds", Point{Type: Int16, Scale: 0.1}, bridge.Float(230.5), []uint16{2305}},
		{"scaled negative", Point{Type: Int16, Scale: 0.1}, bridge.Float(-123.4), []uint16{0xFB2E}},
		{"scale and offset", Point{Type: Uint16, Scale: 0.5, Offset: -40}, bridge.Float(-20), []uint16{40}},
		{"scaled from int", Point{Type: Uint32, Scale: 10}, bridge.Int(1230), []uint16{0, 123}},
		{"float scaled", Point{Type: Float32, Scale: 1000}, bridge.Float(1000), []uint16{0x3F80, 0}},
		{"bool register", Point{Type: Bool}, bridge.Bool(true), []uint16{1}},
		{"bool from number", Point{Type: Bool}, bridge.Int(0), []uint16{0}},
		{"coil", Point{Table: Coil, Type: Bool}, bridge.Bool(true), []uint16{1}},
		{"string padded", Point{Type: String, Length: 4}, bridge.String("SDM630"), []uint16{0x5344, 0x4D36, 0x3330, 0}},
		{"string odd", Point{Type: String, Length: 2}, bridge.String("ABC"), []uint16{0x4142, 0x4300}},
		{"string little", Point{Type: String, Length: 2, ByteOrder: LittleEndian}, bridge.String("ABC"), []uint16{0x4241, 0x0043}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.p.Table == "" {
				tt.p.Table = Holding
			}
			got, err := tt.p.Encode(tt.v)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		p    Point
		v    bridge.Value
		is   error
	}{
		{"int16 too big", Point{Type: Int16}, bridge.Int(32768), ErrRange},
		{"int16 too small", Point{Type: Int16}, bridge.Int(-32769), ErrRange},
		{"uint16 negative", Point{Type: Uint16}, bridge.Int(-1), ErrRange},
		{"uint16 too big", Point{Type: Uint16}, bridge.Uint(65536), ErrRange},
		{"uint32 too big", Point{Type: Uint32}, bridge.Uint(1 << 32), ErrRange},
		{"int32 too big", Point{Type: Int32}, bridge.Int(1 << 31), ErrRange},
		{"int64 from huge uint", Point{Type: Int64}, bridge.Uint(1 << 63), ErrRange},
		{"uint64 negative", Point{Type: Uint64}, bridge.Int(-1), ErrRange},
		{"fraction on unscaled int", Point{Type: Int32}, bridge.Float(1.5), ErrRange},
		{"NaN on int", Point{Type: Int32}, bridge.Float(math.NaN()), ErrRange},
		{"NaN on scaled int", Point{Type: Int32, Scale: 0.1}, bridge.Float(math.NaN()), ErrRange},
		{"scaled past range", Point{Type: Int16, Scale: 0.1}, bridge.Float(3276.8), ErrRange},
		{"scaled int64 past range", Point{Type: Int64, Scale: 2}, bridge.Float(math.MaxInt64 * 2.0), ErrRange},
		{"scaled uint64 past range", Point{Type: Uint64, Offset: 1}, bridge.Float(1<<64 + 2048), ErrRange},
		{"scaled negative on unsigned", Point{Type: Uint16, Scale: 0.1}, bridge.Float(-0.1), ErrRange},
		{"float32 overflow", Point{Type: Float32}, bridge.Float(1e39), ErrRange},
		{"string too long", Point{Type: String, Length: 1}, bridge.String("ABC"), ErrRange},
		{"string for number", Point{Type: Float32}, bridge.String("1"), ErrKind},
		{"bool for number", Point{Type: Int16}, bridge.Bool(true), ErrKind},
		{"none for number", Point{Type: Int16}, bridge.Value{}, ErrKind},
		{"number for string", Point{Type: String, Length: 2}, bridge.Int(1), ErrKind},
		{"string for coil", Point{Table: Coil, Type: Bool}, bridge.String("on"), ErrKind},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.p.Name = "pt"
			if tt.p.Table == "" {
				tt.p.Table = Holding
			}
			_, err := tt.p.Encode(tt.v)
			require.ErrorIs(t, err, tt.is)
			assert.Contains(t, err.Error(), `point "pt"`)
		})
	}
	_, err := Point{Name: "b", Table: Holding, Type: Bool, Bit: BitOf(3)}.Encode(bridge.Bool(true))
	require.ErrorContains(t, err, "EncodeBit")
	_, err = Point{Name: "x", Table: Holding, Type: "complex"}.Encode(bridge.Int(1))
	require.ErrorContains(t, err, `"x"`)
	_, err = Point{Name: "n", Table: Holding, Type: Int16}.EncodeBit(bridge.Bool(true))
	require.ErrorContains(t, err, "not bool")
}

func TestSetBit(t *testing.T) {
	p := Point{Table: Holding, Type: Bool, Bit: BitOf(3)}
	assert.Equal(t, uint16(0x0009), p.SetBit(0x0001, true))
	assert.Equal(t, uint16(0xFFF7), p.SetBit(0xFFFF, false))
	little := Point{Table: Holding, Type: Bool, Bit: BitOf(0), ByteOrder: LittleEndian}
	reg := little.SetBit(0, true)
	assert.Equal(t, uint16(0x0100), reg)
	v, err := little.Decode([]uint16{reg})
	require.NoError(t, err)
	assert.Equal(t, bridge.Bool(true), v)
	assert.Equal(t, uint16(7), Point{Table: Holding, Type: Uint16}.SetBit(7, true), "not a bit point: unchanged")
}

var numericTypes = []Type{Int16, Uint16, Int32, Uint32, Int64, Uint64, Float32, Float64}

// TestRoundTripRegisters: every register pattern of every numeric type in
// every order decodes and encodes back to the same registers (NaN floats
// aside, whose payload a float64 may not keep).
func TestRoundTripRegisters(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, typ := range numericTypes {
		for _, o := range allOrders {
			p := Point{Name: "p", Table: Holding, Type: typ, WordOrder: o.word, ByteOrder: o.byte}
			for range 2000 {
				regs := make([]uint16, p.Registers())
				for i := range regs {
					regs[i] = uint16(rng.Uint32())
				}
				v, err := p.Decode(regs)
				require.NoError(t, err)
				if math.IsNaN(v.Float()) {
					continue
				}
				back, err := p.Encode(v)
				require.NoError(t, err, "%s %v", typ, o)
				require.Equal(t, regs, back, "%s %s/%s %v", typ, o.word, o.byte, v)
			}
		}
	}
}

// TestRoundTripValues: values, including the extremes of each type, encode
// and decode back to an equal value in every order; scaled points round to
// the nearest raw step.
func TestRoundTripValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	extremes := map[Type][]bridge.Value{
		Int16:   {bridge.Int(math.MinInt16), bridge.Int(math.MaxInt16), bridge.Int(0)},
		Uint16:  {bridge.Uint(0), bridge.Uint(math.MaxUint16)},
		Int32:   {bridge.Int(math.MinInt32), bridge.Int(math.MaxInt32)},
		Uint32:  {bridge.Uint(math.MaxUint32)},
		Int64:   {bridge.Int(math.MinInt64), bridge.Int(math.MaxInt64), bridge.Int(1<<53 + 1)},
		Uint64:  {bridge.Uint(math.MaxUint64), bridge.Uint(1<<64 - 3)},
		Float32: {bridge.Float(math.MaxFloat32), bridge.Float(-math.SmallestNonzeroFloat32), bridge.Float(math.Inf(-1)), bridge.Float(math.NaN())},
		Float64: {bridge.Float(math.MaxFloat64), bridge.Float(math.SmallestNonzeroFloat64), bridge.Float(math.Inf(1)), bridge.Float(math.NaN())},
	}
	for _, typ := range numericTypes {
		for _, o := range allOrders {
			p := Point{Name: "p", Table: Holding, Type: typ, WordOrder: o.word, ByteOrder: o.byte}
			values := extremes[typ]
			for range 500 {
				values = append(values, randomValue(rng, typ))
			}
			for _, v := range values {
				regs, err := p.Encode(v)
				require.NoError(t, err, "%s %v", typ, v)
				got, err := p.Decode(regs)
				require.NoError(t, err)
				if typ == Float32 {
					// Decode widens to the shortest decimal of the float32;
					// narrowing it again must give the same float32.
					same := math.Float32bits(float32(v.Float())) == math.Float32bits(float32(got.Float())) || (math.IsNaN(v.Float()) && math.IsNaN(got.Float()))
					require.True(t, same, "%s %s/%s: %v came back as %v", typ, o.word, o.byte, v, got)
					again, err := p.Encode(got)
					require.NoError(t, err)
					require.Equal(t, regs, again, "re-encoding the decoded float32")
					continue
				}
				require.True(t, v.Equal(got), "%s %s/%s: %v came back as %v", typ, o.word, o.byte, v, got)
			}
			// Scaled: value = raw*scale + offset survives to within half a step.
			if typ == Float32 || typ == Float64 {
				continue
			}
			s := Point{Name: "s", Table: Holding, Type: typ, WordOrder: o.word, ByteOrder: o.byte, Scale: 0.1, Offset: -40}
			for range 500 {
				raw := randomValue(rng, typ)
				if math.Abs(raw.Float()) > 1<<50 {
					continue // beyond float64's exact integers the step is meaningless
				}
				want := raw.Float()*0.1 - 40
				regs, err := s.Encode(bridge.Float(want))
				require.NoError(t, err, "%s %v", typ, want)
				got, err := s.Decode(regs)
				require.NoError(t, err)
				require.InDelta(t, want, got.Float(), 0.05+math.Abs(want)*1e-12, "%s %v", typ, raw)
			}
		}
	}
}

func randomValue(rng *rand.Rand, typ Type) bridge.Value {
	u := rng.Uint64()
	switch typ {
	case Int16:
		return bridge.Int(int64(int16(u)))
	case Uint16:
		return bridge.Uint(uint64(uint16(u)))
	case Int32:
		return bridge.Int(int64(int32(u)))
	case Uint32:
		return bridge.Uint(uint64(uint32(u)))
	case Int64:
		return bridge.Int(int64(u))
	case Uint64:
		return bridge.Uint(u)
	case Float32:
		return bridge.Float(float64(math.Float32frombits(uint32(u))))
	}
	return bridge.Float(math.Float64frombits(u))
}

func TestRoundTripStrings(t *testing.T) {
	for _, bo := range []ByteOrder{"", BigEndian, LittleEndian} {
		p := Point{Name: "s", Table: Holding, Type: String, Length: 5, ByteOrder: bo}
		for _, s := range []string{"", "A", "AB", "SDM630", "0123456789", "ünï"} {
			regs, err := p.Encode(bridge.String(s))
			require.NoError(t, err)
			got, err := p.Decode(regs)
			require.NoError(t, err)
			assert.Equal(t, s, got.Str())
		}
	}
}

func TestDecodeDoesNotAllocate(t *testing.T) {
	regs := []uint16{0x4366, 0x8000, 0x1234, 0x5678}
	for _, typ := range append([]Type{Bool}, numericTypes...) {
		for _, scale := range []float64{0, 0.1} {
			p := Point{Name: "p", Table: Holding, Type: typ, WordOrder: LowFirst, ByteOrder: LittleEndian, Scale: scale}
			if typ == Bool {
				p.Scale = 0
			}
			in := regs[:p.Registers()]
			allocs := testing.AllocsPerRun(100, func() {
				if _, err := p.Decode(in); err != nil {
					t.Fatal(err)
				}
			})
			assert.Zero(t, allocs, "%s scale %g", typ, scale)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, tc := range []struct {
		name string
		p    Point
	}{
		{"float32", Point{Name: "v", Table: Input, Type: Float32}},
		{"int64", Point{Name: "e", Table: Input, Type: Int64, WordOrder: LowFirst}},
		{"int32_scaled", Point{Name: "w", Table: Input, Type: Int32, WordOrder: LowFirst, Scale: 0.1}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			regs := make([]uint16, tc.p.Registers())
			regs[0] = 0x4366
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.p.Decode(regs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decodes/s")
		})
	}
}

// FuzzDecode: any registers decode without panicking under any type, order,
// bit and scale; numeric unscaled values encode back to the same registers.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{0x43, 0x66, 0x80, 0x00}, uint8(6), uint8(0), uint8(0), 0.0)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, uint8(4), uint8(3), uint8(0), 0.0)
	f.Add([]byte{0x41, 0x42, 0x00, 0x20}, uint8(9), uint8(1), uint8(0), 0.0)
	f.Add([]byte{0x00, 0x08}, uint8(0), uint8(0), uint8(3), 0.0)
	f.Add([]byte{0xfb, 0x2e}, uint8(1), uint8(0), uint8(0), 0.1)
	types := []Type{Bool, Int16, Uint16, Int32, Uint32, Int64, Uint64, Float32, Float64, String}
	f.Fuzz(func(t *testing.T, data []byte, typ, orders, bit uint8, scale float64) {
		p := Point{Name: "f", Table: Holding, Type: types[int(typ)%len(types)],
			WordOrder: allOrders[int(orders)%len(allOrders)].word, ByteOrder: allOrders[int(orders)%len(allOrders)].byte}
		if p.Type == Bool && bit < 32 {
			p.Bit = BitOf(bit % 16)
		}
		if p.Type != Bool && p.Type != String {
			p.Scale = scale
		}
		regs := make([]uint16, len(data)/2)
		for i := range regs {
			regs[i] = uint16(data[2*i])<<8 | uint16(data[2*i+1])
		}
		if p.Type == String {
			p.Length = uint16(len(regs))
		}
		v, err := p.Decode(regs)
		if len(regs) != int(p.Registers()) || p.Registers() == 0 {
			require.ErrorIs(t, err, ErrRegisters)
			return
		}
		require.NoError(t, err)
		if p.Type == String || p.Type == Bool || p.scaled() || math.IsNaN(v.Float()) {
			_, _ = p.Encode(v) // must not panic
			return
		}
		back, err := p.Encode(v)
		require.NoError(t, err)
		require.Equal(t, regs, back)
	})
}

// FuzzEncode: any value encodes without panicking, and what encodes decodes
// to an equal value (unscaled) for every type.
func FuzzEncode(f *testing.F) {
	f.Add(uint8(0), uint8(1), uint64(5), "x", 0.0, 0.0)
	f.Add(uint8(2), uint8(4), uint64(1<<63), "", 0.1, -40.0)
	types := []Type{Bool, Int16, Uint16, Int32, Uint32, Int64, Uint64, Float32, Float64, String}
	f.Fuzz(func(t *testing.T, kind, typ uint8, bits uint64, s string, scale, offset float64) {
		var v bridge.Value
		switch kind % 6 {
		case 1:
			v = bridge.Float(math.Float64frombits(bits))
		case 2:
			v = bridge.Int(int64(bits))
		case 3:
			v = bridge.Uint(bits)
		case 4:
			v = bridge.Bool(bits&1 == 1)
		case 5:
			v = bridge.String(s)
		}
		p := Point{Name: "f", Table: Holding, Type: types[int(typ)%len(types)], Length: 3, Scale: scale, Offset: offset}
		regs, err := p.Encode(v)
		if err != nil {
			require.True(t, errors.Is(err, ErrKind) || errors.Is(err, ErrRange), "%v", err)
			return
		}
		require.Len(t, regs, int(p.Registers()))
		got, err := p.Decode(regs)
		require.NoError(t, err)
		if !p.scaled() && p.Type != Float32 && p.Type != Bool && p.Type != String {
			require.True(t, v.Equal(got), "%v became %v", v, got)
		}
	})
}
