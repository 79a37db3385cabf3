package gateway

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

var (
	asciiRecOnce sync.Once
	asciiRecMu   sync.Mutex
	asciiRec     = map[string]bridge.Sample{}
)

func asciiLatest(name string) (bridge.Sample, bool) {
	asciiRecMu.Lock()
	defer asciiRecMu.Unlock()
	s, ok := asciiRec[name]
	return s, ok
}

// TestASCIIDeviceOnPTY is issue 14's "an ASCII device on a pty is polled
// and written": the gateway polls a Modbus ASCII device (modbustest's
// ASCII server on a pseudo-terminal) from its configuration file, every
// value exact, and a write through the bridge lands and is read back.
func TestASCIIDeviceOnPTY(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("modbustest.OpenPTY is Linux only")
	}
	asciiRecOnce.Do(func() {
		RegisterSink("asciirec", SinkKind{Build: func(any, SinkEnv) (bridge.Sink, error) {
			return bridge.SinkFunc(func(_ context.Context, b []bridge.Sample) error {
				asciiRecMu.Lock()
				for _, s := range b {
					asciiRec[s.Source+"/"+s.Point] = s
				}
				asciiRecMu.Unlock()
				return nil
			}), nil
		}})
	})
	asciiRecMu.Lock()
	clear(asciiRec) // samples of an earlier run (-count)
	asciiRecMu.Unlock()
	p := &modbus.Profile{Name: "flow", Points: []modbus.Point{
		{Name: "flow", Table: modbus.Input, Address: 0, Type: modbus.Float32, Unit: "m3/h"},
		{Name: "total", Table: modbus.Input, Address: 2, Type: modbus.Uint32, Scale: 0.1, Unit: "m3"},
		{Name: "setpoint", Table: modbus.Holding, Address: 10, Type: modbus.Int16, Scale: 0.1, Writable: true},
	}}
	m, path, closePTY, err := modbustest.OpenPTY()
	require.NoError(t, err)
	srv, err := modbustest.NewASCIIServer(p, m, modbustest.WithUnits(17))
	require.NoError(t, err)
	defer func() { srv.Close(); closePTY() }()
	require.NoError(t, srv.Set("flow", 12.25))
	require.NoError(t, srv.Set("total", 98765.4))
	require.NoError(t, srv.Set("setpoint", 20.5))

	// A pseudo-terminal takes no parity: 8N1 instead of ASCII's 7E1.
	cfg, err := Parse("gw.yaml", []byte(fmt.Sprintf(`
devices:
  - name: flow1
    interval: 20ms
    modbus: {url: "ascii://%s", unit: 17, speed: 9600, data_bits: 8, parity: none, stop_bits: 1, inter_char_timeout: 200ms}
    points:
      - {name: flow, table: input, address: 0, type: float32, unit: m3/h}
      - {name: total, table: input, address: 2, type: uint32, scale: 0.1, unit: m3}
      - {name: setpoint, table: holding, address: 10, type: int16, scale: 0.1, writable: true, min: 0, max: 80}
sinks:
  - asciirec: {}
`, path)))
	require.NoError(t, err)
	assert.Contains(t, cfg.Check().String(), "ascii://")
	g, err := cfg.Build(BuildOptions{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	require.Eventually(t, func() bool {
		_, a := asciiLatest("flow1/flow")
		_, b := asciiLatest("flow1/setpoint")
		return a && b
	}, 10*time.Second, 10*time.Millisecond)
	for name, want := range map[string]float64{"flow": 12.25, "total": 98765.4, "setpoint": 20.5} {
		s, _ := asciiLatest("flow1/" + name)
		assert.Equal(t, bridge.Good, s.Quality, "%s: %s", name, s.Reason)
		assert.InDelta(t, want, s.Value.Float(), 1e-9, name)
	}

	res := g.Bridge().Write(ctx, bridge.WriteRequest{Source: "flow1", Point: "setpoint", Value: bridge.Float(42.5), ID: "a1"})
	require.NoError(t, res.Err)
	assert.True(t, res.OK)
	assert.Equal(t, 42.5, res.Value.Float())
	v, err := srv.Value("setpoint")
	require.NoError(t, err)
	assert.InDelta(t, 42.5, v.Float(), 1e-9)
	res = g.Bridge().Write(ctx, bridge.WriteRequest{Source: "flow1", Point: "setpoint", Value: bridge.Float(95), ID: "a2"})
	require.ErrorIs(t, res.Err, bridge.ErrOutOfRange)
	require.Eventually(t, func() bool {
		s, _ := asciiLatest("flow1/setpoint")
		return s.Value.Float() == 42.5
	}, 5*time.Second, 5*time.Millisecond)
	for _, r := range srv.Requests() {
		assert.Equal(t, uint8(17), r.Unit)
	}
}

// TestASCIIConfigErrors: the ASCII settings are checked by the modbus
// package and reported at their line.
func TestASCIIConfigErrors(t *testing.T) {
	_, err := Parse("gw.yaml", []byte(`
devices:
  - name: flow1
    modbus:
      url: "ascii:///dev/ttyUSB1"
      unit: 1
      parity: none
      stop_bits: 1
      inter_char_timeout: 2m
    points:
      - {name: flow, table: input, address: 0, type: float32}
  - name: meter2
    modbus: {url: "rtu:///dev/ttyUSB2", unit: 0, inter_char_timeout: 1s}
    points:
      - {name: v, table: input, address: 0, type: float32}
sinks:
  - stdout: {}
`))
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, "gw.yaml:8: devices[0].modbus.stop_bits: 1 with 7 data bits and no parity")
	assert.Contains(t, msg, "gw.yaml:9: devices[0].modbus.inter_char_timeout: 2m0s is outside 1ms to 1m0s")
	assert.Contains(t, msg, "devices[1].modbus.inter_char_timeout: applies to ascii and asciiovertcp only, not rtu")
	assert.Contains(t, msg, "devices[1].modbus.unit: 0 is the broadcast address on an RTU link")
}
