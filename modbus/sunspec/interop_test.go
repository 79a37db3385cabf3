package sunspec_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/pymodbus"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
	"github.com/m2mbridge/m2mbridge/modbus/sunspec"
)

// TestInteropPymodbusFixture serves the pysunspec2 DER fixture from
// pymodbus (a datastore filled with the fixture's registers at 40000) and
// reads it with base auto: every sample equals what our own simulator of
// the same fixture gives. Runs with M2MB_INTEROP=1 (skipped without
// pymodbus otherwise).
func TestInteropPymodbusFixture(t *testing.T) {
	pymodbus.Need(t)
	dev, _ := fixtureDevice(t, "testdata/device_1547.json")
	own, err := modbustest.NewSunSpecServer(dev)
	require.NoError(t, err)
	t.Cleanup(func() { own.Close() })
	// The registers of the map, as our simulator holds them.
	c, err := modbus.NewClient(modbus.ClientConfig{URL: own.URL()})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	models := own.Models()
	last := models[len(models)-1]
	end := int(last.Address) + 2 + int(last.Length) + 2 // with the end model
	var regs []uint16
	for a := 40000; a < end; a += 125 {
		q := min(125, end-a)
		r, err := c.ReadRegisters(context.Background(), 1, modbus.Holding, uint16(a), uint16(q))
		require.NoError(t, err)
		regs = append(regs, r...)
	}
	var b strings.Builder
	b.WriteString("hr = [0] * 40000 + [")
	for k, r := range regs {
		if k > 0 {
			b.WriteString(",")
		}
		fmt.Fprint(&b, r)
	}
	b.WriteString("]\n")
	py := pymodbus.StartTCP(t, b.String())

	_, ownCol := runDevice(t, own, sunspec.Config{})
	d, err := sunspec.NewDevice(modbus.DeviceConfig{Name: "inv1", Conn: modbus.ClientConfig{URL: py.URL}, Unit: 1,
		Interval: 50 * time.Millisecond}, sunspec.Config{Base: sunspec.Base{}})
	require.NoError(t, err)
	col := &collector{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, col) }()
	t.Cleanup(func() { cancel(); <-done; d.Close() })
	require.Eventually(t, func() bool { return col.cycles() >= 1 && ownCol.cycles() >= 1 }, 20*time.Second, 10*time.Millisecond)
	require.Equal(t, uint16(40000), d.Chain().Base)
	ownCol.mu.Lock()
	want := map[string]bridge.Sample{}
	for k, v := range ownCol.last {
		want[k] = v
	}
	ownCol.mu.Unlock()
	require.Greater(t, len(want), 100)
	for name, w := range want {
		g, ok := col.get(name)
		require.True(t, ok, name)
		require.Equal(t, w.Quality, g.Quality, name)
		require.Equal(t, w.Value, g.Value, name)
	}
	col.mu.Lock()
	n := len(col.last)
	col.mu.Unlock()
	require.Equal(t, len(want), n)
}
