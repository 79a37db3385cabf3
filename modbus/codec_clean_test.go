package modbus

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
)

// TestDecodeGivesCleanDecimals: a float32 register holding 230.1 reads 230.1,
// not 230.10000610351562, and a scaled integer 2301 × 0.1 reads 230.1, not
// 230.10000000000002, so JSON and line protocol carry what the device meant.
func TestDecodeGivesCleanDecimals(t *testing.T) {
	bits := math.Float32bits(230.1)
	f32 := Point{Name: "v", Table: Input, Type: Float32}
	got, err := f32.Decode([]uint16{uint16(bits >> 16), uint16(bits)})
	require.NoError(t, err)
	assert.Equal(t, 230.1, got.Float())

	tests := []struct {
		scale float64
		raw   uint16
		want  float64
	}{
		{0.1, 2301, 230.1},
		{0.01, 4999, 49.99},
		{0.001, 1, 0.001},
		{-0.1, 3, -0.3},
		{2.5, 4, 10},
	}
	for _, tt := range tests {
		p := Point{Name: "s", Table: Holding, Type: Uint16, Scale: tt.scale}
		got, err := p.Decode([]uint16{tt.raw})
		require.NoError(t, err)
		assert.Equal(t, bridge.Float(tt.want), got, "raw %d × %v", tt.raw, tt.scale)
	}
	allocs := testing.AllocsPerRun(100, func() { _, _ = f32.Decode([]uint16{uint16(bits >> 16), uint16(bits)}) })
	assert.Zero(t, allocs)
}

// shortest32Ref is shortest32 by its definition: the float32's shortest
// decimal, parsed as a float64.
func shortest32Ref(f float32) float64 {
	if f != f || math.IsInf(float64(f), 0) || f == 0 {
		return float64(f)
	}
	v, err := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	if err != nil {
		panic(err)
	}
	return v
}

// TestShortest32MatchesParse: the fast path (digits times an exact power of
// ten) gives the float64 that parsing the shortest decimal gives, for
// float32s of every magnitude, the subnormals and the extremes included.
func TestShortest32MatchesParse(t *testing.T) {
	check := func(f float32) {
		t.Helper()
		got, want := shortest32(f), shortest32Ref(f)
		if math.Float64bits(got) != math.Float64bits(want) && !(got != got && want != want) {
			t.Fatalf("shortest32(%v = %#08x) = %v, want %v", f, math.Float32bits(f), got, want)
		}
	}
	for _, f := range []float32{1, -1, 0.1, 230.1, 233.22108, 1e-13, 9.99e-14, 1e30, 1.0000001e30, 3.4028235e38,
		-3.4028235e38, 1.4e-45, 1.17549435e-38, 16777216, 16777217, 123456.79, float32(math.Inf(1)), float32(math.NaN())} {
		check(f)
		check(-f)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 500_000 {
		check(math.Float32frombits(r.Uint32()))
	}
	// One float32 in 5 of the binade 1..2, and one in 401 of those from
	// 10^-7 to 2^24, where meter values live (the fast path's bounds
	// included).
	for bits := math.Float32bits(1); bits < math.Float32bits(2); bits += 5 {
		check(math.Float32frombits(bits))
	}
	for bits := math.Float32bits(1e-7); bits < math.Float32bits(1<<24); bits += 401 {
		check(math.Float32frombits(bits))
	}
}

func BenchmarkShortest32(b *testing.B) {
	fs := []float32{230.1, 231.45703, 49.98, 0.953, 12345.678, 4021.7168, 1.5e-3}
	b.ReportAllocs()
	var sink float64
	for i := range b.N {
		sink += shortest32(fs[i%len(fs)])
	}
	_ = sink
}
