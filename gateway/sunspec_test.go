package gateway

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// ssRecorder is a sink kind that keeps the latest sample of each point.
var (
	ssRecOnce sync.Once
	ssRecMu   sync.Mutex
	ssRec     = map[string]bridge.Sample{}
)

func ssLatest(name string) (bridge.Sample, bool) {
	ssRecMu.Lock()
	defer ssRecMu.Unlock()
	s, ok := ssRec[name]
	return s, ok
}

func registerSSRec() {
	ssRecMu.Lock()
	clear(ssRec) // a test sees its own samples only (also under -count)
	ssRecMu.Unlock()
	ssRecOnce.Do(func() {
		RegisterSink("sunspecrec", SinkKind{Build: func(any, SinkEnv) (bridge.Sink, error) {
			return bridge.SinkFunc(func(_ context.Context, b []bridge.Sample) error {
				ssRecMu.Lock()
				for _, s := range b {
					ssRec[s.Source+"/"+s.Point] = s
				}
				ssRecMu.Unlock()
				return nil
			}), nil
		}})
	})
}

// TestSunSpecGateway is the "done when" on our simulator: a device
// with sunspec: {base: auto} and no points written by hand is read by the
// gateway, every value exact (raw × 10^sf as the server holds them), scale
// factors right while they change, nothing unimplemented as a number; a
// scaled setpoint is written through the bridge.
func TestSunSpecGateway(t *testing.T) {
	registerSSRec()
	srv, err := modbustest.NewSunSpecServer(modbustest.SunSpecInverter(50000, 3))
	require.NoError(t, err)
	defer srv.Close()
	cfg, err := Parse("gw.yaml", []byte(fmt.Sprintf(`
devices:
  - name: ssinv1
    interval: 20ms
    modbus: {url: %s}
    sunspec: {base: auto, writable: [controls.WMaxLimPct]}
sinks:
  - sunspecrec: {}
`, srv.URL())))
	require.NoError(t, err)
	assert.Contains(t, cfg.Check().String(), "sunspec (base auto)")
	g, err := cfg.Build(BuildOptions{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()

	compareAll := func() { requireSunSpec(t, srv, "ssinv1") }
	require.Eventually(t, func() bool { _, ok := ssLatest("ssinv1/mppt.module[2].DCV"); return ok }, 10*time.Second, 10*time.Millisecond)
	compareAll()
	s, _ := ssLatest("ssinv1/inverter_three_phase.St.label")
	assert.Equal(t, "MPPT", s.Value.Str())

	// The factor changes with the value: the next samples follow exactly.
	require.NoError(t, srv.SetRaw(map[string]any{"inverter_three_phase.W": 851, "inverter_three_phase.W_SF": 1}))
	require.Eventually(t, func() bool {
		s, _ := ssLatest("ssinv1/inverter_three_phase.W")
		return s.Value.Float() == 8510
	}, 5*time.Second, 5*time.Millisecond)

	// A scaled setpoint through the bridge (commands take this path).
	res := g.Bridge().Write(ctx, bridge.WriteRequest{Source: "ssinv1", Point: "controls.WMaxLimPct", Value: bridge.Float(75.5), ID: "w1"})
	require.NoError(t, res.Err)
	assert.True(t, res.OK)
	assert.Equal(t, 75.5, res.Value.Float())
	raw, _ := srv.Raw("controls.WMaxLimPct")
	assert.Equal(t, bridge.Uint(755), raw)
	res = g.Bridge().Write(ctx, bridge.WriteRequest{Source: "ssinv1", Point: "controls.OutPFSet", Value: bridge.Float(0.9), ID: "w2"})
	require.ErrorIs(t, res.Err, bridge.ErrNotWritable)
	require.Eventually(t, func() bool {
		s, _ := ssLatest("ssinv1/controls.WMaxLimPct")
		return s.Value.Float() == 75.5
	}, 5*time.Second, 5*time.Millisecond)
	compareAll()

	// Metrics and status follow the device's poller.
	rec := httptest.NewRecorder()
	g.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	assert.Regexp(t, `modbus_requests_total\{device="ssinv1"\} [1-9]`, rec.Body.String())
	var found bool
	for _, ds := range g.Status().Devices {
		if ds.Name == "ssinv1" {
			found = true
			require.NotNil(t, ds.Modbus)
			assert.NotZero(t, ds.Modbus.Requests)
			assert.NotEmpty(t, ds.Modbus.Plan.Requests)
		}
	}
	assert.True(t, found)
}

func TestSunSpecConfigErrors(t *testing.T) {
	_, err := Parse("gw.yaml", []byte(`
devices:
  - name: inv1
    modbus: {url: "tcp://127.0.0.1:1502"}
    profile: eastron-sdm630
    sunspec:
      base: 70000
      models: [1, 0, 9999]
      not_implemented: hide
      writable: [inverter_three_phase.W]
  - name: inv2
    opcua: {endpoint: "opc.tcp://127.0.0.1:4840"}
    sunspec: {}
sinks:
  - stdout: {}
`))
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		`gw.yaml:5: devices[0].profile: a sunspec device takes its points from discovery`,
		`gw.yaml:7: devices[0].sunspec.base:`,
		`devices[0].sunspec.models[1]: 0 is not a model id`,
		`devices[0].sunspec.models[2]: model 9999 is not in the SunSpec model tables`,
		`devices[0].sunspec.not_implemented: "hide" (want omit or bad)`,
		`devices[0].sunspec.writable[0]: inverter_three_phase.W is read-only in its SunSpec model`,
		`devices[1].sunspec: sunspec is for modbus devices`,
	} {
		assert.Contains(t, msg, want)
	}
}

// TestSunSpecDiscover is gateway -discover: the chain and the points are
// printed, and the profile written pins them: loaded back, it is the same
// points, and a plain modbus device reads the same values from it.
func TestSunSpecDiscover(t *testing.T) {
	srv, err := modbustest.NewSunSpecServer(modbustest.SunSpecInverter(0, 2))
	require.NoError(t, err)
	defer srv.Close()
	cfg, err := Parse("gw.yaml", []byte(fmt.Sprintf(`
devices:
  - name: inv1
    modbus: {url: %s}
    sunspec: {base: auto, models: [103, 160]}
sinks:
  - stdout: {}
`, srv.URL())))
	require.NoError(t, err)
	var out bytes.Buffer
	prof, err := cfg.Discover(context.Background(), "inv1", &out)
	require.NoError(t, err)
	text := out.String()
	for _, want := range []string{"SunSpec base 0", "1      common", "103    inverter_three_phase   70       50",
		"160    mppt", "123    controls", "mppt.module[1].DCV", "× 10^mppt.DCV_SF"} {
		assert.Contains(t, text, want)
	}
	assert.NotContains(t, text, "controls.WMaxLimPct", "model 123 is not among the models")

	var yml bytes.Buffer
	require.NoError(t, WriteProfile(&yml, prof))
	assert.Contains(t, yml.String(), "scale_factor: inverter_three_phase.W_SF")
	assert.Contains(t, yml.String(), "not_implemented: min")
	back, err := modbus.LoadProfile(&yml, "inv1.yaml")
	require.NoError(t, err)
	require.Equal(t, prof.Points, back.Points)
	pinned, err := modbus.NewDevice(modbus.DeviceConfig{Name: "pinned", Conn: modbus.ClientConfig{URL: srv.URL()}, Unit: 1, Profile: back})
	require.NoError(t, err)
	defer pinned.Close()
	got := map[string]bridge.Sample{}
	require.NoError(t, pinned.PollOnce(context.Background(), bridge.EmitterFunc(func(_ context.Context, b []bridge.Sample) error {
		for _, s := range b {
			got[s.Point] = s
		}
		return nil
	})))
	assert.Equal(t, 230.1, got["inverter_three_phase.PhVphA"].Value.Float())
	assert.Equal(t, 380.2, got["mppt.module[1].DCV"].Value.Float())
	_, ok := got["inverter_three_phase.VA"]
	assert.False(t, ok, "not implemented")

	_, err = cfg.Discover(context.Background(), "nope", &out)
	require.ErrorContains(t, err, `no device "nope" (devices with a sunspec block: inv1)`)
	assert.True(t, strings.Contains(text, "points:"))
}

// compareSunSpec checks the latest sample of every point srv serves, from
// source: raw × 10^sf as the server holds them now (a model's fixed factor
// included), a string as it is, a Bad sample when the factor is not
// implemented, and no sample for a not-implemented value. It returns how
// many values it compared, or the first difference.
func compareSunSpec(srv *modbustest.SunSpecServer, source string) (int, error) {
	n := 0
	for _, pi := range srv.Points() {
		p := pi.Point
		raw, err := srv.Raw(p.Name)
		if err != nil {
			return n, err
		}
		q := p
		q.ScaleFactor, q.Scale = "", 0
		words, err := q.Encode(raw)
		if err != nil {
			return n, err
		}
		s, ok := ssLatest(source + "/" + p.Name)
		switch {
		case p.IsNotImplemented(words):
			if ok {
				return n, fmt.Errorf("%s is not implemented but read as %v", p.Name, s.Value)
			}
			continue
		case !ok:
			return n, fmt.Errorf("%s: no sample", p.Name)
		case p.Type == modbus.String:
			if s.Quality != bridge.Good || s.Value.Str() != raw.Str() {
				return n, fmt.Errorf("%s: %v (%s), want %q", p.Name, s.Value, s.Reason, raw.Str())
			}
			n++
			continue
		}
		want := raw.Float()
		if p.Scale != 0 {
			want *= p.Scale
		}
		if p.ScaleFactor != "" {
			e, err := srv.Raw(p.ScaleFactor)
			if err != nil {
				return n, err
			}
			exp, _ := e.Int()
			if exp == math.MinInt16 {
				if s.Quality != bridge.Bad {
					return n, fmt.Errorf("%s: its factor is not implemented, but it reads %v", p.Name, s.Value)
				}
				continue
			}
			if exp < 0 {
				want /= math.Pow10(int(-exp))
			} else {
				want *= math.Pow10(int(exp))
			}
		}
		if s.Quality != bridge.Good || s.Value.Float() != want || s.Unit != p.Unit {
			return n, fmt.Errorf("%s: %v %q (%s), want %v %q", p.Name, s.Value, s.Unit, s.Reason, want, p.Unit)
		}
		n++
	}
	return n, nil
}

// requireSunSpec waits until every value of srv reads right from source
// (a cycle's samples may reach the sink in more than one batch), and
// returns how many it compared.
func requireSunSpec(t *testing.T, srv *modbustest.SunSpecServer, source string) int {
	t.Helper()
	var last error
	ok := assert.Eventually(t, func() bool {
		_, last = compareSunSpec(srv, source)
		return last == nil
	}, 10*time.Second, 10*time.Millisecond)
	require.True(t, ok, "%v", last)
	n, err := compareSunSpec(srv, source)
	require.NoError(t, err)
	return n
}

// TestSunSpecGatewayFixture replays the pysunspec2 device fixtures (an
// inverter, an IEEE 1547 DER; modbus/sunspec/testdata) through the
// simulator and reads them with the gateway, sunspec: {base: auto}: every
// value compared.
func TestSunSpecGatewayFixture(t *testing.T) {
	registerSSRec()
	for k, file := range []string{"inverter_123.json", "device_1547.json"} {
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("..", "modbus", "sunspec", "testdata", file))
			require.NoError(t, err)
			dev, err := modbustest.SunSpecFixture(data, []uint16{40000, 0, 50001}[k])
			require.NoError(t, err)
			srv, err := modbustest.NewSunSpecServer(dev)
			require.NoError(t, err)
			defer srv.Close()
			source := fmt.Sprintf("fixture%d", k)
			cfg, err := Parse("gw.yaml", []byte(fmt.Sprintf(`
devices:
  - name: %s
    interval: 20ms
    modbus: {url: %s}
    sunspec: {base: auto}
sinks:
  - sunspecrec: {}
`, source, srv.URL())))
			require.NoError(t, err)
			g, err := cfg.Build(BuildOptions{})
			require.NoError(t, err)
			stop := runGateway(g)
			defer func() { require.NoError(t, stop()) }()
			require.Eventually(t, func() bool { _, ok := ssLatest(source + "/common.SN"); return ok }, 10*time.Second, 10*time.Millisecond)
			n := requireSunSpec(t, srv, source)
			t.Logf("%s: %d values compared", file, n)
			require.Greater(t, n, 50)
		})
	}
}

// TestSunSpecSharedLine: two SunSpec devices and a plain Modbus device
// behind one RTU-over-TCP gateway share its Bus: one connection, requests
// one at a time, all three read.
func TestSunSpecSharedLine(t *testing.T) {
	registerSSRec()
	srv, err := modbustest.NewSunSpecServer(modbustest.SunSpecInverter(40000, 1), modbustest.WithFraming(modbustest.RTU))
	require.NoError(t, err)
	defer srv.Close()
	cfg, err := Parse("gw.yaml", []byte(fmt.Sprintf(`
devices:
  - name: line-inv1
    interval: 20ms
    modbus: {url: %[1]s, unit: 1}
    sunspec: {base: auto, models: [103]}
  - name: line-inv2
    interval: 20ms
    modbus: {url: %[1]s, unit: 2}
    sunspec: {base: 40000, models: [160]}
  - name: line-plain
    interval: 20ms
    modbus: {url: %[1]s, unit: 3}
    points:
      - {name: marker, table: holding, address: 40000, type: uint32}
sinks:
  - sunspecrec: {}
`, srv.URL())))
	require.NoError(t, err)
	g, err := cfg.Build(BuildOptions{})
	require.NoError(t, err)
	stop := runGateway(g)
	defer func() { require.NoError(t, stop()) }()
	require.Eventually(t, func() bool {
		_, a := ssLatest("line-inv1/inverter_three_phase.PhVphA")
		_, b := ssLatest("line-inv2/mppt.module[0].DCV")
		_, c := ssLatest("line-plain/marker")
		return a && b && c
	}, 10*time.Second, 10*time.Millisecond)
	s, _ := ssLatest("line-inv1/inverter_three_phase.PhVphA")
	assert.Equal(t, 230.1, s.Value.Float())
	s, _ = ssLatest("line-plain/marker")
	assert.Equal(t, bridge.Uint(0x53756E53), s.Value)
	conns := map[uint64]bool{}
	for _, r := range srv.Requests() {
		conns[r.Conn] = true
	}
	assert.Len(t, conns, 1, "one link, shared")
}
