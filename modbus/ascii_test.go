package modbus_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

func TestParseASCIIURL(t *testing.T) {
	for in, want := range map[string]modbus.Endpoint{
		"ascii:///dev/ttyUSB0":                                   {Scheme: "ascii", Address: "/dev/ttyUSB0", Speed: 19200, Parity: "even", DataBits: 7, StopBits: 1},
		"ascii:///dev/ttyUSB0?speed=9600&parity=odd":             {Scheme: "ascii", Address: "/dev/ttyUSB0", Speed: 9600, Parity: "odd", DataBits: 7, StopBits: 1},
		"ascii://COM4?parity=none":                               {Scheme: "ascii", Address: "COM4", Speed: 19200, Parity: "none", DataBits: 7, StopBits: 2},
		"ascii:///dev/pts/3?data_bits=8&parity=none&stop_bits=1": {Scheme: "ascii", Address: "/dev/pts/3", Speed: 19200, Parity: "none", DataBits: 8, StopBits: 1},
		"asciiovertcp://gw:4001?speed=9600":                      {Scheme: "asciiovertcp", Address: "gw:4001", Speed: 9600, Parity: "even", DataBits: 7, StopBits: 1},
		"ASCIIoverTCP://gw":                                      {Scheme: "asciiovertcp", Address: "gw:502", Speed: 19200, Parity: "even", DataBits: 7, StopBits: 1},
	} {
		got, err := modbus.ParseURL(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
		assert.True(t, got.ASCIIFramed() && got.SerialFramed() && !got.RTUFramed(), in)
		assert.Zero(t, got.FrameSilence(), "ASCII frames are delimited by characters, not silence")
	}
	ep, err := modbus.ParseURL("ascii:///dev/x?speed=9600")
	require.NoError(t, err)
	assert.Equal(t, "ascii:///dev/x?speed=9600&parity=even&data_bits=7&stop_bits=1", ep.String())
	for in, want := range map[string]string{
		"ascii://":                               "no serial device (want ascii:///dev/ttyUSB0)",
		"asciiovertcp://":                        "no host",
		"asciiovertcp://u:p@gw":                  "user information",
		"ascii:///dev/x?data_bits=6":             "data_bits: 6 is too few for ASCII framing",
		"ascii:///dev/x?parity=none&stop_bits=1": "stop_bits: 1 with 7 data bits and no parity",
		"ascii:///dev/x?stop_bits=2":             "stop_bits: 2 with 7 data bits and even parity",
		"asciioverudp://gw":                      "unknown scheme",
	} {
		_, err := modbus.ParseURL(in)
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), want, in)
	}
}

func TestASCIIClientConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  modbus.ClientConfig
		path string
		msg  string
	}{
		{"7N1", modbus.ClientConfig{URL: "ascii:///dev/ttyUSB0", Parity: modbus.ParityNone, StopBits: 1}, "stop_bits", "10 bits, so 7N2"},
		{"7E2", modbus.ClientConfig{URL: "ascii:///dev/ttyUSB0", StopBits: 2}, "stop_bits", "7E1 or 7O1"},
		{"6 data bits", modbus.ClientConfig{URL: "ascii:///dev/ttyUSB0", DataBits: 6}, "data_bits", "7 (or 8)"},
		{"format in the url", modbus.ClientConfig{URL: "asciiovertcp://gw:4001?data_bits=7&parity=none&stop_bits=1"}, "stop_bits", "7N2"},
		{"inter-char timeout on rtu", modbus.ClientConfig{URL: "rtu:///dev/ttyUSB0", InterCharTimeout: time.Second}, "inter_char_timeout", "ascii and asciiovertcp only"},
		{"inter-char timeout range", modbus.ClientConfig{URL: "ascii:///dev/ttyUSB0", InterCharTimeout: time.Hour}, "inter_char_timeout", "outside 1ms to 1m0s"},
		{"inter-char timeout negative", modbus.ClientConfig{URL: "ascii:///dev/ttyUSB0", InterCharTimeout: -time.Second}, "inter_char_timeout", "negative"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			require.Error(t, err)
			fe := paths(t, err)[tt.path]
			require.NotNil(t, fe, "no error at %q in %v", tt.path, err)
			assert.Contains(t, fe.Msg, tt.msg)
		})
	}
	for _, ok := range []modbus.ClientConfig{
		{URL: "ascii:///dev/ttyUSB0"},                                                      // 7E1
		{URL: "ascii:///dev/ttyUSB0", Parity: modbus.ParityOdd},                            // 7O1
		{URL: "ascii:///dev/ttyUSB0", Parity: modbus.ParityNone},                           // 7N2
		{URL: "ascii:///dev/ttyUSB0", DataBits: 8, Parity: modbus.ParityNone, StopBits: 1}, // 8N1
		{URL: "asciiovertcp://gw:4001", InterCharTimeout: 50 * time.Millisecond},
	} {
		assert.NoError(t, ok.Validate(), "%+v", ok)
	}
	// A unit on an ASCII line is 1 to 247, as on RTU.
	err := modbus.DeviceConfig{Name: "d", Conn: modbus.ClientConfig{URL: "ascii:///dev/ttyUSB0"},
		Points: testProfile().Points}.Validate()
	require.Error(t, err)
	assert.Contains(t, paths(t, err)["unit"].Msg, "broadcast address on an ASCII link")
}

// checkASCIIDevice polls the simulator's profile through a Device on url
// and writes through it: every value exact, the writes land.
func checkASCIIDevice(t *testing.T, s *modbustest.Server, conn modbus.ClientConfig, unit uint8) *modbus.Device {
	t.Helper()
	p := s.Profile()
	require.NoError(t, s.Set("voltage", 232.5))
	require.NoError(t, s.Set("energy", 12345.6))
	require.NoError(t, s.Set("counter", uint64(1)<<40+7))
	require.NoError(t, s.Set("alarm", true))
	d := newDevice(t, modbus.DeviceConfig{Conn: conn, Unit: unit, Profile: p, Interval: 50 * time.Millisecond})
	rec := runDevice(t, d)
	for name, want := range map[string]bridge.Value{"voltage": bridge.Float(232.5), "counter": bridge.Uint(1<<40 + 7),
		"alarm": bridge.Bool(true)} {
		v := waitFor(t, rec, point(name))
		assert.Equal(t, bridge.Good, v.Quality, "%s: %s", name, v.Reason)
		assert.True(t, want.Equal(v.Value), "%s: want %v, got %v", name, want, v.Value)
	}
	v := waitFor(t, rec, point("energy"))
	assert.InDelta(t, 12345.6, v.Value.Float(), 1e-6)
	ctx := ctxT(t)
	require.NoError(t, d.WritePoint(ctx, "setpoint", 19.5))
	require.NoError(t, d.WritePoint(ctx, "counter", uint64(0x0102030405060708)))
	require.NoError(t, d.WritePoint(ctx, "relay", true))
	for name, want := range map[string]bridge.Value{"setpoint": bridge.Float(19.5), "counter": bridge.Uint(0x0102030405060708),
		"relay": bridge.Bool(true)} {
		got, err := s.Value(name)
		require.NoError(t, err)
		assert.True(t, want.Equal(got) || want.Float() == got.Float(), "%s: server holds %v, wrote %v", name, got, want)
	}
	assert.Zero(t, d.Client().Stats().Discarded)
	return d
}

// TestASCIIOverTCP: the client against modbustest's ASCII-over-TCP gateway.
func TestASCIIOverTCP(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs last: after the device and server stopped
	s := newSim(t, testProfile(), modbustest.WithFraming(modbustest.ASCII), modbustest.WithUnits(9))
	require.Contains(t, s.URL(), "asciiovertcp://")
	checkASCIIDevice(t, s, modbus.ClientConfig{URL: s.URL()}, 9)
	for _, r := range s.Requests() {
		assert.Equal(t, uint8(9), r.Unit)
	}
}

// TestASCIIOverPTY: the client on a pseudo-terminal (a serial device, read
// and written through the serial port layer), the simulator on its
// master end. The line is 8N1: a Linux pseudo-terminal takes no parity or
// character size but 8 bits.
func TestASCIIOverPTY(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("modbustest.OpenPTY is Linux only")
	}
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	m, path, closePTY, err := modbustest.OpenPTY()
	require.NoError(t, err)
	s, err := modbustest.NewASCIIServer(testProfile(), m, modbustest.WithUnits(3))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close(); closePTY() })
	checkASCIIDevice(t, s, modbus.ClientConfig{URL: "ascii://" + path + "?speed=9600&data_bits=8&parity=none&stop_bits=1"}, 3)
}

// TestASCIIMalformedRepliesAreNeverDecoded: a reply with a bad LRC, and
// garbage on the line, are discarded and counted; the request times out
// (a Bad sample, never a wrong value) and the next one gets its answer.
func TestASCIIMalformedRepliesAreNeverDecoded(t *testing.T) {
	p := &modbus.Profile{Name: "regs", Points: []modbus.Point{
		{Name: "r10", Table: modbus.Holding, Address: 10, Type: modbus.Uint16},
	}}
	s := newSim(t, p, modbustest.WithFraming(modbustest.ASCII),
		modbustest.WithHook(modbustest.First(1, func(modbustest.Request) modbustest.Fault { return modbustest.Fault{Corrupt: true} })))
	require.NoError(t, s.Set("r10", 1010))
	c := newClient(t, modbus.ClientConfig{URL: s.URL(), Timeout: 500 * time.Millisecond, MinBackoff: time.Millisecond})
	ctx := ctxT(t)
	_, err := c.ReadRegisters(ctx, 1, modbus.Holding, 10, 1)
	require.ErrorIs(t, err, modbus.ErrTimeout)
	assert.Equal(t, uint64(1), c.Stats().Discarded, "the bad LRC frame was counted")
	v, err := c.ReadRegisters(ctx, 1, modbus.Holding, 10, 1)
	require.NoError(t, err)
	assert.Equal(t, []uint16{1010}, v)
	// An exception reply comes through the ASCII framing as an exception.
	s.SetHook(modbustest.Except(modbus.ServerDeviceFailure))
	_, err = c.ReadRegisters(ctx, 1, modbus.Holding, 10, 1)
	assert.ErrorIs(t, err, modbus.ErrServerDeviceFailure)
}

// TestASCIIGarbageBeforeReply: a gateway that puts noise and a partial
// frame on the line before the reply; the reply is read, the rest counted.
func TestASCIIGarbageBeforeReply(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64)
		for {
			if _, err := c.Read(buf); err != nil { // one request per read
				return
			}
			reply := modbus.AppendASCIIFrame(nil, []byte{0x01, 0x03, 0x02, 0x12, 0x34})
			junk := append([]byte("\x00\xFF:0103"), reply...) // noise, a frame cut by the next ':'
			if _, err := c.Write(junk); err != nil {
				return
			}
		}
	}()
	c := newClient(t, modbus.ClientConfig{URL: "asciiovertcp://" + ln.Addr().String(), Timeout: time.Second})
	for i := range 3 {
		v, err := c.ReadRegisters(ctxT(t), 1, modbus.Holding, 0, 1)
		require.NoError(t, err, i)
		assert.Equal(t, []uint16{0x1234}, v)
	}
	assert.Equal(t, uint64(6), c.Stats().Discarded, "two discards per reply: the noise, and the frame cut by the reply's ':'")
}

// TestASCIILateRepliesNeverGiveWrongValues is the late-reply matrix of
// TestRTULateRepliesNeverGiveWrongValues on ASCII framing: the device
// answers a request 0.3, 0.5, 1 or 2 timeouts after the client gave up on
// it, the next request reads the same or another address with the same
// quantity, on time or late too. Every read that succeeds returns its own
// registers; the late replies are discarded and counted.
func TestASCIILateRepliesNeverGiveWrongValues(t *testing.T) {
	const timeout = 100 * time.Millisecond
	p := &modbus.Profile{Name: "regs", Points: []modbus.Point{
		{Name: "h0", Table: modbus.Holding, Address: 0, Type: modbus.Uint32},
		{Name: "h100", Table: modbus.Holding, Address: 100, Type: modbus.Uint32},
	}}
	for _, x := range []float64{0.3, 0.5, 1, 2} {
		for _, sameAddr := range []bool{true, false} {
			for _, nextLate := range []bool{false, true} {
				name := fmt.Sprintf("late%.1fT/same=%v/nextLate=%v", x, sameAddr, nextLate)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					lateBy := timeout + time.Duration(x*float64(timeout))
					s := newSim(t, p, modbustest.WithFraming(modbustest.ASCII), modbustest.WithHook(func(r modbustest.Request) modbustest.Fault {
						if r.Seq == 1 || (r.Seq == 2 && nextLate) {
							return modbustest.Fault{Delay: lateBy}
						}
						return modbustest.Fault{}
					}))
					require.NoError(t, s.Set("h0", uint32(1000<<16|1001)))
					require.NoError(t, s.Set("h100", uint32(1100<<16|1101)))
					c := newClient(t, modbus.ClientConfig{URL: s.URL(), Timeout: timeout, MinBackoff: time.Millisecond})
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					addrs := []uint16{0, 100, 0, 100, 0}
					if sameAddr {
						addrs = []uint16{0, 0, 100, 0, 100}
					}
					good := 0
					for i, a := range addrs {
						v, err := c.ReadRegisters(ctx, 1, modbus.Holding, a, 2)
						for errors.Is(err, modbus.ErrBackoff) && ctx.Err() == nil {
							v, err = c.ReadRegisters(ctx, 1, modbus.Holding, a, 2)
						}
						if err != nil {
							assert.ErrorIs(t, err, modbus.ErrTimeout, "read %d", i)
							continue
						}
						good++
						assert.Equal(t, []uint16{1000 + a, 1001 + a}, v, "read %d of holding %d got another request's registers", i, a)
					}
					assert.GreaterOrEqual(t, good, len(addrs)-2, "the client recovers after the late replies")
					assert.NotZero(t, c.Stats().Discarded, "the late reply was discarded and counted")
				})
			}
		}
	}
}

// TestASCIIDeviceLateReplyIsNotGood: a Device polling through an ASCII
// gateway whose device answers every third request late never publishes
// one register's value as another's.
func TestASCIIDeviceLateReplyIsNotGood(t *testing.T) {
	p := &modbus.Profile{Name: "regs", Points: []modbus.Point{
		{Name: "h0", Table: modbus.Holding, Address: 0, Type: modbus.Uint32},
		{Name: "h100", Table: modbus.Holding, Address: 100, Type: modbus.Uint32},
	}, Limits: modbus.Limits{Forbidden: []modbus.AddressRange{{Table: modbus.Holding, First: 2, Last: 99}}}}
	s := newSim(t, p, modbustest.WithFraming(modbustest.ASCII), modbustest.WithHook(func(r modbustest.Request) modbustest.Fault {
		if r.Seq%3 == 1 {
			return modbustest.Fault{Delay: 500 * time.Millisecond}
		}
		return modbustest.Fault{}
	}))
	want := map[string]uint64{"h0": 1000<<16 | 1001, "h100": 1100<<16 | 1101}
	require.NoError(t, s.Set("h0", uint32(want["h0"])))
	require.NoError(t, s.Set("h100", uint32(want["h100"])))
	d := newDevice(t, modbus.DeviceConfig{Name: "meter", Conn: modbus.ClientConfig{URL: s.URL(), Timeout: 200 * time.Millisecond,
		MinBackoff: time.Millisecond}, Unit: 1, Interval: 10 * time.Millisecond, Profile: p})
	rec := runDevice(t, d)
	require.Eventually(t, func() bool {
		n, bad := 0, 0
		for _, s := range rec.Samples() {
			if s.Quality == bridge.Good {
				n++
			} else {
				bad++
			}
		}
		return n >= 8 && bad >= 2
	}, 15*time.Second, 5*time.Millisecond)
	for _, smp := range rec.Samples() {
		if smp.Quality == bridge.Good {
			u, _ := smp.Value.Uint()
			assert.Equal(t, want[smp.Point], u, "%s published Good with another register's value", smp.Point)
		}
	}
	assert.NotZero(t, d.Client().Stats().Discarded)
}

// TestASCIISharedBus: two units behind one ASCII-over-TCP gateway share a
// Bus (one connection, requests take turns).
func TestASCIISharedBus(t *testing.T) {
	p := testProfile()
	s := newSim(t, p, modbustest.WithFraming(modbustest.ASCII), modbustest.WithUnits(1, 2))
	require.NoError(t, s.Set("voltage", 231.0))
	devs, buses, err := modbus.NewDevices(
		modbus.DeviceConfig{Name: "a", Conn: modbus.ClientConfig{URL: s.URL()}, Unit: 1, Profile: p, Interval: 20 * time.Millisecond},
		modbus.DeviceConfig{Name: "b", Conn: modbus.ClientConfig{URL: s.URL()}, Unit: 2, Profile: p, Interval: 20 * time.Millisecond},
	)
	require.NoError(t, err)
	require.Len(t, buses, 1)
	t.Cleanup(func() {
		for _, d := range devs {
			d.Close()
		}
		buses[0].Close()
	})
	recA, recB := runDevice(t, devs[0]), runDevice(t, devs[1])
	for _, rec := range []interface {
		Samples() []bridge.Sample
	}{recA, recB} {
		require.Eventually(t, func() bool {
			for _, s := range rec.Samples() {
				if s.Point == "voltage" && s.Quality == bridge.Good && s.Value.Float() == 231.0 {
					return true
				}
			}
			return false
		}, 10*time.Second, 5*time.Millisecond)
	}
	assert.Equal(t, 1, s.Connections(), "one link for both units")
	st := buses[0].Stats()
	assert.NotZero(t, st.Units[1].Requests)
	assert.NotZero(t, st.Units[2].Requests)
}

// TestASCIILateReplyOnSerialLine is TestClientLateReplyOnSerialLine on
// ASCII framing, through the serial port layer on a pseudo-terminal: the
// simulator answers the first request after the client's timeout; the
// late reply is waited out and discarded, later reads get their own
// answers.
func TestASCIILateReplyOnSerialLine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("modbustest.OpenPTY is Linux only")
	}
	m, path, closePTY, err := modbustest.OpenPTY()
	require.NoError(t, err)
	p := &modbus.Profile{Name: "regs", Points: []modbus.Point{
		{Name: "r10", Table: modbus.Holding, Address: 10, Type: modbus.Uint16},
		{Name: "r20", Table: modbus.Holding, Address: 20, Type: modbus.Uint16},
	}}
	s, err := modbustest.NewASCIIServer(p, m, modbustest.WithHook(modbustest.First(1, modbustest.Delay(200*time.Millisecond))))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close(); closePTY() })
	require.NoError(t, s.Set("r10", 1010))
	require.NoError(t, s.Set("r20", 2020))
	c := newClient(t, modbus.ClientConfig{URL: "ascii://" + path + "?speed=115200&data_bits=8&parity=none&stop_bits=1",
		Timeout: 100 * time.Millisecond, LateReplyWait: 250 * time.Millisecond, MinBackoff: time.Millisecond})
	ctx := ctxT(t)
	_, err = c.ReadRegisters(ctx, 1, modbus.Holding, 10, 1)
	require.ErrorIs(t, err, modbus.ErrTimeout)
	for i := range 6 {
		addr := uint16(10 + 10*(i%2))
		v, err := c.ReadRegisters(ctx, 1, modbus.Holding, addr, 1)
		require.NoError(t, err, "read %d", i)
		assert.Equal(t, []uint16{addr * 101}, v, "read %d of %d", i, addr)
	}
	assert.Equal(t, uint64(1), c.Stats().Discarded, "the late reply")
}

// TestRTUCorruptReplyIsNeverDecoded: the Corrupt fault on RTU framing (a
// bad CRC) is discarded and counted like a bad LRC on ASCII.
func TestRTUCorruptReplyIsNeverDecoded(t *testing.T) {
	p := &modbus.Profile{Name: "regs", Points: []modbus.Point{{Name: "r10", Table: modbus.Holding, Address: 10, Type: modbus.Uint16}}}
	s := newSim(t, p, modbustest.WithFraming(modbustest.RTU),
		modbustest.WithHook(modbustest.First(1, func(modbustest.Request) modbustest.Fault { return modbustest.Fault{Corrupt: true} })))
	require.NoError(t, s.Set("r10", 1010))
	c := newClient(t, modbus.ClientConfig{URL: s.URL(), Timeout: 500 * time.Millisecond})
	_, err := c.ReadRegisters(ctxT(t), 1, modbus.Holding, 10, 1)
	require.ErrorIs(t, err, modbus.ErrTimeout)
	assert.Equal(t, uint64(1), c.Stats().Discarded)
	v, err := c.ReadRegisters(ctxT(t), 1, modbus.Holding, 10, 1)
	require.NoError(t, err)
	assert.Equal(t, []uint16{1010}, v)
}

// TestSerialDeadlineCoversTransfer: on a 4800 baud line a 125-register
// ASCII reply takes 1.1 s to arrive; the request's deadline is its timeout
// plus that, so a reply 300 ms late (the pty is fast: the server's delay
// stands in for the line) is read under a timeout of 100 ms.
func TestSerialDeadlineCoversTransfer(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("modbustest.OpenPTY is Linux only")
	}
	p := &modbus.Profile{Name: "regs", Points: []modbus.Point{
		{Name: "first", Table: modbus.Holding, Address: 0, Type: modbus.Uint16},
		{Name: "last", Table: modbus.Holding, Address: 124, Type: modbus.Uint16},
	}}
	m, path, closePTY, err := modbustest.OpenPTY()
	require.NoError(t, err)
	s, err := modbustest.NewASCIIServer(p, m, modbustest.WithFilledGaps(), modbustest.WithHook(func(r modbustest.Request) modbustest.Fault {
		if r.Quantity == 125 {
			return modbustest.Fault{Delay: 300 * time.Millisecond}
		}
		return modbustest.Fault{}
	}))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close(); closePTY() })
	require.NoError(t, s.Set("last", 4242))
	c := newClient(t, modbus.ClientConfig{URL: "ascii://" + path + "?speed=4800&data_bits=8&parity=none&stop_bits=1", Timeout: 100 * time.Millisecond})
	ctx := ctxT(t)
	regs, err := c.ReadRegisters(ctx, 1, modbus.Holding, 0, 125)
	require.NoError(t, err)
	require.Len(t, regs, 125)
	assert.Equal(t, uint16(4242), regs[124])
	// A short read's deadline is still about its timeout: 300 ms late is
	// too late for one register.
	s.SetHook(func(modbustest.Request) modbustest.Fault { return modbustest.Fault{Delay: 300 * time.Millisecond} })
	_, err = c.ReadRegisters(ctx, 1, modbus.Holding, 0, 1)
	require.ErrorIs(t, err, modbus.ErrTimeout)
}
