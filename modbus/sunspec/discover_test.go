package sunspec_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
	"github.com/m2mbridge/m2mbridge/modbus/sunspec"
)

// inverter is a three-model inverter: common, three-phase inverter, MPPT
// extension with n modules.
func inverter(base uint16, modules int) modbustest.SunSpecDevice {
	mppt := map[string]any{"DCA_SF": -2, "DCV_SF": -1, "DCW_SF": 0, "DCWH_SF": 0, "N": modules, "TmsPer": 0, "Evt": 0}
	for i := 0; i < modules; i++ {
		p := fmt.Sprintf("module[%d].", i)
		mppt[p+"ID"] = i + 1
		mppt[p+"IDStr"] = fmt.Sprintf("MPPT %d", i+1)
		mppt[p+"DCA"] = 850 + i  // 8.5 A
		mppt[p+"DCV"] = 3801 + i // 380.1 V
		mppt[p+"DCW"] = 3230 + i
		mppt[p+"DCWH"] = 123456 + i
		mppt[p+"DCSt"] = 4
		mppt[p+"DCEvt"] = 0
	}
	return modbustest.SunSpecDevice{Base: base, Models: []modbustest.SunSpecModel{
		{ID: 1, Values: map[string]any{"Mn": "m2mbridge", "Md": "SIM-INV", "SN": "SN0001", "Vr": "1.0", "DA": 1}},
		{ID: 103, Values: map[string]any{
			"A": 1234, "AphA": 411, "AphB": 412, "AphC": 411, "A_SF": -2,
			"PPVphAB": 4001, "PPVphBC": 4002, "PPVphCA": 4003, "PhVphA": 2301, "PhVphB": 2302, "PhVphC": 2303, "V_SF": -1,
			"W": 8500, "W_SF": 0, "Hz": 5002, "Hz_SF": -2, "WH": 1234567, "WH_SF": 0,
			"St": 4, "Evt1": 0x5, "TmpCab": 451, "Tmp_SF": -1,
			// VA, VAr, PF, DCA ... left out: not implemented
		}},
		{ID: 160, Values: mppt, Repeats: modules},
	}}
}

func startInverter(t *testing.T, dev modbustest.SunSpecDevice, opts ...modbustest.Option) (*modbustest.SunSpecServer, *modbus.Client) {
	t.Helper()
	srv, err := modbustest.NewSunSpecServer(dev, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	c, err := modbus.NewClient(modbus.ClientConfig{URL: srv.URL()})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return srv, c
}

func TestDiscoverBases(t *testing.T) {
	for _, base := range sunspec.Bases {
		t.Run(fmt.Sprint(base), func(t *testing.T) {
			srv, c := startInverter(t, inverter(base, 2))
			chain, err := sunspec.Discover(context.Background(), c, 1, sunspec.Options{})
			require.NoError(t, err)
			assert.Equal(t, base, chain.Base)
			require.Len(t, chain.Models, 3)
			want := srv.Models()
			for k, m := range chain.Models {
				assert.Equal(t, want[k], m)
			}
			assert.Equal(t, "common", chain.Models[0].Name)
			assert.Equal(t, uint16(base+2), chain.Models[0].Address)
			assert.Equal(t, uint16(66), chain.Models[0].Length)
			assert.Equal(t, "inverter_three_phase", chain.Models[1].Name)
			assert.Equal(t, uint16(50), chain.Models[1].Length)
			assert.Equal(t, "mppt", chain.Models[2].Name)
			assert.Equal(t, uint16(8+2*20), chain.Models[2].Length)
			assert.Equal(t, "SN0001", chain.Serial)
			assert.Empty(t, chain.Skipped)
			// The points are those the server laid out.
			var got, exp []string
			for _, p := range chain.Points {
				got = append(got, fmt.Sprintf("%s@%d", p.Point.Name, p.Point.Address))
			}
			for _, p := range srv.Points() {
				exp = append(exp, fmt.Sprintf("%s@%d", p.Point.Name, p.Point.Address))
			}
			assert.Equal(t, exp, got)
		})
	}
}

func TestDiscoverChainQuirks(t *testing.T) {
	ctx := context.Background()
	t.Run("end model without length", func(t *testing.T) {
		dev := inverter(40000, 1)
		dev.NoEndLength = true
		_, c := startInverter(t, dev)
		chain, err := sunspec.Discover(ctx, c, 1, sunspec.Options{})
		require.NoError(t, err)
		assert.Len(t, chain.Models, 3)
	})
	t.Run("no end model", func(t *testing.T) {
		dev := inverter(0, 1)
		dev.NoEnd = true
		_, c := startInverter(t, dev)
		chain, err := sunspec.Discover(ctx, c, 1, sunspec.Options{})
		require.NoError(t, err)
		assert.Len(t, chain.Models, 3)
		assert.Contains(t, chain.Skipped[0], "no end model")
	})
	t.Run("unknown model skipped", func(t *testing.T) {
		dev := inverter(50000, 1)
		dev.UnknownAt, dev.UnknownID, dev.UnknownLength = 2, 64999, 7
		_, c := startInverter(t, dev)
		chain, err := sunspec.Discover(ctx, c, 1, sunspec.Options{})
		require.NoError(t, err)
		require.Len(t, chain.Models, 4)
		assert.Equal(t, uint16(64999), chain.Models[1].ID)
		assert.False(t, chain.Models[1].Known)
		assert.Equal(t, "inverter_three_phase", chain.Models[2].Name)
		assert.Contains(t, chain.Skipped[0], "model 64999 at 50070 (length 7): unknown model id")
	})
	t.Run("models filter", func(t *testing.T) {
		_, c := startInverter(t, inverter(40000, 1))
		chain, err := sunspec.Discover(ctx, c, 1, sunspec.Options{Models: []uint16{160}})
		require.NoError(t, err)
		assert.Len(t, chain.Models, 3)
		for _, p := range chain.Points {
			assert.NotEqual(t, "inverter_three_phase", p.Model, p.Point.Name)
		}
	})
	t.Run("no marker", func(t *testing.T) {
		srv, err := modbustest.NewServer(&modbus.Profile{Name: "plain", Points: []modbus.Point{
			{Name: "x", Table: modbus.Holding, Address: 40000, Type: modbus.Uint32}}})
		require.NoError(t, err)
		t.Cleanup(func() { srv.Close() })
		c, err := modbus.NewClient(modbus.ClientConfig{URL: srv.URL()})
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		_, err = sunspec.Discover(ctx, c, 1, sunspec.Options{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "no SunSpec marker")
		assert.Contains(t, err.Error(), "40000: ")
		assert.Contains(t, err.Error(), "50001: ")
	})
}

func TestDiscoverPoints(t *testing.T) {
	_, c := startInverter(t, inverter(40000, 3))
	chain, err := sunspec.Discover(context.Background(), c, 1, sunspec.Options{})
	require.NoError(t, err)
	byName := map[string]sunspec.PointInfo{}
	for _, p := range chain.Points {
		byName[p.Point.Name] = p
	}
	w := byName["inverter_three_phase.W"].Point
	assert.Equal(t, "inverter_three_phase.W_SF", w.ScaleFactor)
	assert.Equal(t, modbus.Int16, w.Type)
	assert.Equal(t, modbus.NotImplementedMin, w.NotImplemented)
	assert.Equal(t, "W", w.Unit)
	assert.Equal(t, uint16(40002+68+14), w.Address, "after the common model (68 registers), W is the 15th register of model 103")
	wh := byName["inverter_three_phase.WH"].Point
	assert.Equal(t, modbus.Uint32, wh.Type)
	assert.Equal(t, modbus.NotImplementedZero, wh.NotImplemented, "acc32: 0 is not implemented")
	sn := byName["common.SN"].Point
	assert.Equal(t, modbus.String, sn.Type)
	assert.Equal(t, uint16(16), sn.Length)
	for i := 0; i < 3; i++ {
		dca := byName[fmt.Sprintf("mppt.module[%d].DCA", i)].Point
		assert.Equal(t, "mppt.DCA_SF", dca.ScaleFactor)
		assert.Equal(t, "A", dca.Unit)
	}
	_, ok := byName["mppt.module[3].DCA"]
	assert.False(t, ok)
	_, ok = byName["inverter_three_phase.ID"]
	assert.False(t, ok, "the header is not a point")
	_, ok = byName["common.Pad"]
	assert.False(t, ok, "pad is not a point")
	st := byName["inverter_three_phase.St"]
	assert.Equal(t, sunspec.Enum16, st.Def.Type)
	assert.Equal(t, modbus.NotImplementedMax, st.Point.NotImplemented)
}
