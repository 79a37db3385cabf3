package modbus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/bridge/bridgetest"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// TestBusKeepsFrameSilence: two units behind one RTU-over-TCP gateway at
// 1200 baud 8E1, where 3.5 characters last 32 ms. Polling as fast as they
// can, their requests reach the gateway one at a time and never less than
// that silence apart (a request arrives before its answer, and the next
// may leave only a silence after that answer) — also when the gateway
// drops the connection every third request and the link is re-made (the
// upstream client keeps the silence only within one connection).
func TestBusKeepsFrameSilence(t *testing.T) {
	for _, drops := range []bool{false, true} {
		name := "steady"
		if drops {
			name = "reconnecting"
		}
		t.Run(name, func(t *testing.T) { testBusSilence(t, drops) })
	}
}

func testBusSilence(t *testing.T, drops bool) {
	p := &modbus.Profile{Name: "one", Points: []modbus.Point{{Name: "v", Table: modbus.Holding, Address: 0, Type: modbus.Uint16}}}
	opts := []modbustest.Option{modbustest.WithFraming(modbustest.RTU), modbustest.WithUnits(1, 2)}
	if drops {
		opts = append(opts, modbustest.WithHook(func(r modbustest.Request) modbustest.Fault {
			return modbustest.Fault{Drop: r.Seq%3 == 0}
		}))
	}
	s := newSim(t, p, opts...)
	url := s.URL() + "?speed=1200&parity=even"
	ep, err := modbus.ParseURL(url)
	require.NoError(t, err)
	silence := ep.FrameSilence()
	require.Equal(t, 11*time.Second/1200*7/2, silence)
	conn := modbus.ClientConfig{URL: url}
	devs, buses, err := modbus.NewDevices(
		modbus.DeviceConfig{Name: "a", Conn: conn, Unit: 1, Profile: p, Interval: 10 * time.Millisecond},
		modbus.DeviceConfig{Name: "b", Conn: conn, Unit: 2, Profile: p, Interval: 10 * time.Millisecond},
	)
	require.NoError(t, err)
	require.Len(t, buses, 1)
	t.Cleanup(func() { buses[0].Close() })
	recA, recB := runDevice(t, devs[0]), runDevice(t, devs[1])
	require.Eventually(t, func() bool { return s.RequestCount() >= 12 }, 10*time.Second, time.Millisecond)
	reqs := s.Requests()
	units := map[uint8]int{}
	for i, r := range reqs {
		units[r.Unit]++
		if i > 0 {
			gap := r.Time.Sub(reqs[i-1].Time)
			assert.GreaterOrEqual(t, gap, silence, "request %d came %v after the one before", i, gap)
		}
	}
	assert.NotZero(t, units[1], "unit 1 polled")
	assert.NotZero(t, units[2], "unit 2 polled")
	if drops {
		assert.GreaterOrEqual(t, buses[0].Stats().Connects, uint64(3))
		return
	}
	for _, rec := range []*bridgetest.Recorder{recA, recB} {
		for _, smp := range rec.Samples() {
			assert.Equal(t, bridge.Good, smp.Quality, "%s %s: %s", smp.Source, smp.Point, smp.Reason)
		}
	}
}

// TestDeviceClosed: a closed device, or one whose Bus was closed, reports
// ErrClosed from Run, PollOnce and WritePoint instead of polling on and
// emitting Bad samples for a link it can no longer use.
func TestDeviceClosed(t *testing.T) {
	p := testProfile()
	s := newSim(t, p)
	d := newDevice(t, modbus.DeviceConfig{Conn: modbus.ClientConfig{URL: s.URL()}, Profile: p})
	require.NoError(t, d.Close())
	require.NoError(t, d.Close(), "idempotent")
	rec := bridgetest.NewRecorder()
	assert.ErrorIs(t, d.Run(ctxT(t), rec), modbus.ErrClosed)
	assert.ErrorIs(t, d.PollOnce(ctxT(t), rec), modbus.ErrClosed)
	assert.ErrorIs(t, d.WritePoint(ctxT(t), "setpoint", 1), modbus.ErrClosed)
	assert.Empty(t, rec.Samples())

	// The Bus closes while its devices poll: Run returns ErrClosed and the
	// samples it emitted are all Good.
	rs := newSim(t, p, modbustest.WithFraming(modbustest.RTU))
	bus, err := modbus.NewBus(modbus.ClientConfig{URL: rs.URL()})
	require.NoError(t, err)
	bd := newDevice(t, modbus.DeviceConfig{Bus: bus, Unit: 1, Profile: p, Interval: 10 * time.Millisecond})
	rec = bridgetest.NewRecorder()
	done := make(chan error, 1)
	go func() { done <- bd.Run(context.Background(), rec) }()
	require.Eventually(t, func() bool { return bd.Stats().Cycles >= 3 }, 10*time.Second, time.Millisecond)
	require.NoError(t, bus.Close())
	select {
	case err := <-done:
		assert.ErrorIs(t, err, modbus.ErrClosed)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its Bus closed")
	}
	for _, smp := range rec.Samples() {
		assert.Equal(t, bridge.Good, smp.Quality, "%s: %s", smp.Point, smp.Reason)
	}
	assert.ErrorIs(t, bd.PollOnce(ctxT(t), rec), modbus.ErrClosed)
}

// TestOpErrorSaysBackoff: an OpError whose cause wraps an exception (a
// backoff after one) says so, and still matches the exception.
func TestOpErrorSaysBackoff(t *testing.T) {
	ex := &modbus.ExceptionError{Unit: 2, Function: 3, Code: modbus.GatewayTargetDeviceFailedToRespond}
	err := &modbus.OpError{Op: "read", Device: "rtuovertcp://gw:4001", Unit: 2, Table: modbus.Holding, Address: 100, Quantity: 4,
		Err: fmt.Errorf("%w: unit 2 did not answer (2 times): %w", modbus.ErrBackoff, ex)}
	assert.Equal(t, "modbus: read rtuovertcp://gw:4001 unit 2 holding 100+4: backing off after failure: unit 2 did not answer (2 times): "+
		"modbus: unit 2 function 0x03: exception 11 (gateway target device failed to respond)", err.Error())
	assert.ErrorIs(t, err, modbus.ErrBackoff)
	assert.ErrorIs(t, err, modbus.ErrGatewayTargetDeviceFailedToRespond)
	direct := &modbus.OpError{Op: "read", Device: "tcp://d:502", Unit: 2, Table: modbus.Holding, Address: 100, Quantity: 1, Err: ex}
	assert.Equal(t, "modbus: read tcp://d:502 unit 2 holding 100: function 0x03: exception 11 (gateway target device failed to respond)", direct.Error())
}

// TestNewDevicesRefusesMixedFraming: rtu and ascii on one serial device are
// refused, naming the device and both framings, not made two links.
func TestNewDevicesRefusesMixedFraming(t *testing.T) {
	p := &modbus.Profile{Name: "p", Points: []modbus.Point{{Name: "v", Table: modbus.Holding, Type: modbus.Uint16}}}
	_, _, err := modbus.NewDevices(
		modbus.DeviceConfig{Name: "a", Conn: modbus.ClientConfig{URL: "rtu:///dev/ttyM2MB0"}, Unit: 1, Profile: p},
		modbus.DeviceConfig{Name: "b", Conn: modbus.ClientConfig{URL: "rtu:///dev/ttyM2MB0"}, Unit: 2, Profile: p},
		modbus.DeviceConfig{Name: "c", Conn: modbus.ClientConfig{URL: "ascii:///dev/ttyM2MB0"}, Unit: 3, Profile: p},
	)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "[2].modbus.url: ascii framing differs from rtu of device [0] on the same serial device /dev/ttyM2MB0")
	devs, buses, err := modbus.NewDevices(
		modbus.DeviceConfig{Name: "a", Conn: modbus.ClientConfig{URL: "rtu:///dev/ttyM2MB0"}, Unit: 1, Profile: p},
		modbus.DeviceConfig{Name: "c", Conn: modbus.ClientConfig{URL: "ascii:///dev/ttyM2MB1"}, Unit: 3, Profile: p},
	)
	require.NoError(t, err)
	assert.Len(t, devs, 2)
	assert.Empty(t, buses)
}
