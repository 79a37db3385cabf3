package modbus_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// requireFactorsInRequests checks the planner's guarantee: every planned
// point's scale factor is inside the request that carries the point.
func requireFactorsInRequests(t *testing.T, pts []modbus.Point, plan modbus.Plan) {
	t.Helper()
	byName := map[string]modbus.Point{}
	for _, p := range pts {
		byName[p.Name] = p
	}
	for _, r := range plan.Requests {
		for _, i := range r.Points {
			p := pts[i]
			require.GreaterOrEqual(t, p.Address, r.Address, "point %s", p.Name)
			require.LessOrEqual(t, int(p.Address)+int(p.Registers())-1, int(r.Last()), "point %s", p.Name)
			if p.ScaleFactor == "" {
				continue
			}
			f := byName[p.ScaleFactor]
			require.True(t, f.Address >= r.Address && f.Address <= r.Last(),
				"point %s (address %d) read in %d-%d without its scale factor %s (address %d)", p.Name, p.Address, r.Address, r.Last(), f.Name, f.Address)
		}
	}
}

func TestPlanScaleFactorInSameRequest(t *testing.T) {
	rtu := modbus.RTUCost(9600, 8, 0, 1) // a request is worth ~10 registers: a gap of 30 would split
	tests := []struct {
		name   string
		limits modbus.Limits
		points []modbus.Point
		want   []string // "address+quantity"
		unplan []string
	}{
		{"gap that would split is read", modbus.Limits{}, []modbus.Point{
			{Name: "w", Table: modbus.Holding, Address: 0, Type: modbus.Int16, ScaleFactor: "w_sf"},
			{Name: "w_sf", Table: modbus.Holding, Address: 30, Type: modbus.Int16},
		}, []string{"0+31"}, nil},
		{"factor before the point", modbus.Limits{}, []modbus.Point{
			{Name: "w_sf", Table: modbus.Holding, Address: 10, Type: modbus.Int16},
			{Name: "x", Table: modbus.Holding, Address: 12, Type: modbus.Uint16},
			{Name: "w", Table: modbus.Holding, Address: 40, Type: modbus.Int32, ScaleFactor: "w_sf"},
		}, []string{"10+32"}, nil},
		{"max registers: factor read again", modbus.Limits{MaxRegisters: 8}, []modbus.Point{
			{Name: "sf", Table: modbus.Holding, Address: 0, Type: modbus.Int16},
			{Name: "a", Table: modbus.Holding, Address: 2, Type: modbus.Uint16, ScaleFactor: "sf"},
			{Name: "b", Table: modbus.Holding, Address: 5, Type: modbus.Uint16, ScaleFactor: "sf"},
			{Name: "c", Table: modbus.Holding, Address: 7, Type: modbus.Uint16, ScaleFactor: "sf"},
			{Name: "d", Table: modbus.Holding, Address: 8, Type: modbus.Uint32},
		}, []string{"0+8", "8+2"}, nil},
		{"too far for one request", modbus.Limits{MaxRegisters: 10}, []modbus.Point{
			{Name: "sf", Table: modbus.Holding, Address: 0, Type: modbus.Int16},
			{Name: "a", Table: modbus.Holding, Address: 20, Type: modbus.Uint16, ScaleFactor: "sf"},
		}, []string{"0+1"}, []string{"a"}},
		{"forbidden between", modbus.Limits{Forbidden: []modbus.AddressRange{{Table: modbus.Holding, First: 3, Last: 3}}}, []modbus.Point{
			{Name: "sf", Table: modbus.Holding, Address: 0, Type: modbus.Int16},
			{Name: "a", Table: modbus.Holding, Address: 6, Type: modbus.Uint16, ScaleFactor: "sf"},
		}, []string{"0+1"}, []string{"a"}},
		{"missing factor", modbus.Limits{}, []modbus.Point{
			{Name: "a", Table: modbus.Holding, Address: 6, Type: modbus.Uint16, ScaleFactor: "nope"},
		}, nil, []string{"a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan := modbus.NewPlanner(tc.limits, rtu).Plan(tc.points)
			var got []string
			for _, r := range plan.Requests {
				got = append(got, fmt.Sprintf("%d+%d", r.Address, r.Quantity))
			}
			assert.Equal(t, tc.want, got, plan.String())
			var unplanned []string
			for _, i := range plan.Unplanned {
				unplanned = append(unplanned, tc.points[i].Name)
			}
			assert.Equal(t, tc.unplan, unplanned)
			requireFactorsInRequests(t, tc.points, plan)
		})
	}
}

// TestPlanScaleFactorRandom plans random maps with scale factors under
// random limits and costs: every point whose span with its factor fits a
// request is planned, and always with its factor.
func TestPlanScaleFactorRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 1))
	for n := 0; n < 300; n++ {
		var pts []modbus.Point
		addr := 0
		var sfs []string
		for k := 0; k < 5+rng.IntN(40); k++ {
			addr += rng.IntN(12)
			name := fmt.Sprintf("p%d", k)
			if rng.IntN(4) == 0 {
				pts = append(pts, modbus.Point{Name: name, Table: modbus.Holding, Address: uint16(addr), Type: modbus.Int16})
				sfs = append(sfs, name)
				addr++
				continue
			}
			p := modbus.Point{Name: name, Table: modbus.Holding, Address: uint16(addr), Type: modbus.Uint32}
			if len(sfs) > 0 && rng.IntN(3) > 0 {
				p.ScaleFactor = sfs[rng.IntN(len(sfs))]
			}
			pts = append(pts, p)
			addr += 2
		}
		// Factors after their points too.
		for k := range pts {
			if pts[k].ScaleFactor == "" && pts[k].Type == modbus.Uint32 && len(sfs) > 0 && rng.IntN(5) == 0 {
				pts[k].ScaleFactor = sfs[len(sfs)-1]
			}
		}
		maxQ := uint16(4 + rng.IntN(60))
		cost := modbus.RTUCost([]int{1200, 9600, 115200}[rng.IntN(3)], 8, 0, 1)
		plan := modbus.NewPlanner(modbus.Limits{MaxRegisters: maxQ}, cost).Plan(pts)
		requireFactorsInRequests(t, pts, plan)
		unplanned := map[int]bool{}
		for _, i := range plan.Unplanned {
			unplanned[i] = true
		}
		byName := map[string]modbus.Point{}
		for _, p := range pts {
			byName[p.Name] = p
		}
		planned := map[int]bool{}
		for _, r := range plan.Requests {
			require.LessOrEqual(t, r.Quantity, maxQ)
			for _, i := range r.Points {
				require.False(t, planned[i], "point %d planned twice", i)
				planned[i] = true
			}
		}
		for i, p := range pts {
			lo, hi := int(p.Address), int(p.Address)+int(p.Registers())-1
			if p.ScaleFactor != "" {
				f := byName[p.ScaleFactor]
				lo, hi = min(lo, int(f.Address)), max(hi, int(f.Address))
			}
			fits := hi-lo+1 <= int(maxQ)
			require.Equal(t, fits, planned[i], "point %s span %d-%d, max %d", p.Name, lo, hi, maxQ)
			require.Equal(t, !fits, unplanned[i])
		}
	}
}

func TestValidateScaleFactors(t *testing.T) {
	tests := []struct {
		name   string
		limits modbus.Limits
		points []modbus.Point
		want   string
	}{
		{"unknown", modbus.Limits{}, []modbus.Point{{Name: "a", Table: modbus.Holding, Type: modbus.Uint16, ScaleFactor: "x"}},
			`point 0 "a": scale_factor: no point "x" in the device`},
		{"not int16", modbus.Limits{}, []modbus.Point{
			{Name: "a", Table: modbus.Holding, Type: modbus.Uint16, ScaleFactor: "b"},
			{Name: "b", Table: modbus.Holding, Address: 1, Type: modbus.Uint16}}, `"b" is a holding uint16 point`},
		{"too far", modbus.Limits{MaxRegisters: 50}, []modbus.Point{
			{Name: "a", Table: modbus.Holding, Type: modbus.Uint16, ScaleFactor: "b"},
			{Name: "b", Table: modbus.Holding, Address: 60, Type: modbus.Int16}}, `span 61 registers, more than one request reads (50)`},
		{"intervals differ", modbus.Limits{}, []modbus.Point{
			{Name: "a", Table: modbus.Holding, Type: modbus.Uint16, ScaleFactor: "b", Interval: time.Minute},
			{Name: "b", Table: modbus.Holding, Address: 1, Type: modbus.Int16}}, `intervals must match`},
		{"string", modbus.Limits{}, []modbus.Point{
			{Name: "a", Table: modbus.Holding, Type: modbus.String, Length: 2, ScaleFactor: "b"},
			{Name: "b", Table: modbus.Holding, Address: 2, Type: modbus.Int16}}, `a string point cannot be scaled`},
		{"not implemented kind", modbus.Limits{}, []modbus.Point{
			{Name: "a", Table: modbus.Holding, Type: modbus.Uint16, NotImplemented: modbus.NotImplementedMin}}, `not_implemented: min does not apply to a uint16 point`},
		{"not implemented unknown", modbus.Limits{}, []modbus.Point{
			{Name: "a", Table: modbus.Holding, Type: modbus.Uint16, NotImplemented: "none"}}, `not_implemented: unknown value "none"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := modbus.ValidatePoints(tc.points, tc.limits)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	require.NoError(t, modbus.ValidatePoints([]modbus.Point{
		{Name: "a", Table: modbus.Holding, Type: modbus.Uint16, ScaleFactor: "b", NotImplemented: modbus.NotImplementedMax},
		{Name: "b", Table: modbus.Holding, Address: 1, Type: modbus.Int16, NotImplemented: modbus.NotImplementedMin}}, modbus.Limits{}))
}

func TestPointIsNotImplemented(t *testing.T) {
	tests := []struct {
		typ  modbus.Type
		ni   modbus.NotImplemented
		regs []uint16
		want bool
	}{
		{modbus.Int16, modbus.NotImplementedMin, []uint16{0x8000}, true},
		{modbus.Int16, modbus.NotImplementedMin, []uint16{0x8001}, false},
		{modbus.Int32, modbus.NotImplementedMin, []uint16{0x8000, 0}, true},
		{modbus.Int32, modbus.NotImplementedMin, []uint16{0x8000, 1}, false},
		{modbus.Int64, modbus.NotImplementedMin, []uint16{0x8000, 0, 0, 0}, true},
		{modbus.Uint16, modbus.NotImplementedMax, []uint16{0xFFFF}, true},
		{modbus.Uint16, modbus.NotImplementedMax, []uint16{0xFFFE}, false},
		{modbus.Uint32, modbus.NotImplementedMax, []uint16{0xFFFF, 0xFFFF}, true},
		{modbus.Uint32, modbus.NotImplementedMax, []uint16{0x7FFF, 0xFFFF}, false},
		{modbus.Uint64, modbus.NotImplementedMax, []uint16{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF}, true},
		{modbus.Uint32, modbus.NotImplementedZero, []uint16{0, 0}, true},
		{modbus.Uint32, modbus.NotImplementedZero, []uint16{0, 1}, false},
		{modbus.String, modbus.NotImplementedZero, []uint16{0, 0, 0}, true},
		{modbus.String, modbus.NotImplementedZero, []uint16{0x4100, 0, 0}, false},
		{modbus.Float32, modbus.NotImplementedNaN, []uint16{0x7FC0, 0}, true},
		{modbus.Float32, modbus.NotImplementedNaN, []uint16{0xFFC0, 1}, true},
		{modbus.Float32, modbus.NotImplementedNaN, []uint16{0x7F80, 0}, false}, // +Inf
		{modbus.Float64, modbus.NotImplementedNaN, []uint16{0x7FF8, 0, 0, 0}, true},
		{modbus.Uint64, modbus.NotImplementedEUI48, []uint16{0, 0xFFFF, 0xFFFF, 0xFFFF}, true},
		{modbus.Uint64, modbus.NotImplementedEUI48, []uint16{0, 0x00FF, 0xFFFF, 0xFFFF}, false},
		{modbus.Uint16, "", []uint16{0xFFFF}, false},
	}
	for _, tc := range tests {
		p := modbus.Point{Name: "p", Table: modbus.Holding, Type: tc.typ, NotImplemented: tc.ni, Length: uint16(len(tc.regs))}
		if tc.typ != modbus.String {
			p.Length = 0
		}
		assert.Equal(t, tc.want, p.IsNotImplemented(tc.regs), "%s %s %04x", tc.typ, tc.ni, tc.regs)
	}
}

// sfProfiles returns the server's raw map and the device's map of the same
// registers with scale factors and not-implemented values.
func sfProfiles() (server, device *modbus.Profile) {
	server = &modbus.Profile{Name: "raw", Points: []modbus.Point{
		{Name: "w", Table: modbus.Holding, Address: 0, Type: modbus.Int16},
		{Name: "gap", Table: modbus.Holding, Address: 1, Type: modbus.Uint16},
		{Name: "var", Table: modbus.Holding, Address: 2, Type: modbus.Uint32},
		{Name: "w_sf", Table: modbus.Holding, Address: 40, Type: modbus.Int16},
		{Name: "setpoint", Table: modbus.Holding, Address: 41, Type: modbus.Uint16},
		{Name: "sp_sf", Table: modbus.Holding, Address: 42, Type: modbus.Int16},
	}}
	device = &modbus.Profile{Name: "scaled", Points: []modbus.Point{
		{Name: "w", Table: modbus.Holding, Address: 0, Type: modbus.Int16, ScaleFactor: "w_sf", NotImplemented: modbus.NotImplementedMin, Unit: "W"},
		{Name: "var", Table: modbus.Holding, Address: 2, Type: modbus.Uint32, ScaleFactor: "w_sf", NotImplemented: modbus.NotImplementedMax},
		{Name: "w_sf", Table: modbus.Holding, Address: 40, Type: modbus.Int16, NotImplemented: modbus.NotImplementedMin},
		{Name: "setpoint", Table: modbus.Holding, Address: 41, Type: modbus.Uint16, ScaleFactor: "sp_sf", Writable: true, Max: modbus.Limit(100)},
		{Name: "sp_sf", Table: modbus.Holding, Address: 42, Type: modbus.Int16},
	}}
	return server, device
}

func pollMap(t *testing.T, d *modbus.Device) map[string]bridge.Sample {
	t.Helper()
	var mu sync.Mutex
	got := map[string]bridge.Sample{}
	require.NoError(t, d.PollOnce(context.Background(), bridge.EmitterFunc(func(_ context.Context, b []bridge.Sample) error {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range b {
			got[s.Point] = s
		}
		return nil
	})))
	return got
}

func TestDeviceScaleFactors(t *testing.T) {
	sp, dp := sfProfiles()
	srv, err := modbustest.NewServer(sp, modbustest.WithFilledGaps())
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	set := func(kv ...any) {
		for k := 0; k < len(kv); k += 2 {
			require.NoError(t, srv.Set(kv[k].(string), kv[k+1]))
		}
	}
	for _, report := range []bool{false, true} {
		t.Run(fmt.Sprintf("report_not_implemented=%v", report), func(t *testing.T) {
			d, err := modbus.NewDevice(modbus.DeviceConfig{Name: "inv", Conn: modbus.ClientConfig{URL: srv.URL()}, Unit: 1,
				Profile: dp, ReportNotImplemented: report})
			require.NoError(t, err)
			t.Cleanup(func() { d.Close() })
			// One request reads w, var and their factor 40 registers away.
			plan := d.Plan()
			requireFactorsInRequests(t, d.Points(), plan)

			set("w", 2301, "w_sf", -1, "var", 70000, "setpoint", 5, "sp_sf", 1)
			got := pollMap(t, d)
			assert.Equal(t, 230.1, got["w"].Value.Float())
			assert.Equal(t, "W", got["w"].Unit)
			assert.Equal(t, 7000.0, got["var"].Value.Float())
			assert.Equal(t, 50.0, got["setpoint"].Value.Float())
			assert.Equal(t, int64(-1), must(got["w_sf"].Value.Int()))

			// Not implemented: no number, ever.
			set("w", math.MinInt16, "var", uint64(math.MaxUint32))
			got = pollMap(t, d)
			for _, name := range []string{"w", "var"} {
				s, ok := got[name]
				if !report {
					assert.False(t, ok, "%s: %v", name, s)
					continue
				}
				require.True(t, ok)
				assert.Equal(t, bridge.Bad, s.Quality)
				assert.Equal(t, "modbus: not implemented", s.Reason)
				assert.Equal(t, bridge.KindNone, s.Value.Kind())
			}

			// A factor that is not implemented makes its points Bad.
			set("w", 100, "var", 5, "w_sf", math.MinInt16)
			got = pollMap(t, d)
			for _, name := range []string{"w", "var"} {
				assert.Equal(t, bridge.Bad, got[name].Quality, name)
				assert.Contains(t, got[name].Reason, "w_sf is not implemented", name)
			}
			_, ok := got["w_sf"]
			assert.Equal(t, report, ok)
			set("w_sf", 11)
			got = pollMap(t, d)
			assert.Contains(t, got["w"].Reason, "outside -10 to 10")
		})
	}
}

func must[T any](v T, ok bool) T {
	if !ok {
		panic("not ok")
	}
	return v
}

func TestDeviceWriteScaleFactor(t *testing.T) {
	sp, dp := sfProfiles()
	srv, err := modbustest.NewServer(sp, modbustest.WithFilledGaps())
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	d, err := modbus.NewDevice(modbus.DeviceConfig{Name: "inv", Conn: modbus.ClientConfig{URL: srv.URL()}, Unit: 1, Profile: dp})
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	ctx := context.Background()
	raw := func() uint64 {
		v, err := srv.Value("setpoint")
		require.NoError(t, err)
		return must(v.Uint())
	}

	require.NoError(t, srv.Set("sp_sf", -2))
	s, err := d.Write(ctx, "setpoint", bridge.Float(42.17))
	require.NoError(t, err)
	assert.Equal(t, uint64(4217), raw())
	assert.Equal(t, 42.17, s.Value.Float())

	// The factor changed on the device: the write uses the new one.
	require.NoError(t, srv.Set("sp_sf", -1))
	_, err = d.Write(ctx, "setpoint", bridge.Float(42.1))
	require.NoError(t, err)
	assert.Equal(t, uint64(421), raw())
	n := srv.RequestCount()
	_, err = d.Write(ctx, "setpoint", bridge.Float(42.17))
	require.ErrorIs(t, err, modbus.ErrNotRepresentable)
	assert.Contains(t, err.Error(), "scale factor sp_sf is -1")
	assert.Equal(t, uint64(421), raw())
	assert.Equal(t, n+1, srv.RequestCount(), "only the factor was read")

	require.NoError(t, srv.Set("sp_sf", -3))
	_, err = d.Write(ctx, "setpoint", bridge.Float(70))
	require.ErrorIs(t, err, bridge.ErrOutOfRange)
	assert.Contains(t, err.Error(), "uint16")
	_, err = d.Write(ctx, "setpoint", bridge.Float(101))
	require.ErrorIs(t, err, bridge.ErrOutOfRange, "max is checked before any request")

	require.NoError(t, srv.Set("sp_sf", math.MinInt16))
	_, err = d.Write(ctx, "setpoint", bridge.Float(1))
	require.ErrorIs(t, err, bridge.ErrOutOfRange)
	assert.Contains(t, err.Error(), "sp_sf is not implemented")
	assert.Equal(t, uint64(421), raw())
}

// TestDeviceScaleFactorAcrossRefusedGap: a device that refuses reads across
// unmapped registers, with a point 30 registers from its factor: the point
// can only be read with its factor, so it is Bad (Illegal Data Address),
// never read apart from it; the other points are read.
func TestDeviceScaleFactorAcrossRefusedGap(t *testing.T) {
	srv, err := modbustest.NewServer(&modbus.Profile{Name: "raw", Points: []modbus.Point{
		{Name: "w", Table: modbus.Holding, Address: 0, Type: modbus.Int16},
		{Name: "x", Table: modbus.Holding, Address: 10, Type: modbus.Uint16},
		{Name: "w_sf", Table: modbus.Holding, Address: 30, Type: modbus.Int16},
	}}, modbustest.WithRefusedGaps())
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	require.NoError(t, srv.Set("w", 5))
	require.NoError(t, srv.Set("w_sf", 2))
	require.NoError(t, srv.Set("x", 7))
	d, err := modbus.NewDevice(modbus.DeviceConfig{Name: "dev", Conn: modbus.ClientConfig{URL: srv.URL()}, Unit: 1,
		Points: []modbus.Point{
			{Name: "w", Table: modbus.Holding, Address: 0, Type: modbus.Int16, ScaleFactor: "w_sf"},
			{Name: "x", Table: modbus.Holding, Address: 10, Type: modbus.Uint16},
			{Name: "w_sf", Table: modbus.Holding, Address: 30, Type: modbus.Int16},
		}})
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	for cycle := 0; cycle < 3; cycle++ {
		got := pollMap(t, d)
		assert.Equal(t, bridge.Bad, got["w"].Quality, "cycle %d", cycle)
		assert.Equal(t, uint32(modbus.IllegalDataAddress), got["w"].Code)
		assert.Equal(t, uint64(7), must(got["x"].Value.Uint()))
		assert.Equal(t, int64(2), must(got["w_sf"].Value.Int()))
	}
	for _, r := range srv.Requests() {
		if r.Address == 0 {
			require.GreaterOrEqual(t, int(r.Quantity), 31, "w read without its factor")
		}
	}
}

// TestScaleFactorPointIsAlwaysFloat: a point with a scale factor is a
// Float under a factor of 0 as under -1, so that its kind does not flip
// with the factor (a Sparkplug rebirth, an InfluxDB field type conflict).
func TestScaleFactorPointIsAlwaysFloat(t *testing.T) {
	sp, dp := sfProfiles()
	srv, err := modbustest.NewServer(sp, modbustest.WithFilledGaps())
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	d, err := modbus.NewDevice(modbus.DeviceConfig{Name: "inv", Conn: modbus.ClientConfig{URL: srv.URL()}, Unit: 1, Profile: dp})
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	for _, c := range []struct {
		sf   int
		w    float64
		vAr  float64
		name string
	}{{0, 2301, 70000, "sf 0"}, {-1, 230.1, 7000, "sf -1"}, {2, 230100, 7000000, "sf 2"}} {
		require.NoError(t, srv.Set("w", 2301))
		require.NoError(t, srv.Set("var", 70000))
		require.NoError(t, srv.Set("w_sf", c.sf))
		got := pollMap(t, d)
		for name, want := range map[string]float64{"w": c.w, "var": c.vAr} {
			s := got[name]
			require.Equal(t, bridge.Good, s.Quality, "%s %s", c.name, name)
			require.Equal(t, bridge.KindFloat, s.Value.Kind(), "%s %s: %v", c.name, name, s.Value)
			assert.Equal(t, want, s.Value.Float(), "%s %s", c.name, name)
		}
		// The factor itself is an int16 point: an integer.
		assert.Equal(t, bridge.KindInt, got["w_sf"].Value.Kind())
	}
}
