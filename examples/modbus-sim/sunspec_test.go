package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/sunspec"
)

// TestSimSunSpec: -sunspec serves an inverter that discovery finds at the
// base given, with -set raw values applied.
func TestSimSunSpec(t *testing.T) {
	ctx, url, stop := startSim(t, "-sunspec", "-sunspec-base", "50000", "-set", "common.SN=XYZ9")
	defer stop()
	c, err := modbus.NewClient(modbus.ClientConfig{URL: url})
	require.NoError(t, err)
	defer c.Close()
	chain, err := sunspec.Discover(ctx, c, 1, sunspec.Options{})
	require.NoError(t, err)
	assert.Equal(t, uint16(50000), chain.Base)
	var ids []uint16
	for _, m := range chain.Models {
		ids = append(ids, m.ID)
	}
	assert.Equal(t, []uint16{1, 103, 160, 123}, ids)
	assert.Equal(t, "XYZ9", chain.Serial)

	err = run(ctx, []string{"-addr", "127.0.0.1:0", "-sunspec", "-set", "nope.X=1"}, nil, nil)
	require.ErrorContains(t, err, `no SunSpec point "nope.X"`)
}
