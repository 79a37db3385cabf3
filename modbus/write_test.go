package modbus_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// writeProfile has a writable point of each kind, and some that are not.
func writeProfile() *modbus.Profile {
	return &modbus.Profile{Name: "writes", Points: []modbus.Point{
		{Name: "temp_sp", Table: modbus.Holding, Address: 0, Type: modbus.Float32, Scale: 0.5, Offset: 10, Unit: "°C",
			Writable: true, Min: modbus.Limit(10), Max: modbus.Limit(90)},
		{Name: "level", Table: modbus.Holding, Address: 2, Type: modbus.Int16, Writable: true},
		{Name: "count", Table: modbus.Holding, Address: 3, Type: modbus.Uint16, Writable: true},
		{Name: "mode", Table: modbus.Holding, Address: 4, Type: modbus.Uint16, Writable: true, Allowed: []float64{0, 1, 2}},
		{Name: "setpoint", Table: modbus.Holding, Address: 5, Type: modbus.Int16, Scale: 0.1, Unit: "°C",
			Writable: true, Min: modbus.Limit(0), Max: modbus.Limit(80)},
		{Name: "i32_hi", Table: modbus.Holding, Address: 10, Type: modbus.Int32, Writable: true},
		{Name: "i32_lo", Table: modbus.Holding, Address: 12, Type: modbus.Int32, WordOrder: modbus.LowFirst, Writable: true},
		{Name: "big", Table: modbus.Holding, Address: 14, Type: modbus.Uint64, Writable: true},
		{Name: "flags", Table: modbus.Holding, Address: 20, Type: modbus.Uint16},
		{Name: "flag2", Table: modbus.Holding, Address: 20, Type: modbus.Bool, Bit: modbus.BitOf(2), Writable: true},
		{Name: "flag5", Table: modbus.Holding, Address: 20, Type: modbus.Bool, Bit: modbus.BitOf(5), Writable: true},
		{Name: "next", Table: modbus.Holding, Address: 21, Type: modbus.Uint16},
		{Name: "locked", Table: modbus.Holding, Address: 30, Type: modbus.Uint16},
		{Name: "label", Table: modbus.Holding, Address: 40, Type: modbus.String, Length: 2, Writable: true},
		{Name: "relay", Table: modbus.Coil, Address: 0, Type: modbus.Bool, Writable: true, Unit: "on"},
		{Name: "voltage", Table: modbus.Input, Address: 0, Type: modbus.Float32},
		{Name: "door", Table: modbus.Discrete, Address: 0, Type: modbus.Bool},
	}}
}

func TestDeviceWrite(t *testing.T) {
	p := writeProfile()
	s := newSim(t, p)
	require.NoError(t, s.Set("flags", 0b1000_0001))
	d := newDevice(t, modbus.DeviceConfig{Name: "plc1", Conn: modbus.ClientConfig{URL: s.URL()}, Profile: p, Interval: time.Hour})
	t.Cleanup(func() { d.Close() })
	var _ bridge.Writer = d
	tests := []struct {
		point string
		v     bridge.Value
		want  bridge.Value // read back
		addr  uint16
		words []uint16 // the holding registers after the write
	}{
		// (42.5 - 10) / 0.5 = 65 = 0x42820000 as float32.
		{"temp_sp", bridge.Float(42.5), bridge.Float(42.5), 0, []uint16{0x4282, 0x0000}},
		{"temp_sp", bridge.Int(90), bridge.Float(90), 0, []uint16{0x4320, 0x0000}}, // 160
		{"level", bridge.Int(-2), bridge.Int(-2), 2, []uint16{0xFFFE}},
		{"level", bridge.Float(-32768), bridge.Int(-32768), 2, []uint16{0x8000}}, // an integral float is an integer
		{"count", bridge.Uint(65535), bridge.Uint(65535), 3, []uint16{0xFFFF}},
		{"mode", bridge.Int(2), bridge.Uint(2), 4, []uint16{2}},
		{"setpoint", bridge.Float(21.5), bridge.Float(21.5), 5, []uint16{215}},
		{"setpoint", bridge.Int(80), bridge.Float(80), 5, []uint16{800}},
		{"i32_hi", bridge.Int(-123456), bridge.Int(-123456), 10, []uint16{0xFFFE, 0x1DC0}},
		{"i32_lo", bridge.Int(-123456), bridge.Int(-123456), 12, []uint16{0x1DC0, 0xFFFE}},
		{"i32_lo", bridge.Int(0x12345678), bridge.Int(0x12345678), 12, []uint16{0x5678, 0x1234}},
		{"big", bridge.Uint(1<<63 + 5), bridge.Uint(1<<63 + 5), 14, []uint16{0x8000, 0, 0, 5}},
		{"flag2", bridge.Bool(true), bridge.Bool(true), 20, []uint16{0b1000_0101}},
		{"flag5", bridge.Int(1), bridge.Bool(true), 20, []uint16{0b1010_0101}},
		{"flag2", bridge.Bool(false), bridge.Bool(false), 20, []uint16{0b1010_0001}},
		{"label", bridge.String("ok"), bridge.String("ok"), 40, []uint16{'o'<<8 | 'k', 0}},
		{"relay", bridge.Bool(true), bridge.Bool(true), 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.point+"="+tt.v.String(), func(t *testing.T) {
			ctx := ctxT(t)
			got, err := d.Write(ctx, tt.point, tt.v)
			require.NoError(t, err)
			assert.Equal(t, "plc1", got.Source)
			assert.Equal(t, tt.point, got.Point)
			assert.Equal(t, bridge.Good, got.Quality)
			assert.False(t, got.Time.IsZero())
			assert.True(t, tt.want.Equal(got.Value), "read back %v (%s), want %v (%s)", got.Value, got.Value.Kind(), tt.want, tt.want.Kind())
			pt, _ := p.Point(tt.point)
			assert.Equal(t, pt.Unit, got.Unit)
			if tt.words != nil {
				regs, err := d.Client().ReadRegisters(ctx, 1, modbus.Holding, tt.addr, uint16(len(tt.words)))
				require.NoError(t, err)
				assert.Equal(t, tt.words, regs, "registers %#04x", regs)
			} else {
				v, err := s.Value(tt.point)
				require.NoError(t, err)
				assert.True(t, tt.want.Equal(v))
			}
		})
	}
}

// TestDeviceWriteRefusals: every refusal names the point and the rule,
// wraps the bridge sentinel, and sends nothing.
func TestDeviceWriteRefusals(t *testing.T) {
	p := writeProfile()
	s := newSim(t, p)
	d := newDevice(t, modbus.DeviceConfig{Name: "plc1", Conn: modbus.ClientConfig{URL: s.URL()}, Profile: p, Interval: time.Hour})
	t.Cleanup(func() { d.Close() })
	tests := []struct {
		point string
		v     bridge.Value
		is    error
		msg   string
	}{
		{"nope", bridge.Int(1), modbus.ErrUnknownPoint, `nope: device "plc1" has no such point`},
		{"locked", bridge.Int(1), bridge.ErrNotWritable, "locked: not writable (writes need writable: true in the point's configuration)"},
		{"voltage", bridge.Float(1), modbus.ErrReadOnly, "voltage: the input table is read-only in Modbus"},
		{"door", bridge.Bool(true), bridge.ErrNotWritable, "door: the discrete table is read-only in Modbus"},
		{"count", bridge.Int(70000), bridge.ErrOutOfRange, "count: 70000 is above the uint16 maximum 65535"},
		{"count", bridge.Int(-1), bridge.ErrOutOfRange, "count: -1 is below the uint16 minimum 0"},
		{"count", bridge.Float(1.5), bridge.ErrWrongType, "count: 1.5 is not an integer (the point is uint16)"},
		{"level", bridge.Float(21.5), bridge.ErrWrongType, "level: 21.5 is not an integer (the point is int16)"},
		{"level", bridge.Int(32768), bridge.ErrOutOfRange, "level: 32768 is above the int16 maximum 32767"},
		{"level", bridge.String("12"), bridge.ErrWrongType, "level: a string value for a int16 point"},
		{"level", bridge.Bool(true), bridge.ErrWrongType, "level: a bool value for a int16 point"},
		{"big", bridge.Int(-1), bridge.ErrOutOfRange, "big: -1 is below the uint64 minimum 0"},
		{"i32_hi", bridge.Uint(1 << 31), bridge.ErrOutOfRange, "i32_hi: 2147483648 is above the int32 maximum 2147483647"},
		{"temp_sp", bridge.Float(95), bridge.ErrOutOfRange, "temp_sp: 95 is above max 90"},
		{"temp_sp", bridge.Float(9.5), bridge.ErrOutOfRange, "temp_sp: 9.5 is below min 10"},
		{"temp_sp", bridge.Float(math.NaN()), bridge.ErrOutOfRange, "temp_sp: NaN is not a finite number"},
		{"setpoint", bridge.Float(95), bridge.ErrOutOfRange, "setpoint: 95 is above max 80"},
		{"setpoint", bridge.Float(21.55), modbus.ErrNotRepresentable,
			"setpoint: 21.55 is not representable by a int16 with scale 0.1 and offset 0 (nearest 21.5 or 21.6)"},
		{"mode", bridge.Int(3), bridge.ErrOutOfRange, "mode: 3 is not one of the allowed values [0 1 2]"},
		{"relay", bridge.Int(2), bridge.ErrWrongType, "relay: 2 is not a bool (want true, false, 1 or 0)"},
		{"relay", bridge.String("on"), bridge.ErrWrongType, "relay: a string value for a bool point"},
		{"flag2", bridge.Float(0.5), bridge.ErrWrongType, "flag2: 0.5 is not a bool (want true, false, 1 or 0)"},
		{"label", bridge.String("toolong"), bridge.ErrOutOfRange, "label: 7 bytes do not fit 2 registers (4 bytes)"},
		{"label", bridge.Int(1), bridge.ErrWrongType, "label: a int value for a string point"},
	}
	before := s.RequestCount()
	for _, tt := range tests {
		t.Run(tt.point+"="+tt.v.String(), func(t *testing.T) {
			got, err := d.Write(ctxT(t), tt.point, tt.v)
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.is)
			assert.True(t, bridge.IsRefusal(err), "not a refusal: %v", err)
			assert.False(t, modbus.IsRetriable(err))
			assert.EqualError(t, err, tt.msg)
			assert.Equal(t, bridge.Sample{}, got)
		})
	}
	assert.Equal(t, before, s.RequestCount(), "a refused write sent requests")
	// WritePoint applies the same rules.
	assert.ErrorIs(t, d.WritePoint(ctxT(t), "setpoint", 95), bridge.ErrOutOfRange)
	assert.ErrorIs(t, d.WritePoint(ctxT(t), "setpoint", struct{}{}), bridge.ErrWrongType)
	assert.Equal(t, before, s.RequestCount(), "a refused write sent requests")
}

// TestDeviceWriteDeviceErrors: what fails at the device is returned as it
// is, named, and is not a refusal.
func TestDeviceWriteDeviceErrors(t *testing.T) {
	p := writeProfile()
	t.Run("exception", func(t *testing.T) {
		s := newSim(t, p, modbustest.WithHook(modbustest.ExceptAt(modbus.Holding, 5, modbus.IllegalDataValue)))
		d := newDevice(t, modbus.DeviceConfig{Name: "plc1", Conn: modbus.ClientConfig{URL: s.URL()}, Profile: p})
		t.Cleanup(func() { d.Close() })
		_, err := d.Write(ctxT(t), "setpoint", bridge.Float(20))
		require.Error(t, err)
		assert.ErrorIs(t, err, modbus.ErrIllegalDataValue)
		assert.False(t, bridge.IsRefusal(err), "%v", err)
		assert.Regexp(t, `^modbus: write device "plc1" point "setpoint": write \S+ unit 0 holding 5: function 0x06: exception 3 \(illegal data value\)$`, err.Error())
		c, ok := modbus.ExceptionCodeOf(err)
		assert.True(t, ok)
		assert.Equal(t, modbus.IllegalDataValue, c)
	})
	t.Run("busy is retried", func(t *testing.T) {
		s := newSim(t, p, modbustest.WithHook(modbustest.First(2, modbustest.Except(modbus.ServerDeviceBusy))))
		d := newDevice(t, modbus.DeviceConfig{Name: "plc1", Conn: modbus.ClientConfig{URL: s.URL()}, Profile: p,
			BusyRetryDelay: time.Millisecond})
		t.Cleanup(func() { d.Close() })
		got, err := d.Write(ctxT(t), "setpoint", bridge.Float(20))
		require.NoError(t, err)
		assert.Equal(t, 20.0, got.Value.Float())
	})
	t.Run("timeout", func(t *testing.T) {
		s := newSim(t, p, modbustest.WithHook(modbustest.NoReply()))
		d := newDevice(t, modbus.DeviceConfig{Name: "plc1", Conn: modbus.ClientConfig{URL: s.URL(), Timeout: 50 * time.Millisecond}, Profile: p})
		t.Cleanup(func() { d.Close() })
		_, err := d.Write(ctxT(t), "setpoint", bridge.Float(20))
		require.Error(t, err)
		assert.ErrorIs(t, err, modbus.ErrTimeout)
		assert.False(t, bridge.IsRefusal(err), "%v", err)
		assert.Equal(t, uint64(1), s.RequestCount(), "a timed-out write is not retried")
	})
	t.Run("read-back fails", func(t *testing.T) {
		s := newSim(t, p, modbustest.WithHook(func(r modbustest.Request) modbustest.Fault {
			if !r.Write {
				return modbustest.Fault{Exception: modbus.ServerDeviceFailure}
			}
			return modbustest.Fault{}
		}))
		d := newDevice(t, modbus.DeviceConfig{Name: "plc1", Conn: modbus.ClientConfig{URL: s.URL()}, Profile: p})
		t.Cleanup(func() { d.Close() })
		_, err := d.Write(ctxT(t), "setpoint", bridge.Float(20))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "written, but reading it back failed")
		assert.ErrorIs(t, err, modbus.ErrServerDeviceFailure)
		v, err := s.Value("setpoint")
		require.NoError(t, err)
		assert.Equal(t, 20.0, v.Float())
	})
	t.Run("closed", func(t *testing.T) {
		s := newSim(t, p)
		d := newDevice(t, modbus.DeviceConfig{Name: "plc1", Conn: modbus.ClientConfig{URL: s.URL()}, Profile: p})
		require.NoError(t, d.Close())
		_, err := d.Write(ctxT(t), "setpoint", bridge.Float(20))
		assert.ErrorIs(t, err, modbus.ErrClosed)
	})
}

// TestDeviceWriteBitHoldsTheLink: the read and the write of a bit's
// read-modify-write are consecutive on the link, although the device polls
// the same register all the while. The read is slowed down so that a poll
// is waiting for the link when it answers: were the link released between
// the two requests, the poll would go first.
func TestDeviceWriteBitHoldsTheLink(t *testing.T) {
	p := writeProfile()
	p.Points = []modbus.Point{p.Points[8], p.Points[9], p.Points[10], p.Points[11]} // flags, flag2, flag5, next
	isRMWRead := func(r modbustest.Request) bool {
		return !r.Write && r.Table == modbus.Holding && r.Address == 20 && r.Quantity == 1
	}
	s := newSim(t, p, modbustest.WithHook(func(r modbustest.Request) modbustest.Fault {
		if isRMWRead(r) {
			return modbustest.Fault{Delay: 30 * time.Millisecond}
		}
		return modbustest.Fault{}
	}), modbustest.WithLogSize(10000))
	require.NoError(t, s.Set("flags", 0b1000_0001))
	d := newDevice(t, modbus.DeviceConfig{Name: "plc1", Conn: modbus.ClientConfig{URL: s.URL()}, Profile: p,
		Interval: 10 * time.Millisecond})
	require.Len(t, d.Plan().Requests, 1) // the poll reads 20-21: not the RMW's read
	rec := runDevice(t, d)
	waitFor(t, rec, point("flags"))
	ctx := ctxT(t)
	for i, name := range []string{"flag2", "flag5", "flag2", "flag5"} {
		_, err := d.Write(ctx, name, bridge.Bool(i < 2))
		require.NoError(t, err)
	}
	v, err := s.Value("flags")
	require.NoError(t, err)
	assert.True(t, bridge.Uint(0b1000_0001).Equal(v), v.String())
	log := s.Requests()
	writes := 0
	for k, r := range log {
		if !r.Write {
			continue
		}
		writes++
		require.Positive(t, k)
		assert.True(t, isRMWRead(log[k-1]), "request before the write #%d: %+v", r.Seq, log[k-1])
	}
	assert.Equal(t, 4, writes)
}

func TestPointValidateWrites(t *testing.T) {
	f := modbus.Limit
	tests := []struct {
		name string
		p    modbus.Point
		path string // "" for valid
		msg  string
	}{
		{"writable holding", modbus.Point{Table: modbus.Holding, Type: modbus.Int16, Writable: true, Min: f(-10), Max: f(10)}, "", ""},
		{"writable coil", modbus.Point{Table: modbus.Coil, Type: modbus.Bool, Writable: true}, "", ""},
		{"writable bit", modbus.Point{Table: modbus.Holding, Type: modbus.Bool, Bit: modbus.BitOf(3), Writable: true}, "", ""},
		{"scaled bounds", modbus.Point{Table: modbus.Holding, Type: modbus.Int16, Scale: 0.1, Writable: true, Min: f(-3276.8), Max: f(3276.7)}, "", ""},
		{"allowed", modbus.Point{Table: modbus.Holding, Type: modbus.Uint16, Writable: true, Allowed: []float64{0, 1, 5}}, "", ""},
		{"writable input", modbus.Point{Table: modbus.Input, Type: modbus.Int16, Writable: true}, "writable",
			"the input table is read-only in Modbus; only holding registers and coils can be written"},
		{"writable discrete", modbus.Point{Table: modbus.Discrete, Type: modbus.Bool, Writable: true}, "writable",
			"the discrete table is read-only in Modbus; only holding registers and coils can be written"},
		{"min without writable", modbus.Point{Table: modbus.Holding, Type: modbus.Int16, Min: f(0)}, "min",
			"only a writable point takes min, max or allowed (set writable: true, or drop min)"},
		{"allowed without writable", modbus.Point{Table: modbus.Holding, Type: modbus.Int16, Allowed: []float64{1}}, "allowed",
			"only a writable point takes min, max or allowed (set writable: true, or drop allowed)"},
		{"min above max", modbus.Point{Table: modbus.Holding, Type: modbus.Int16, Writable: true, Min: f(5), Max: f(1)}, "max", "1 is below min 5"},
		{"max beyond the type", modbus.Point{Table: modbus.Holding, Type: modbus.Uint16, Writable: true, Max: f(70000)}, "max",
			"70000 is outside 0 to 65535, what a uint16 holds"},
		{"min beyond the scaled type", modbus.Point{Table: modbus.Holding, Type: modbus.Int16, Scale: 0.1, Writable: true, Min: f(-4000)}, "min",
			"-4000 is outside -3276.8 to 3276.7, what a int16 with scale 0.1 and offset 0 holds"},
		{"min not finite", modbus.Point{Table: modbus.Holding, Type: modbus.Float32, Writable: true, Min: f(math.Inf(-1))}, "min", "-Inf is not a finite number"},
		{"bounds on a bool", modbus.Point{Table: modbus.Coil, Type: modbus.Bool, Writable: true, Max: f(1)}, "max", "a bool point takes no min, max or allowed"},
		{"bounds on a string", modbus.Point{Table: modbus.Holding, Type: modbus.String, Length: 2, Writable: true, Min: f(1)}, "min",
			"a string point takes no min, max or allowed"},
		{"allowed fraction", modbus.Point{Table: modbus.Holding, Type: modbus.Uint16, Writable: true, Allowed: []float64{1, 2.5}}, "allowed[1]",
			"2.5 is not an integer (the point is uint16)"},
		{"allowed beyond max", modbus.Point{Table: modbus.Holding, Type: modbus.Uint16, Writable: true, Max: f(10), Allowed: []float64{1, 20}}, "allowed[1]",
			"20 is above max 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.p.Name = "x"
			err := tt.p.Validate()
			if tt.path == "" {
				require.NoError(t, err)
				return
			}
			fes := bridge.FieldErrors(err)
			require.Len(t, fes, 1, "%v", err)
			assert.Equal(t, tt.path, fes[0].Path)
			assert.Equal(t, tt.msg, fes[0].Msg)
		})
	}
}

// TestLoadProfileWriteKeys: the YAML keys of the write rules.
func TestLoadProfileWriteKeys(t *testing.T) {
	p, err := modbus.LoadProfile(strings.NewReader(`
name: plc
points:
  - {name: setpoint, table: holding, address: 100, type: float32, writable: true, min: 0, max: 80}
  - {name: mode, table: holding, address: 102, type: uint16, writable: true, allowed: [0, 1, 2]}
  - {name: temp, table: input, address: 0, type: float32, writable: true}
`), "plc.yaml")
	require.Error(t, err)
	assert.Nil(t, p)
	assert.Contains(t, err.Error(), `plc.yaml:6: point 2 "temp": writable: the input table is read-only in Modbus`)
	p, err = modbus.LoadProfile(strings.NewReader(`
name: plc
points:
  - {name: setpoint, table: holding, address: 100, type: float32, writable: true, min: 0, max: 80}
  - {name: mode, table: holding, address: 102, type: uint16, writable: true, allowed: [0, 1, 2]}
`), "plc.yaml")
	require.NoError(t, err)
	sp, _ := p.Point("setpoint")
	assert.True(t, sp.Writable)
	assert.Equal(t, 0.0, *sp.Min)
	assert.Equal(t, 80.0, *sp.Max)
	mode, _ := p.Point("mode")
	assert.Equal(t, []float64{0, 1, 2}, mode.Allowed)
}
