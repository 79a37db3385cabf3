package modbustest_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

func profile() *modbus.Profile {
	return &modbus.Profile{Name: "t", Points: []modbus.Point{
		{Name: "volts", Table: modbus.Input, Address: 0, Type: modbus.Float32, Unit: "V"},
		{Name: "kwh", Table: modbus.Input, Address: 2, Type: modbus.Uint32, Scale: 0.1, Unit: "kWh"},
		{Name: "mode", Table: modbus.Holding, Address: 10, Type: modbus.Uint16},
		{Name: "name", Table: modbus.Holding, Address: 11, Type: modbus.String, Length: 4},
		{Name: "relay", Table: modbus.Coil, Address: 3, Type: modbus.Bool},
		{Name: "door", Table: modbus.Discrete, Address: 0, Type: modbus.Bool},
	}}
}

func start(t *testing.T, opts ...modbustest.Option) (*modbustest.Server, net.Conn) {
	t.Helper()
	s, err := modbustest.NewServer(profile(), opts...)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	c, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	return s, c
}

// mbap sends one Modbus TCP request and returns the response PDU.
func mbap(t *testing.T, c net.Conn, txn uint16, unit uint8, pdu ...byte) []byte {
	t.Helper()
	req := binary.BigEndian.AppendUint16(nil, txn)
	req = append(req, 0, 0)
	req = binary.BigEndian.AppendUint16(req, uint16(len(pdu)+1))
	req = append(req, unit)
	req = append(req, pdu...)
	_, err := c.Write(req)
	require.NoError(t, err)
	hdr := make([]byte, 7)
	_, err = io.ReadFull(c, hdr)
	require.NoError(t, err)
	assert.Equal(t, txn, binary.BigEndian.Uint16(hdr))
	assert.Equal(t, unit, hdr[6])
	body := make([]byte, binary.BigEndian.Uint16(hdr[4:])-1)
	_, err = io.ReadFull(c, body)
	require.NoError(t, err)
	return body
}

func TestServerAnswersAndLogs(t *testing.T) {
	s, c := start(t)
	require.NoError(t, s.Set("mode", 0xBEEF))
	require.NoError(t, s.Set("name", "ABC"))
	// FC 03, holding 10, 5 registers.
	got := mbap(t, c, 7, 9, 0x03, 0, 10, 0, 5)
	assert.Equal(t, []byte{0x03, 10, 0xBE, 0xEF, 'A', 'B', 'C', 0, 0, 0, 0, 0}, got)
	// Unmapped: Illegal Data Address.
	assert.Equal(t, []byte{0x84, 0x02}, mbap(t, c, 8, 9, 0x04, 0, 4, 0, 1))
	// Spanning past the mapped window.
	assert.Equal(t, []byte{0x83, 0x02}, mbap(t, c, 9, 9, 0x03, 0, 10, 0, 6))
	// Unknown function.
	assert.Equal(t, []byte{0x88, 0x01}, mbap(t, c, 10, 9, 0x08, 0, 0, 0, 0))
	// Quantity 0 is Illegal Data Value.
	assert.Equal(t, []byte{0x83, 0x03}, mbap(t, c, 11, 9, 0x03, 0, 10, 0, 0))
	// Coils: FC 05 on, then FC 01 reads it.
	assert.Equal(t, []byte{0x05, 0, 3, 0xFF, 0}, mbap(t, c, 12, 9, 0x05, 0, 3, 0xFF, 0))
	assert.Equal(t, []byte{0x01, 1, 1}, mbap(t, c, 13, 9, 0x01, 0, 3, 0, 1))
	v, err := s.Value("relay")
	require.NoError(t, err)
	assert.True(t, v.Equal(bridge.Bool(true)))
	// FC 16 writes two registers of the string.
	assert.Equal(t, []byte{0x10, 0, 11, 0, 2}, mbap(t, c, 14, 9, 0x10, 0, 11, 0, 2, 4, 'x', 'y', 'z', 'w'))
	v, err = s.Value("name")
	require.NoError(t, err)
	assert.Equal(t, "xyzw", v.Str())

	reqs := s.Requests()
	require.Len(t, reqs, 8)
	assert.Equal(t, modbustest.Request{Seq: 1, Conn: 1, Unit: 9, Function: 3, Table: modbus.Holding, Address: 10, Quantity: 5},
		clean(reqs[0]))
	assert.Equal(t, modbustest.Request{Seq: 8, Conn: 1, Unit: 9, Function: 0x10, Table: modbus.Holding, Address: 11, Quantity: 2, Write: true},
		clean(reqs[7]))
	assert.Equal(t, uint64(8), s.RequestCount())
	s.ResetRequests()
	assert.Empty(t, s.Requests())
}

func clean(r modbustest.Request) modbustest.Request {
	r.Time = time.Time{}
	return r
}

func TestServerMovingValues(t *testing.T) {
	s, err := modbustest.NewServer(profile(), modbustest.WithTick(time.Millisecond))
	require.NoError(t, err)
	defer s.Close()
	first, err := s.Value("volts")
	require.NoError(t, err)
	assert.InDelta(t, 230, first.Float(), 6)
	k0, err := s.Value("kwh")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		v, _ := s.Value("volts")
		return v.Float() != first.Float()
	}, 5*time.Second, time.Millisecond)
	require.Eventually(t, func() bool {
		k, _ := s.Value("kwh")
		return k.Float() > k0.Float()
	}, 5*time.Second, time.Millisecond, "energy counts up")
	// Set fixes a value, Release lets it move again.
	require.NoError(t, s.Set("volts", 1.25))
	v, _ := s.Value("volts")
	assert.Equal(t, 1.25, v.Float())
	s.Release("volts")
	require.Eventually(t, func() bool {
		v, _ := s.Value("volts")
		return v.Float() != 1.25
	}, 5*time.Second, time.Millisecond)
}

func TestServerSetErrors(t *testing.T) {
	s, err := modbustest.NewServer(profile())
	require.NoError(t, err)
	defer s.Close()
	assert.ErrorContains(t, s.Set("nope", 1), `"nope"`)
	assert.ErrorContains(t, s.Set("mode", 70000), "mode")
	assert.ErrorContains(t, s.Set("mode", struct{}{}), "unsupported")
	_, err = s.Value("nope")
	assert.Error(t, err)
	_, err = modbustest.NewServer(&modbus.Profile{Name: "bad", Points: []modbus.Point{{Name: "x", Table: "nope"}}})
	assert.Error(t, err)
	_, err = modbustest.NewServer(nil)
	assert.Error(t, err)
}

func TestServerFaults(t *testing.T) {
	s, c := start(t)
	s.SetHook(modbustest.ExceptAt(modbus.Input, 1, modbus.ServerDeviceBusy))
	assert.Equal(t, []byte{0x84, 0x06}, mbap(t, c, 1, 1, 0x04, 0, 0, 0, 2))
	assert.Equal(t, []byte{0x84, 0x02}, mbap(t, c, 2, 1, 0x04, 0, 2, 0, 3), "not covering address 1: normal answer")

	s.SetHook(modbustest.Delay(50 * time.Millisecond))
	t0 := time.Now()
	mbap(t, c, 3, 1, 0x04, 0, 0, 0, 2)
	assert.GreaterOrEqual(t, time.Since(t0), 50*time.Millisecond)

	s.SetHook(modbustest.Chain(modbustest.ForUnit(5, modbustest.NoReply()), modbustest.First(1, modbustest.DropConnection())))
	_, err := c.Write([]byte{0, 4, 0, 0, 0, 6, 5, 0x04, 0, 0, 0, 2}) // unit 5: swallowed
	require.NoError(t, err)
	_, err = c.Write([]byte{0, 5, 0, 0, 0, 6, 1, 0x04, 0, 0, 0, 2}) // unit 1: dropped
	require.NoError(t, err)
	_, err = c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF)

	s.SetHook(modbustest.ResetConnection())
	c2, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	defer c2.Close()
	_, err = c2.Write([]byte{0, 1, 0, 0, 0, 6, 1, 0x04, 0, 0, 0, 2})
	require.NoError(t, err)
	require.NoError(t, c2.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = c2.Read(make([]byte, 1))
	assert.ErrorContains(t, err, "reset")
}

func TestServerUnitsAndLogBound(t *testing.T) {
	s, c := start(t, modbustest.WithUnits(3), modbustest.WithLogSize(2))
	assert.Equal(t, []byte{0x04, 4, 0, 0, 0, 0}[:2], mbap(t, c, 1, 3, 0x04, 0, 0, 0, 2)[:2])
	mbap(t, c, 2, 3, 0x04, 0, 0, 0, 2)
	mbap(t, c, 3, 3, 0x04, 0, 0, 0, 2)
	assert.Len(t, s.Requests(), 2)
	assert.Equal(t, uint64(1), s.Dropped())
	assert.Equal(t, uint64(2), s.Requests()[0].Seq)
	// Unit 4 does not exist: no answer.
	require.NoError(t, c.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	_, err := c.Write([]byte{0, 9, 0, 0, 0, 6, 4, 0x04, 0, 0, 0, 2})
	require.NoError(t, err)
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout())
}

func TestServerRTUFraming(t *testing.T) {
	s, c := start(t, modbustest.WithFraming(modbustest.RTU))
	assert.Contains(t, s.URL(), "rtuovertcp://")
	require.NoError(t, s.Set("mode", 0x0102))
	req := []byte{1, 0x03, 0, 10, 0, 1}
	req = binary.LittleEndian.AppendUint16(req, modbustest.CRC(req))
	_, err := c.Write(req)
	require.NoError(t, err)
	resp := make([]byte, 7)
	_, err = io.ReadFull(c, resp)
	require.NoError(t, err)
	assert.Equal(t, []byte{1, 0x03, 2, 1, 2}, resp[:5])
	assert.Equal(t, modbustest.CRC(resp[:5]), binary.LittleEndian.Uint16(resp[5:]))
	// The CRC of the specification's example (Serial Line V1.02, 6.2.2):
	// 02 07 gives 0x1241, sent 41 12.
	assert.Equal(t, uint16(0x1241), modbustest.CRC([]byte{0x02, 0x07}))
}

func TestServerManyClientsAndCloseWaits(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	s, err := modbustest.NewServer(profile())
	require.NoError(t, err)
	var conns []net.Conn
	for range 25 { // more than upstream's default limit of 10
		c, err := net.Dial("tcp", s.Addr())
		require.NoError(t, err)
		conns = append(conns, c)
	}
	for i, c := range conns {
		require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
		assert.Equal(t, byte(0x04), mbap(t, c, uint16(i), 1, 0x04, 0, 0, 0, 2)[0])
	}
	assert.Equal(t, 25, s.Connections())
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
	for _, c := range conns {
		_, err := c.Read(make([]byte, 1))
		assert.Error(t, err)
		c.Close()
	}
	goleak.VerifyNone(t, ignore)
}

// FuzzServer feeds arbitrary bytes to both framings: the server must not
// panic, and must keep answering well-formed requests on new connections.
func FuzzServer(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 0, 6, 1, 0x03, 0, 10, 0, 1}, false)
	f.Add([]byte{1, 0x10, 0, 11, 0, 2, 4, 1, 2, 3, 4, 0, 0}, true)
	f.Add([]byte{0, 1, 0, 0, 0, 2, 1, 0x0F}, false)
	f.Fuzz(func(t *testing.T, data []byte, rtu bool) {
		opts := []modbustest.Option{}
		if rtu {
			opts = append(opts, modbustest.WithFraming(modbustest.RTU))
		}
		s, err := modbustest.NewServer(profile(), opts...)
		require.NoError(t, err)
		defer s.Close()
		c, err := net.Dial("tcp", s.Addr())
		require.NoError(t, err)
		_, _ = c.Write(data)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
		_, _ = io.Copy(io.Discard, c)
		c.Close()
		if !rtu {
			c2, err := net.Dial("tcp", s.Addr())
			require.NoError(t, err)
			defer c2.Close()
			require.NoError(t, c2.SetDeadline(time.Now().Add(5*time.Second)))
			assert.Equal(t, byte(0x03), mbap(t, c2, 1, 1, 0x03, 0, 10, 0, 1)[0])
		}
	})
}

// Example serves a profile and reads a value the test fixed, as a test of
// a Modbus client would.
func Example() {
	p := &modbus.Profile{Name: "meter", Points: []modbus.Point{
		{Name: "voltage", Table: modbus.Input, Address: 0, Type: modbus.Float32, Unit: "V"},
	}}
	sim, err := modbustest.NewServer(p)
	if err != nil {
		panic(err)
	}
	defer sim.Close()
	_ = sim.Set("voltage", 230.5)

	c, err := modbus.NewClient(modbus.ClientConfig{URL: sim.URL()})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	regs, err := c.ReadRegisters(context.Background(), 1, modbus.Input, 0, 2)
	if err != nil {
		panic(err)
	}
	v, _ := p.Points[0].Decode(regs)
	fmt.Println(v, "V;", sim.RequestCount(), "request")

	// An address no point covers answers Illegal Data Address.
	_, err = c.ReadRegisters(context.Background(), 1, modbus.Input, 10, 1)
	code, _ := modbus.ExceptionCodeOf(err)
	fmt.Println(errors.Is(err, modbus.ErrIllegalDataAddress), code)
	// Output:
	// 230.5 V; 1 request
	// true illegal data address
}

func TestServerFilledGaps(t *testing.T) {
	p := &modbus.Profile{Name: "gaps", Points: []modbus.Point{
		{Name: "a", Table: modbus.Input, Address: 0, Type: modbus.Uint16},
		{Name: "b", Table: modbus.Input, Address: 5, Type: modbus.Uint16},
	}}
	tests := []struct {
		name         string
		profileFills bool
		opts         []modbustest.Option
		filled       bool
	}{
		{"default", false, nil, false},
		{"WithFilledGaps", false, []modbustest.Option{modbustest.WithFilledGaps()}, true},
		{"profile fills_gaps", true, nil, true},
		{"profile fills_gaps, WithRefusedGaps", true, []modbustest.Option{modbustest.WithRefusedGaps()}, false},
	}
	for _, tt := range tests {
		t.Log(tt.name)
		p := p.Clone()
		p.Limits.FillsGaps = tt.profileFills
		filled := tt.filled
		s, err := modbustest.NewServer(p, tt.opts...)
		require.NoError(t, err)
		defer s.Close()
		require.NoError(t, s.Set("a", 7))
		require.NoError(t, s.Set("b", 9))
		c, err := net.Dial("tcp", s.Addr())
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
		if filled {
			assert.Equal(t, []byte{0x04, 12, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9}, mbap(t, c, 1, 1, 0x04, 0, 0, 0, 6))
		} else {
			assert.Equal(t, []byte{0x84, 0x02}, mbap(t, c, 1, 1, 0x04, 0, 0, 0, 6), tt.name)
		}
		assert.Equal(t, []byte{0x84, 0x02}, mbap(t, c, 2, 1, 0x04, 0, 1, 0, 4), "no mapped address")
		assert.Equal(t, []byte{0x84, 0x02}, mbap(t, c, 3, 1, 0x04, 0, 0, 0, 7), "past the map")
	}
}
