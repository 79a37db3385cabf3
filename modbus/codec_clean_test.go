package modbus

import (
	"math"
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
