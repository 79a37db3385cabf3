package modbus_test

import (
	"context"
	"encoding/binary"
	"io"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	upstream "github.com/simonvetter/modbus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

func testProfile() *modbus.Profile {
	return &modbus.Profile{Name: "test", Points: []modbus.Point{
		{Name: "voltage", Table: modbus.Input, Address: 0, Type: modbus.Float32, Unit: "V"},
		{Name: "current", Table: modbus.Input, Address: 2, Type: modbus.Float32, Unit: "A"},
		{Name: "energy", Table: modbus.Input, Address: 10, Type: modbus.Uint32, Scale: 0.1, Unit: "kWh"},
		{Name: "setpoint", Table: modbus.Holding, Address: 100, Type: modbus.Int16, Scale: 0.1, Unit: "°C", Writable: true},
		{Name: "counter", Table: modbus.Holding, Address: 101, Type: modbus.Uint64, WordOrder: modbus.LowFirst, Writable: true},
		{Name: "relay", Table: modbus.Coil, Address: 5, Type: modbus.Bool, Writable: true},
		{Name: "alarm", Table: modbus.Discrete, Address: 7, Type: modbus.Bool},
	}}
}

func newSim(t *testing.T, p *modbus.Profile, opts ...modbustest.Option) *modbustest.Server {
	t.Helper()
	s, err := modbustest.NewServer(p, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func newClient(t *testing.T, cfg modbus.ClientConfig) *modbus.Client {
	t.Helper()
	c, err := modbus.NewClient(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestClientReadsSimulator(t *testing.T) {
	p := testProfile()
	s := newSim(t, p)
	require.NoError(t, s.Set("voltage", 231.5))
	require.NoError(t, s.Set("energy", 12345.6))
	require.NoError(t, s.Set("relay", true))
	require.NoError(t, s.Set("counter", uint64(1)<<60+7))
	c := newClient(t, modbus.ClientConfig{URL: s.URL()})
	ctx := ctxT(t)

	regs, err := c.ReadRegisters(ctx, 1, modbus.Input, 0, 2)
	require.NoError(t, err)
	v, err := p.Points[0].Decode(regs)
	require.NoError(t, err)
	assert.Equal(t, 231.5, v.Float())

	regs, err = c.ReadRegisters(ctx, 1, modbus.Input, 10, 2)
	require.NoError(t, err)
	v, err = p.Points[2].Decode(regs)
	require.NoError(t, err)
	assert.InDelta(t, 12345.6, v.Float(), 1e-9)

	regs, err = c.ReadRegisters(ctx, 1, modbus.Holding, 101, 4)
	require.NoError(t, err)
	v, err = p.Points[4].Decode(regs)
	require.NoError(t, err)
	assert.True(t, v.Equal(bridge.Uint(1<<60+7)), v.String())

	bits, err := c.ReadBits(ctx, 1, modbus.Coil, 5, 1)
	require.NoError(t, err)
	assert.Equal(t, []bool{true}, bits)

	reqs := s.Requests()
	require.Len(t, reqs, 4)
	assert.Equal(t, modbustest.Request{Seq: 1, Conn: 1, Unit: 1, Function: 4, Table: modbus.Input, Address: 0, Quantity: 2},
		withoutTime(reqs[0]))
	assert.Equal(t, uint64(1), c.Stats().Connects)
	assert.Equal(t, uint64(4), c.Stats().Requests)
}

func withoutTime(r modbustest.Request) modbustest.Request {
	r.Time = time.Time{}
	return r
}

func TestClientExceptions(t *testing.T) {
	s := newSim(t, testProfile())
	c := newClient(t, modbus.ClientConfig{URL: s.URL()})
	ctx := ctxT(t)

	// An unmapped address: the simulator answers Illegal Data Address.
	_, err := c.ReadRegisters(ctx, 3, modbus.Input, 4, 2)
	require.Error(t, err)
	assert.ErrorIs(t, err, modbus.ErrIllegalDataAddress)
	var ex *modbus.ExceptionError
	require.ErrorAs(t, err, &ex)
	assert.Equal(t, modbus.ExceptionError{Unit: 3, Function: 4, Code: modbus.IllegalDataAddress}, *ex)
	var op *modbus.OpError
	require.ErrorAs(t, err, &op)
	assert.Equal(t, "read", op.Op)
	assert.Equal(t, modbus.Input, op.Table)
	assert.Equal(t, uint16(4), op.Address)
	assert.False(t, modbus.IsRetriable(err))
	assert.Contains(t, err.Error(), "input 4+2")
	assert.Contains(t, err.Error(), "illegal data address")

	for _, tc := range []struct {
		code     modbus.ExceptionCode
		sentinel error
		retry    bool
	}{
		{modbus.IllegalFunction, modbus.ErrIllegalFunction, false},
		{modbus.IllegalDataValue, modbus.ErrIllegalDataValue, false},
		{modbus.ServerDeviceFailure, modbus.ErrServerDeviceFailure, true},
		{modbus.ServerDeviceBusy, modbus.ErrServerDeviceBusy, true},
		{modbus.GatewayPathUnavailable, modbus.ErrGatewayPathUnavailable, true},
		{modbus.GatewayTargetDeviceFailedToRespond, modbus.ErrGatewayTargetDeviceFailedToRespond, true},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			s.SetHook(modbustest.Except(tc.code))
			_, err := c.ReadRegisters(ctx, 1, modbus.Input, 0, 2)
			assert.ErrorIs(t, err, tc.sentinel)
			code, ok := modbus.ExceptionCodeOf(err)
			assert.True(t, ok)
			assert.Equal(t, tc.code, code)
			assert.Equal(t, tc.retry, modbus.IsRetriable(err))
		})
	}
	s.SetHook(nil)
	// Exceptions do not cost the connection.
	assert.Equal(t, uint64(1), c.Stats().Connects)
}

func TestClientTimeout(t *testing.T) {
	s := newSim(t, testProfile(), modbustest.WithHook(modbustest.First(1, modbustest.NoReply())))
	c := newClient(t, modbus.ClientConfig{URL: s.URL(), Timeout: 100 * time.Millisecond})
	ctx := ctxT(t)
	_, err := c.ReadRegisters(ctx, 1, modbus.Input, 0, 2)
	require.Error(t, err)
	assert.ErrorIs(t, err, modbus.ErrTimeout)
	var op *modbus.OpError
	require.ErrorAs(t, err, &op)
	assert.True(t, op.Timeout())
	assert.True(t, modbus.IsRetriable(err))
	// The next request goes through, on a new connection.
	_, err = c.ReadRegisters(ctx, 1, modbus.Input, 0, 2)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), c.Stats().Timeouts)
}

func TestClientReconnects(t *testing.T) {
	s := newSim(t, testProfile())
	c := newClient(t, modbus.ClientConfig{URL: s.URL(), MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	ctx := ctxT(t)
	_, err := c.ReadRegisters(ctx, 1, modbus.Input, 0, 2)
	require.NoError(t, err)

	// The device drops the connection (upstream would answer EOF, then
	// broken pipe forever): the Client reconnects.
	s.CloseConnections()
	require.Eventually(t, func() bool {
		_, err := c.ReadRegisters(ctx, 1, modbus.Input, 0, 2)
		return err == nil
	}, 5*time.Second, time.Millisecond)
	assert.GreaterOrEqual(t, c.Stats().Connects, uint64(2))

	// A reset connection, likewise.
	s.SetHook(modbustest.First(1, modbustest.ResetConnection()))
	_, err = c.ReadRegisters(ctx, 1, modbus.Input, 0, 2)
	require.Error(t, err)
	assert.True(t, modbus.IsRetriable(err))
	_, err = c.ReadRegisters(ctx, 1, modbus.Input, 0, 2)
	require.NoError(t, err)
}

func TestClientConnectBackoff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nobody listens there now

	c := newClient(t, modbus.ClientConfig{URL: "tcp://" + addr, MinBackoff: time.Hour, MaxBackoff: time.Hour})
	ctx := ctxT(t)
	_, err = c.ReadRegisters(ctx, 1, modbus.Input, 0, 2)
	require.Error(t, err)
	var op *modbus.OpError
	require.ErrorAs(t, err, &op)
	assert.Equal(t, "connect", op.Op)
	// The second attempt does no I/O: it is backed off.
	_, err = c.ReadRegisters(ctx, 1, modbus.Input, 0, 2)
	assert.ErrorIs(t, err, modbus.ErrBackoff)
	assert.True(t, modbus.IsRetriable(err))
}

func TestClientClosed(t *testing.T) {
	s := newSim(t, testProfile())
	c := newClient(t, modbus.ClientConfig{URL: s.URL()})
	require.NoError(t, c.Close())
	require.NoError(t, c.Close())
	_, err := c.ReadRegisters(ctxT(t), 1, modbus.Input, 0, 2)
	assert.ErrorIs(t, err, modbus.ErrClosed)
	assert.ErrorIs(t, err, bridge.ErrClosed)
	assert.False(t, modbus.IsRetriable(err))
}

func TestClientContext(t *testing.T) {
	s := newSim(t, testProfile(), modbustest.WithHook(modbustest.Delay(300*time.Millisecond)))
	c := newClient(t, modbus.ClientConfig{URL: s.URL()})
	ctx := ctxT(t)
	// One slow request holds the link; a second caller whose context ends
	// while it waits returns at once.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = c.ReadRegisters(ctx, 1, modbus.Input, 0, 2)
	}()
	require.Eventually(t, func() bool { return s.RequestCount() == 1 }, 5*time.Second, time.Millisecond)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.ReadRegisters(short, 1, modbus.Input, 0, 2)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 250*time.Millisecond)
	wg.Wait()
}

// TestClientUnitPerRequest checks that the unit id and the request go
// together when goroutines of different units share a Client (upstream sets
// the unit id and sends under separate locks).
func TestClientUnitPerRequest(t *testing.T) {
	s := newSim(t, testProfile())
	c := newClient(t, modbus.ClientConfig{URL: s.URL()})
	ctx := ctxT(t)
	var wg sync.WaitGroup
	for unit := uint8(1); unit <= 4; unit++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				_, err := c.ReadRegisters(ctx, unit, modbus.Input, uint16(unit-1)*2%4, 2)
				assert.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	for _, r := range s.Requests() {
		assert.Equal(t, uint16(r.Unit-1)*2%4, r.Address, "request %d of unit %d", r.Seq, r.Unit)
	}
	st := c.Stats()
	assert.Len(t, st.Units, 4)
	assert.Equal(t, uint64(50), st.Units[3].Requests)
}

func TestClientWrites(t *testing.T) {
	p := testProfile()
	s := newSim(t, p)
	c := newClient(t, modbus.ClientConfig{URL: s.URL()})
	ctx := ctxT(t)
	regs, err := p.Points[3].Encode(bridge.Float(-12.5))
	require.NoError(t, err)
	require.NoError(t, c.WriteRegisters(ctx, 1, 100, regs))
	v, err := s.Value("setpoint")
	require.NoError(t, err)
	assert.InDelta(t, -12.5, v.Float(), 1e-9)
	require.NoError(t, c.WriteCoils(ctx, 1, 5, []bool{true}))
	v, err = s.Value("relay")
	require.NoError(t, err)
	assert.True(t, v.Equal(bridge.Bool(true)))
	// Input registers are not writable through FC 06: the address is not a
	// holding register.
	err = c.WriteRegisters(ctx, 1, 0, []uint16{1})
	assert.ErrorIs(t, err, modbus.ErrIllegalDataAddress)
}

func TestNewClientErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg  modbus.ClientConfig
		want []string
	}{
		"no scheme":    {modbus.ClientConfig{URL: "127.0.0.1:502"}, []string{"no scheme"}},
		"bad scheme":   {modbus.ClientConfig{URL: "http://x"}, []string{"unknown scheme"}},
		"no device":    {modbus.ClientConfig{URL: "rtu://"}, []string{"no serial device"}},
		"bad parity":   {modbus.ClientConfig{URL: "rtu:///dev/ttyS0?parity=mark"}, []string{"parity"}},
		"bad param":    {modbus.ClientConfig{URL: "rtu:///dev/ttyS0?baudrate=9600"}, []string{"unknown parameter"}},
		"tls no certs": {modbus.ClientConfig{URL: "tcp+tls://h"}, []string{"cert_file", "ca_file"}},
		"two problems": {modbus.ClientConfig{URL: "rtu:///dev/x", DataBits: 9, Timeout: -1}, []string{"data_bits", "timeout"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := modbus.NewClient(tc.cfg)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestParseURL(t *testing.T) {
	for in, want := range map[string]modbus.Endpoint{
		"tcp://10.0.0.1":                        {Scheme: "tcp", Address: "10.0.0.1:502", Speed: 19200, Parity: "even", DataBits: 8, StopBits: 1},
		"tcp+tls://plc":                         {Scheme: "tcp+tls", Address: "plc:802", Speed: 19200, Parity: "even", DataBits: 8, StopBits: 1},
		"udp://[::1]:1502":                      {Scheme: "udp", Address: "[::1]:1502", Speed: 19200, Parity: "even", DataBits: 8, StopBits: 1},
		"rtu:///dev/ttyUSB0":                    {Scheme: "rtu", Address: "/dev/ttyUSB0", Speed: 19200, Parity: "even", DataBits: 8, StopBits: 1},
		"rtu://COM3?speed=9600&parity=none":     {Scheme: "rtu", Address: "COM3", Speed: 9600, Parity: "none", DataBits: 8, StopBits: 2},
		"rtu:///dev/ttyS1?parity=N&stop_bits=1": {Scheme: "rtu", Address: "/dev/ttyS1", Speed: 19200, Parity: "none", DataBits: 8, StopBits: 1},
		"rtuovertcp://gw:4001?speed=9600":       {Scheme: "rtuovertcp", Address: "gw:4001", Speed: 9600, Parity: "even", DataBits: 8, StopBits: 1},
		"rtuoverudp://gw:4001":                  {Scheme: "rtuoverudp", Address: "gw:4001", Speed: 19200, Parity: "even", DataBits: 8, StopBits: 1},
	} {
		got, err := modbus.ParseURL(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	ep, _ := modbus.ParseURL("rtu:///dev/x?speed=9600")
	assert.Equal(t, 11*time.Second/9600, ep.CharTime())
	assert.Equal(t, 11*time.Second/9600*7/2, ep.FrameSilence())
	ep, _ = modbus.ParseURL("rtu:///dev/x?speed=115200")
	assert.Equal(t, 1750*time.Microsecond, ep.FrameSilence())
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"tcp://h:1", "rtu:///dev/x?speed=1&parity=o", "udp://[::1", "x://", "tcp+tls://a:99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ep, err := modbus.ParseURL(s)
		if err == nil && ep.Address == "" {
			t.Fatalf("%q parsed with no address", s)
		}
	})
}

// lateGateway is an RTU-over-TCP gateway with one slow device behind it:
// it answers read-holding requests with registers equal to their address,
// and answers the requests lateN says too late, on whichever connection is
// the newest at that time, as a gateway relaying its serial line would.
type lateGateway struct {
	ln     net.Listener
	late   func(seq int) bool
	delay  time.Duration
	mu     sync.Mutex
	newest net.Conn
	seq    int
	wg     sync.WaitGroup
	// lateSent counts the late replies written.
	lateSent atomic.Int64
}

func newLateGateway(t *testing.T, delay time.Duration, late func(seq int) bool) *lateGateway {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := &lateGateway{ln: ln, late: late, delay: delay}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			g.mu.Lock()
			g.newest = c
			g.mu.Unlock()
			g.wg.Add(1)
			go func() {
				defer g.wg.Done()
				defer c.Close()
				g.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		g.mu.Lock()
		if g.newest != nil {
			g.newest.Close()
		}
		g.mu.Unlock()
		g.wg.Wait()
	})
	return g
}

func (g *lateGateway) serve(c net.Conn) {
	buf := make([]byte, 8)
	for {
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		addr := binary.BigEndian.Uint16(buf[2:])
		qty := binary.BigEndian.Uint16(buf[4:])
		resp := []byte{buf[0], buf[1], byte(2 * qty)}
		for i := range qty {
			resp = binary.BigEndian.AppendUint16(resp, addr+i)
		}
		resp = binary.LittleEndian.AppendUint16(resp, modbustest.CRC(resp))
		g.mu.Lock()
		g.seq++
		late := g.late(g.seq)
		g.mu.Unlock()
		if late {
			time.Sleep(g.delay) // the device is slow; the line is busy meanwhile
			g.mu.Lock()
			to := g.newest
			g.mu.Unlock()
			_, _ = to.Write(resp)
			g.lateSent.Add(1)
			continue
		}
		if _, err := c.Write(resp); err != nil {
			return
		}
	}
}

// TestUpstreamLateReplyShiftsValues documents the upstream quirk that
// Client guards against: after a late reply, every later read on an RTU
// link is one reply behind, with no error.
func TestUpstreamLateReplyShiftsValues(t *testing.T) {
	g := newLateGateway(t, 150*time.Millisecond, func(seq int) bool { return seq == 1 })
	mc, err := upstream.NewClient(&upstream.ClientConfiguration{
		URL: "rtuovertcp://" + g.ln.Addr().String(), Timeout: 100 * time.Millisecond, Logger: discardLogger()})
	require.NoError(t, err)
	require.NoError(t, mc.Open())
	defer mc.Close()
	_, err = mc.ReadRegisters(10, 1, upstream.HOLDING_REGISTER)
	require.Error(t, err) // timed out
	require.Eventually(t, func() bool { return g.lateSent.Load() == 1 }, 5*time.Second, time.Millisecond, "the late reply is on its way")
	v, err := mc.ReadRegisters(20, 1, upstream.HOLDING_REGISTER)
	require.NoError(t, err)
	assert.Equal(t, []uint16{10}, v, "upstream takes the late reply to address 10 as the answer for address 20")
}

func TestClientLateReplyDoesNotShiftValues(t *testing.T) {
	var lateOnes atomic.Int64
	g := newLateGateway(t, 150*time.Millisecond, func(seq int) bool {
		if seq%4 == 1 {
			lateOnes.Add(1)
			return true
		}
		return false
	})
	c := newClient(t, modbus.ClientConfig{URL: "rtuovertcp://" + g.ln.Addr().String(),
		Timeout: 100 * time.Millisecond, LateReplyWait: 150 * time.Millisecond, MinBackoff: time.Millisecond})
	ctx := ctxT(t)
	var timeouts int
	for i := range 12 {
		addr := uint16(10 + 10*(i%3))
		v, err := c.ReadRegisters(ctx, 1, modbus.Holding, addr, 2)
		if err != nil {
			require.ErrorIs(t, err, modbus.ErrTimeout)
			timeouts++
			continue
		}
		assert.Equal(t, []uint16{addr, addr + 1}, v, "read %d", i)
	}
	assert.Equal(t, int(lateOnes.Load()), timeouts)
	assert.GreaterOrEqual(t, timeouts, 2)
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// TestClientDeviceRestart: the device goes away (connections refused, so
// upstream's Open fails and would keep its dead transport), then comes back
// on the same address; the Client backs off, then reconnects.
func TestClientDeviceRestart(t *testing.T) {
	p := testProfile()
	s, err := modbustest.NewServer(p)
	require.NoError(t, err)
	addr := s.Addr()
	c := newClient(t, modbus.ClientConfig{URL: s.URL(), MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	ctx := ctxT(t)
	_, err = c.ReadRegisters(ctx, 1, modbus.Input, 0, 2)
	require.NoError(t, err)

	require.NoError(t, s.Close())
	_, err = c.ReadRegisters(ctx, 1, modbus.Input, 0, 2) // EOF on the old connection
	require.Error(t, err)
	_, err = c.ReadRegisters(ctx, 1, modbus.Input, 0, 2) // refused
	require.Error(t, err)
	var op *modbus.OpError
	require.ErrorAs(t, err, &op)
	assert.Equal(t, "connect", op.Op)

	s2, err := modbustest.NewServer(p, modbustest.WithAddress(addr))
	require.NoError(t, err)
	t.Cleanup(func() { s2.Close() })
	require.Eventually(t, func() bool {
		_, err := c.ReadRegisters(ctx, 1, modbus.Input, 0, 2)
		return err == nil
	}, 5*time.Second, time.Millisecond)
	assert.Equal(t, uint64(2), c.Stats().Connects)
}

// TestClientDeadlineReturnsEarly: a caller whose deadline is shorter than
// the request timeout gets its answer (an error) at its deadline; the
// request finishes in the background and later requests are not confused.
func TestClientDeadlineReturnsEarly(t *testing.T) {
	p := testProfile()
	s := newSim(t, p, modbustest.WithHook(modbustest.First(1, modbustest.Delay(300*time.Millisecond))))
	require.NoError(t, s.Set("voltage", 240.5))
	c := newClient(t, modbus.ClientConfig{URL: s.URL(), Timeout: 2 * time.Second})
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.ReadRegisters(short, 1, modbus.Input, 2, 2)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 250*time.Millisecond)
	regs, err := c.ReadRegisters(ctxT(t), 1, modbus.Input, 0, 2)
	require.NoError(t, err)
	v, err := p.Points[0].Decode(regs)
	require.NoError(t, err)
	assert.Equal(t, 240.5, v.Float())
}
