package sunspec_test

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
	"github.com/m2mbridge/m2mbridge/modbus/sunspec"
)

// collector keeps the latest sample of each point and every batch.
type collector struct {
	mu      sync.Mutex
	last    map[string]bridge.Sample
	batches [][]bridge.Sample
}

func (c *collector) Emit(_ context.Context, b []bridge.Sample) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		c.last = map[string]bridge.Sample{}
	}
	for _, s := range b {
		c.last[s.Point] = s
	}
	c.batches = append(c.batches, append([]bridge.Sample(nil), b...))
	return nil
}

func (c *collector) get(name string) (bridge.Sample, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.last[name]
	return s, ok
}

func (c *collector) cycles() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.batches)
}

func (c *collector) all() []bridge.Sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []bridge.Sample
	for _, b := range c.batches {
		out = append(out, b...)
	}
	return out
}

// runDevice runs a sunspec.Device on srv until the test ends.
func runDevice(t *testing.T, srv *modbustest.SunSpecServer, sc sunspec.Config) (*sunspec.Device, *collector) {
	t.Helper()
	d, err := sunspec.NewDevice(modbus.DeviceConfig{Name: "inv1", Conn: modbus.ClientConfig{URL: srv.URL()}, Unit: 1,
		Interval: 10 * time.Millisecond}, sc)
	require.NoError(t, err)
	col := &collector{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, col) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		d.Close()
	})
	return d, col
}

func TestDeviceReadsInverter(t *testing.T) {
	srv, _ := startInverter(t, inverter(40000, 4))
	_, col := runDevice(t, srv, sunspec.Config{})
	require.Eventually(t, func() bool { _, ok := col.get("mppt.module[3].DCV"); return ok }, 5*time.Second, 5*time.Millisecond)
	want := map[string]any{
		"common.Mn": "m2mbridge", "common.SN": "SN0001", "common.DA": uint64(1),
		"inverter_three_phase.A": 12.34, "inverter_three_phase.AphB": 4.12, "inverter_three_phase.PhVphA": 230.1,
		"inverter_three_phase.W": 8500.0, "inverter_three_phase.Hz": 50.02, "inverter_three_phase.WH": 1234567.0,
		"inverter_three_phase.TmpCab": 45.1, "inverter_three_phase.St": uint64(4), "inverter_three_phase.St.label": "MPPT",
		"inverter_three_phase.Evt1": uint64(5), "inverter_three_phase.Evt1.label": "GROUND_FAULT|AC_DISCONNECT",
		"mppt.module[0].DCA": 8.5, "mppt.module[3].DCA": 8.53, "mppt.module[2].DCV": 380.3, "mppt.module[1].IDStr": "MPPT 2",
		"mppt.module[3].DCWH": 123459.0, "mppt.module[0].DCSt.label": "MPPT", "mppt.N": uint64(4),
	}
	for name, v := range want {
		s, ok := col.get(name)
		require.True(t, ok, name)
		require.Equal(t, bridge.Good, s.Quality, name)
		exp, _ := bridge.ValueOf(v)
		assert.Equal(t, exp, s.Value, name)
	}
	s, _ := col.get("mppt.module[0].DCV")
	assert.Equal(t, "V", s.Unit)
	// Not implemented: never a sample with a number.
	for _, name := range []string{"inverter_three_phase.VA", "inverter_three_phase.PF", "inverter_three_phase.DCA",
		"inverter_three_phase.TmpSnk", "common.Opt", "inverter_three_phase.StVnd", "inverter_three_phase.EvtVnd1"} {
		_, ok := col.get(name)
		assert.False(t, ok, name)
	}
	for _, s := range col.all() {
		if s.Value.Kind() == bridge.KindFloat {
			require.False(t, math.IsNaN(s.Value.Float()), s.Point)
		}
	}
}

func TestDeviceNotImplementedBad(t *testing.T) {
	srv, _ := startInverter(t, inverter(0, 1))
	_, col := runDevice(t, srv, sunspec.Config{NotImplemented: "bad", Models: []uint16{103}})
	require.Eventually(t, func() bool { _, ok := col.get("inverter_three_phase.VA"); return ok }, 5*time.Second, 5*time.Millisecond)
	s, _ := col.get("inverter_three_phase.VA")
	assert.Equal(t, bridge.Bad, s.Quality)
	assert.Equal(t, "modbus: not implemented", s.Reason)
	assert.Equal(t, bridge.KindNone, s.Value.Kind())
	_, ok := col.get("mppt.module[0].DCA")
	assert.False(t, ok, "model 160 is not among the models")
	_, ok = col.get("common.SN")
	assert.True(t, ok, "the common model is always read")

	// A scale factor that is not implemented makes its points Bad.
	require.NoError(t, srv.SetRaw(map[string]any{"inverter_three_phase.A_SF": nil}))
	require.Eventually(t, func() bool {
		s, _ := col.get("inverter_three_phase.AphA")
		return s.Quality == bridge.Bad
	}, 5*time.Second, 5*time.Millisecond)
	s, _ = col.get("inverter_three_phase.AphA")
	assert.Contains(t, s.Reason, "inverter_three_phase.A_SF is not implemented")
}

// TestScaleFactorChangesNeverMix changes W and W_SF together (one engineering
// value, 1500 W, in two representations) before every request the server
// answers: a value read with the factor of another request would read 150
// or 15000. On the server side every request that reads W reads W_SF too.
func TestScaleFactorChangesNeverMix(t *testing.T) {
	dev := inverter(40000, 2)
	srv, _ := startInverter(t, dev)
	var flips atomic.Int64
	states := []map[string]any{
		{"inverter_three_phase.W": 1500, "inverter_three_phase.W_SF": 0, "mppt.module[1].DCW": 15, "mppt.DCW_SF": 2},
		{"inverter_three_phase.W": 15000, "inverter_three_phase.W_SF": -1, "mppt.module[1].DCW": 1500, "mppt.DCW_SF": 0},
		{"inverter_three_phase.W": 150, "inverter_three_phase.W_SF": 1, "mppt.module[1].DCW": 150, "mppt.DCW_SF": 1},
	}
	require.NoError(t, srv.SetRaw(states[0]))
	srv.SetHook(func(r modbustest.Request) modbustest.Fault {
		if err := srv.SetRaw(states[flips.Add(1)%3]); err != nil {
			panic(err)
		}
		return modbustest.Fault{}
	})
	_, col := runDevice(t, srv, sunspec.Config{Models: []uint16{103, 160}})
	require.Eventually(t, func() bool { return col.cycles() > 30 }, 10*time.Second, 5*time.Millisecond)
	n := 0
	for _, s := range col.all() {
		switch s.Point {
		case "inverter_three_phase.W", "mppt.module[1].DCW":
			n++
			require.Equal(t, bridge.Good, s.Quality)
			require.Equal(t, 1500.0, s.Value.Float(), "%s: value and factor from different responses", s.Point)
		}
	}
	require.Greater(t, n, 60)
	require.Greater(t, flips.Load(), int64(30))
	// Server side: W (and module 1's DCW) were only ever read together with
	// their factors.
	var w, wsf, dcw, dcwsf uint16
	for _, p := range srv.Points() {
		switch p.Point.Name {
		case "inverter_three_phase.W":
			w = p.Point.Address
		case "inverter_three_phase.W_SF":
			wsf = p.Point.Address
		case "mppt.module[1].DCW":
			dcw = p.Point.Address
		case "mppt.DCW_SF":
			dcwsf = p.Point.Address
		}
	}
	in := func(r modbustest.Request, a uint16) bool { return r.Address <= a && a < r.Address+r.Quantity }
	reads := 0
	for _, r := range srv.Requests() {
		if r.Write || r.Quantity == 0 {
			continue
		}
		if in(r, w) {
			reads++
			require.True(t, in(r, wsf), "request %d-%d reads W without W_SF", r.Address, r.Address+r.Quantity-1)
		}
		if in(r, dcw) {
			require.True(t, in(r, dcwsf), "request %d+%d reads module 1's DCW without DCW_SF", r.Address, r.Quantity)
		}
	}
	require.Greater(t, reads, 30)
}

func TestDeviceWriteScaledSetpoint(t *testing.T) {
	dev := inverter(40000, 1)
	dev.Models = append(dev.Models, modbustest.SunSpecModel{ID: 123, Values: map[string]any{
		"Conn": 1, "WMaxLimPct": 1000, "WMaxLimPct_SF": -1, "WMaxLim_Ena": 1, "OutPFSet": 950, "OutPFSet_SF": -3, "VArPct_SF": 0,
	}})
	srv, _ := startInverter(t, dev)
	d, col := runDevice(t, srv, sunspec.Config{Writable: []string{"controls.WMaxLimPct"}})
	require.Eventually(t, func() bool { _, ok := col.get("controls.WMaxLimPct"); return ok }, 5*time.Second, 5*time.Millisecond)
	s, _ := col.get("controls.WMaxLimPct")
	assert.Equal(t, 100.0, s.Value.Float())
	ctx := context.Background()

	got, err := d.Write(ctx, "controls.WMaxLimPct", bridge.Float(62.5))
	require.NoError(t, err)
	assert.Equal(t, 62.5, got.Value.Float())
	raw, err := srv.Raw("controls.WMaxLimPct")
	require.NoError(t, err)
	assert.Equal(t, bridge.Uint(625), raw, "raw = value / 10^-1")

	// The device changes its factor: the next write uses the new one.
	require.NoError(t, srv.SetRaw(map[string]any{"controls.WMaxLimPct_SF": -2}))
	_, err = d.Write(ctx, "controls.WMaxLimPct", bridge.Float(62.55))
	require.NoError(t, err)
	raw, _ = srv.Raw("controls.WMaxLimPct")
	assert.Equal(t, bridge.Uint(6255), raw)

	_, err = d.Write(ctx, "controls.WMaxLimPct", bridge.Float(700))
	require.ErrorIs(t, err, bridge.ErrOutOfRange)
	require.NoError(t, srv.SetRaw(map[string]any{"controls.WMaxLimPct_SF": nil}))
	_, err = d.Write(ctx, "controls.WMaxLimPct", bridge.Float(50))
	require.ErrorIs(t, err, bridge.ErrOutOfRange)
	assert.Contains(t, err.Error(), "controls.WMaxLimPct_SF is not implemented")
	raw, _ = srv.Raw("controls.WMaxLimPct")
	assert.Equal(t, bridge.Uint(6255), raw, "nothing written")

	// Not in writable: refused, nothing sent.
	_, err = d.Write(ctx, "controls.OutPFSet", bridge.Float(0.9))
	require.ErrorIs(t, err, bridge.ErrNotWritable)
	// Read-only in the model: a configuration error.
	err = sunspec.Config{Writable: []string{"inverter_three_phase.W"}}.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "read-only")
}

func TestDeviceRediscovers(t *testing.T) {
	srv, _ := startInverter(t, inverter(40000, 1))
	d, col := runDevice(t, srv, sunspec.Config{})
	require.Eventually(t, func() bool { _, ok := col.get("mppt.module[0].DCA"); return ok }, 5*time.Second, 5*time.Millisecond)
	first := d.Chain()
	// Another device answers at the same address: its serial number says so.
	require.NoError(t, srv.SetRaw(map[string]any{"common.SN": "SN0002"}))
	require.Eventually(t, func() bool { c := d.Chain(); return c != first && c.Serial == "SN0002" }, 5*time.Second, 5*time.Millisecond)

	// A read answered Illegal Data Address while the chain's headers stand:
	// the point is Bad, and Good again once answered, with no discovery.
	second := d.Chain()
	var w uint16
	for _, p := range second.Points {
		if p.Point.Name == "inverter_three_phase.W" {
			w = p.Point.Address
		}
	}
	var refuse atomic.Bool
	refuse.Store(true)
	srv.SetHook(func(r modbustest.Request) modbustest.Fault {
		if refuse.Load() && r.Address <= w && w < r.Address+r.Quantity {
			return modbustest.Fault{Exception: modbus.IllegalDataAddress}
		}
		return modbustest.Fault{}
	})
	require.Eventually(t, func() bool {
		s, _ := col.get("inverter_three_phase.W")
		return s.Quality == bridge.Bad && s.Code == uint32(modbus.IllegalDataAddress)
	}, 5*time.Second, 5*time.Millisecond)
	refuse.Store(false)
	require.Eventually(t, func() bool {
		s, _ := col.get("inverter_three_phase.W")
		return s.Quality == bridge.Good
	}, 5*time.Second, 5*time.Millisecond)
	assert.Same(t, second, d.Chain(), "a refused point is not a changed chain")
}

// TestRefusedPointDoesNotRediscover: a point the device refuses (Illegal
// Data Address) while its chain stands is reported Bad by modbus.Device's
// own learning; discovery is not run again (it once ran in a tight loop,
// hundreds of times a second), and the other points stay Good.
func TestRefusedPointDoesNotRediscover(t *testing.T) {
	srv, _ := startInverter(t, inverter(40000, 1))
	var tmp, model uint16
	for _, p := range srv.Points() {
		if p.Point.Name == "inverter_three_phase.TmpCab" {
			tmp = p.Point.Address
		}
	}
	for _, m := range srv.Models() {
		if m.ID == 103 {
			model = m.Address
		}
	}
	require.NotZero(t, tmp)
	// Every read covering TmpCab is refused but discovery's read of the
	// model's block.
	srv.SetHook(func(r modbustest.Request) modbustest.Fault {
		if r.Address != model && r.Address <= tmp && tmp < r.Address+r.Quantity {
			return modbustest.Fault{Exception: modbus.IllegalDataAddress}
		}
		return modbustest.Fault{}
	})
	var logs syncBuffer
	d, err := sunspec.NewDevice(modbus.DeviceConfig{Name: "inv1", Conn: modbus.ClientConfig{URL: srv.URL()}, Unit: 1,
		Interval: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, sunspec.Config{})
	require.NoError(t, err)
	col := &collector{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, col) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
		d.Close()
	}()
	// The headers were checked (a 2-register read of model 103's header
	// after discovery) and many cycles ran with TmpCab refused.
	headerChecks := func() int {
		n := 0
		for _, r := range srv.Requests() {
			if r.Address == model && r.Quantity == 2 {
				n++
			}
		}
		return n
	}
	require.Eventually(t, func() bool {
		s, _ := col.get("inverter_three_phase.TmpCab")
		return s.Quality == bridge.Bad && col.cycles() > 50 && headerChecks() >= 2
	}, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, 1, strings.Count(logs.String(), "sunspec: discovered"), "discoveries")
	s, _ := col.get("inverter_three_phase.TmpCab")
	assert.Equal(t, uint32(modbus.IllegalDataAddress), s.Code)
	for _, name := range []string{"inverter_three_phase.W", "inverter_three_phase.A", "common.SN", "mppt.module[0].DCV"} {
		s, ok := col.get(name)
		require.True(t, ok, name)
		assert.Equal(t, bridge.Good, s.Quality, name)
	}
}

func TestConfigValidate(t *testing.T) {
	err := sunspec.Config{Models: []uint16{0, 103, 9999}, NotImplemented: "hide", Writable: []string{"nodot"}}.Validate()
	require.Error(t, err)
	for _, want := range []string{"models[0]: 0 is not a model id", "models[2]: model 9999 is not in the SunSpec model tables",
		`not_implemented: "hide" (want omit or bad)`, `writable[0]: "nodot" is not <model>.<point>`} {
		assert.Contains(t, err.Error(), want)
	}
	var b sunspec.Base
	require.NoError(t, b.UnmarshalText([]byte("auto")))
	assert.False(t, b.Set)
	require.NoError(t, b.UnmarshalText([]byte("40000")))
	assert.Equal(t, sunspec.Base{Addr: 40000, Set: true}, b)
	require.Error(t, b.UnmarshalText([]byte("70000")))
	_, err = sunspec.NewDevice(modbus.DeviceConfig{Name: "x", Conn: modbus.ClientConfig{URL: "tcp://127.0.0.1:1"}, Unit: 1,
		Points: []modbus.Point{{Name: "p", Table: modbus.Holding, Type: modbus.Uint16}}}, sunspec.Config{})
	require.ErrorContains(t, err, "takes its points from discovery")
}

// syncBuffer is a bytes.Buffer safe for a logger and a test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDeviceLogsWhatIsLeftOut: what discovery leaves out (here an unknown
// model) is logged when the device starts, not only listed by -discover.
func TestDeviceLogsWhatIsLeftOut(t *testing.T) {
	dev := inverter(40000, 1)
	dev.UnknownAt, dev.UnknownID, dev.UnknownLength = 2, 64999, 7
	srv, err := modbustest.NewSunSpecServer(dev)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	var logs syncBuffer
	d, err := sunspec.NewDevice(modbus.DeviceConfig{Name: "inv1", Conn: modbus.ClientConfig{URL: srv.URL()}, Unit: 1,
		Interval: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, sunspec.Config{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, &collector{}) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
		d.Close()
	}()
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "sunspec: left out") }, 10*time.Second, 5*time.Millisecond)
	assert.Contains(t, logs.String(), "model 64999 at 40070 (length 7): unknown model id")
}

// TestDeviceHonoursMaxRegisters: with limits.max_registers 40, the MPPT
// modules far from their model's scale factors cannot be read with them;
// they are left out and listed in Chain.Skipped, and the device polls the
// rest (it once built no device at all: modbus.NewDevice refused the
// profile).
func TestDeviceHonoursMaxRegisters(t *testing.T) {
	srv, _ := startInverter(t, inverter(40000, 4))
	d, err := sunspec.NewDevice(modbus.DeviceConfig{Name: "inv1", Conn: modbus.ClientConfig{URL: srv.URL()}, Unit: 1,
		Interval: 10 * time.Millisecond, Limits: modbus.Limits{MaxRegisters: 40}}, sunspec.Config{})
	require.NoError(t, err)
	col := &collector{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, col) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
		d.Close()
	}()
	require.Eventually(t, func() bool {
		s, ok := col.get("mppt.module[0].DCA")
		return ok && s.Quality == bridge.Good
	}, 5*time.Second, 5*time.Millisecond)
	s, _ := col.get("mppt.module[0].DCA")
	assert.Equal(t, 8.5, s.Value.Float())
	s, _ = col.get("inverter_three_phase.W")
	assert.Equal(t, bridge.Good, s.Quality)
	chain := d.Chain()
	require.NotNil(t, chain)
	names := map[string]bool{}
	for _, p := range chain.Points {
		names[p.Point.Name] = true
	}
	assert.False(t, names["mppt.module[3].DCA"], "module 3's DCA is more than 40 registers from DCA_SF")
	assert.True(t, names["mppt.module[3].IDStr"], "an unscaled point is kept")
	assert.Contains(t, strings.Join(chain.Skipped, "\n"), "mppt.module[3].DCA: ")
	assert.Contains(t, strings.Join(chain.Skipped, "\n"), "more than one request reads (40)")
	_, ok := col.get("mppt.module[3].DCA")
	assert.False(t, ok)
	// No request of the device read more than 40 registers.
	for _, r := range srv.Requests() {
		require.LessOrEqual(t, r.Quantity, uint16(40), "request at %d", r.Address)
	}
	assert.Equal(t, uint16(40), chain.Profile("x").Limits.MaxRegisters)
}

// TestDiscoverHonoursForbidden: a point in a forbidden range is left out
// and never read, discovery included.
func TestDiscoverHonoursForbidden(t *testing.T) {
	srv, c := startInverter(t, inverter(40000, 1))
	var w uint16
	for _, p := range srv.Points() {
		if p.Point.Name == "inverter_three_phase.W" {
			w = p.Point.Address
		}
	}
	lim := modbus.Limits{Forbidden: []modbus.AddressRange{{Table: modbus.Holding, First: w, Last: w}}}
	chain, err := sunspec.Discover(context.Background(), c, 1, sunspec.Options{Limits: lim})
	require.NoError(t, err)
	for _, p := range chain.Points {
		require.NotEqual(t, "inverter_three_phase.W", p.Point.Name)
	}
	assert.Contains(t, strings.Join(chain.Skipped, "\n"), "inverter_three_phase.W: registers")
	for _, r := range srv.Requests() {
		require.False(t, r.Address <= w && w < r.Address+r.Quantity, "request %d+%d reads the forbidden register", r.Address, r.Quantity)
	}
	p := chain.Profile("x")
	_, err = modbus.NewDevice(modbus.DeviceConfig{Name: "x", Conn: modbus.ClientConfig{URL: srv.URL()}, Unit: 1, Profile: p})
	require.NoError(t, err)
}

// TestDeviceCloseStopsRun: Close during a discovery ends Run, and the
// modbus.Device that discovery would have built is closed (no connection
// is left to the device); a Run after Close returns ErrClosed.
func TestDeviceCloseStopsRun(t *testing.T) {
	srv, _ := startInverter(t, inverter(40000, 1))
	var blocks atomic.Int64
	srv.SetHook(func(r modbustest.Request) modbustest.Fault {
		if r.Quantity > 2 { // discovery's block reads: slow
			blocks.Add(1)
			return modbustest.Fault{Delay: 100 * time.Millisecond}
		}
		return modbustest.Fault{}
	})
	d, err := sunspec.NewDevice(modbus.DeviceConfig{Name: "inv1", Conn: modbus.ClientConfig{URL: srv.URL()}, Unit: 1,
		Interval: 10 * time.Millisecond}, sunspec.Config{})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background(), &collector{}) }()
	require.Eventually(t, func() bool { return blocks.Load() > 0 }, 5*time.Second, time.Millisecond)
	require.NoError(t, d.Close())
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	require.Eventually(t, func() bool { return srv.Connections() == 0 }, 5*time.Second, 5*time.Millisecond)
	require.ErrorIs(t, d.Run(context.Background(), &collector{}), modbus.ErrClosed)

	// Close while discovery backs off (nothing answers the marker).
	srv.SetHook(func(modbustest.Request) modbustest.Fault {
		return modbustest.Fault{Exception: modbus.IllegalDataAddress}
	})
	d, err = sunspec.NewDevice(modbus.DeviceConfig{Name: "inv2", Conn: modbus.ClientConfig{URL: srv.URL()}, Unit: 1}, sunspec.Config{})
	require.NoError(t, err)
	go func() { done <- d.Run(context.Background(), &collector{}) }()
	require.Eventually(t, func() bool { return !d.Health().Up && strings.Contains(d.Health().Reason, "no SunSpec marker") }, 5*time.Second, time.Millisecond)
	require.NoError(t, d.Close())
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Close")
	}
}

// TestBadEnumHasBadLabel: when an enum point turns Bad, its .label turns
// Bad with it (same reason and code) instead of keeping its last symbol.
func TestBadEnumHasBadLabel(t *testing.T) {
	srv, _ := startInverter(t, inverter(40000, 1))
	_, col := runDevice(t, srv, sunspec.Config{})
	require.Eventually(t, func() bool {
		s, ok := col.get("inverter_three_phase.St.label")
		return ok && s.Quality == bridge.Good
	}, 5*time.Second, 5*time.Millisecond)
	var st, model uint16
	for _, p := range srv.Points() {
		if p.Point.Name == "inverter_three_phase.St" {
			st = p.Point.Address
		}
	}
	for _, m := range srv.Models() {
		if m.ID == 103 {
			model = m.Address
		}
	}
	srv.SetHook(func(r modbustest.Request) modbustest.Fault {
		if r.Address != model && r.Address <= st && st < r.Address+r.Quantity {
			return modbustest.Fault{Exception: modbus.IllegalDataAddress}
		}
		return modbustest.Fault{}
	})
	require.Eventually(t, func() bool {
		s, _ := col.get("inverter_three_phase.St")
		return s.Quality == bridge.Bad
	}, 5*time.Second, 5*time.Millisecond)
	// The batch with the Bad value carries the Bad label.
	col.mu.Lock()
	defer col.mu.Unlock()
	for _, b := range col.batches {
		var v, l *bridge.Sample
		for k := range b {
			switch b[k].Point {
			case "inverter_three_phase.St":
				v = &b[k]
			case "inverter_three_phase.St.label":
				l = &b[k]
			}
		}
		if v != nil && v.Quality == bridge.Bad {
			require.NotNil(t, l, "a Bad St without its label")
			assert.Equal(t, bridge.Bad, l.Quality)
			assert.Equal(t, v.Reason, l.Reason)
			assert.Equal(t, uint32(modbus.IllegalDataAddress), l.Code)
			assert.Equal(t, bridge.KindNone, l.Value.Kind())
			return
		}
	}
	t.Fatal("no Bad St sample")
}
