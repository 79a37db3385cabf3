package modbus

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRTUCost(t *testing.T) {
	// 9600 baud, 8 data bits, no parity, 1 stop bit: 10 bits a character.
	c := RTUCost(9600, 8, 0, 1)
	char := time.Second * 10 / 9600
	assert.InDelta(t, float64(13*char+7*char), float64(c.PerRequest), float64(time.Microsecond))
	assert.InDelta(t, float64(2*char), float64(c.PerRegister), float64(time.Microsecond))
	assert.InDelta(t, float64(char/8), float64(c.PerBit), float64(time.Microsecond))
	// Even parity, one stop bit: 11 bits.
	c = RTUCost(19200, 8, 1, 1)
	char = time.Second * 11 / 19200
	assert.InDelta(t, float64(20*char), float64(c.PerRequest), float64(time.Microsecond))
	// Above 19200 baud the silence is fixed at 1.75 ms.
	c = RTUCost(115200, 8, 0, 2)
	char = time.Second * 11 / 115200
	assert.InDelta(t, float64(13*char+3500*time.Microsecond), float64(c.PerRequest), float64(time.Microsecond))
	// Invalid arguments fall back to 19200 8N1.
	assert.Equal(t, RTUCost(19200, 8, 0, 1), RTUCost(0, 0, -1, 0))
}

func TestTCPCost(t *testing.T) {
	c := TCPCost(time.Millisecond, 1e6) // 1 MB/s: a byte is 1 µs
	assert.Equal(t, time.Millisecond+21*time.Microsecond, c.PerRequest)
	assert.Equal(t, 2*time.Microsecond, c.PerRegister)
	assert.Equal(t, 125*time.Nanosecond, c.PerBit)
	assert.Equal(t, CostModel{PerRequest: time.Millisecond}, TCPCost(time.Millisecond, 0))
	assert.Equal(t, time.Millisecond+21*time.Microsecond+10*2*time.Microsecond, c.Cost(Holding, 10))
	assert.Equal(t, time.Millisecond+21*time.Microsecond+16*125*time.Nanosecond, c.Cost(Coil, 16))
}

func TestASCIICost(t *testing.T) {
	// 9600 baud 7E1 (the ASCII default): 10 bits a character.
	c := ASCIICost(9600, 7, 1, 1)
	char := time.Second * 10 / 9600
	// Request ':' + 2×(address, function, address (2), quantity (2), LRC)
	// + CR LF = 17 characters; response overhead ':' + 2×(address,
	// function, byte count, LRC) + CR LF = 11; no silence between frames.
	assert.InDelta(t, float64(28*char), float64(c.PerRequest), float64(time.Microsecond))
	assert.InDelta(t, float64(4*char), float64(c.PerRegister), float64(time.Microsecond))
	assert.InDelta(t, float64(char/4), float64(c.PerBit), float64(time.Microsecond))
	// A 10-register read: 28 + 40 characters.
	assert.InDelta(t, float64(68*char), float64(c.Cost(Holding, 10)), float64(time.Microsecond))
	// 8N1 is 10 bits too; 7N2 likewise; 8E1 is 11.
	assert.Equal(t, c, ASCIICost(9600, 8, 0, 1))
	assert.Equal(t, c, ASCIICost(9600, 7, 0, 2))
	char = time.Second * 11 / 19200
	assert.InDelta(t, float64(28*char), float64(ASCIICost(19200, 8, 1, 1).PerRequest), float64(time.Microsecond))
	// Invalid arguments fall back to 19200 7E1.
	assert.Equal(t, ASCIICost(19200, 7, 1, 1), ASCIICost(0, 0, -1, 0))
	// At the same line settings a register costs twice what it costs on
	// RTU, and a request more.
	rtu := RTUCost(9600, 7, 1, 1)
	assert.InDelta(t, float64(2*rtu.PerRegister), float64(c.PerRegister), 2)
	assert.Greater(t, c.PerRequest, rtu.PerRequest)
}

func TestEndpointCost(t *testing.T) {
	for url, want := range map[string]CostModel{
		"ascii:///dev/ttyUSB0?speed=9600":                          ASCIICost(9600, 7, 1, 1),
		"asciiovertcp://gw:4001?speed=9600&parity=none":            ASCIICost(9600, 7, 0, 2),
		"rtu:///dev/ttyUSB0?speed=9600":                            RTUCost(9600, 8, 1, 1),
		"rtuovertcp://gw:4001?speed=38400&parity=none":             RTUCost(38400, 8, 0, 2),
		"tcp://10.0.0.1":                                           TCPCost(time.Millisecond, 1.25e6),
		"ascii:///dev/ttyUSB0?data_bits=8&parity=none&stop_bits=1": ASCIICost(19200, 8, 0, 1),
	} {
		ep, err := ParseURL(url)
		require.NoError(t, err, url)
		assert.Equal(t, want, EndpointCost(ep), url)
	}
	// The planner of an ASCII device joins across shorter holes than on
	// RTU: a hole is worth reading while it costs less than a request.
	asciiC, rtuC := ASCIICost(9600, 7, 1, 1), RTUCost(9600, 8, 1, 1)
	points := []Point{
		{Name: "a", Table: Holding, Address: 0, Type: Uint16},
		{Name: "b", Table: Holding, Address: 9, Type: Uint16}, // a hole of 8 registers
	}
	assert.Len(t, NewPlanner(Limits{}, rtuC).Plan(points).Requests, 1, "RTU: 8 registers cost less than a request")
	assert.Len(t, NewPlanner(Limits{}, asciiC).Plan(points).Requests, 2, "ASCII: 8 registers (32 characters) cost more than a request (28)")
}

// TestWireTime: the time a serial request's deadline adds to its timeout
// is the request and its longest reply on the wire, the cost models' own
// figure for a read.
func TestWireTime(t *testing.T) {
	near := func(t *testing.T, want, got time.Duration) {
		t.Helper()
		assert.InDelta(t, float64(want), float64(got), float64(time.Microsecond), "want %v, got %v", want, got)
	}
	ascii := Endpoint{Scheme: SchemeASCII, Address: "/dev/ttyS0", Speed: 4800, DataBits: 7, Parity: ParityEven, StopBits: 1}
	read125 := &request{unit: 1, fc: fcReadHolding, addr: 0, qty: 125}
	w := wireTime(ascii, read125)
	near(t, ASCIICost(4800, 7, 1, 1).Cost(Holding, 125), w)
	// 17 + 11 + 4×125 = 528 characters of 10 bits at 4800 baud: 1.1 s, more
	// than the default timeout of 1 s on its own.
	near(t, 1100*time.Millisecond, w)

	rtu := Endpoint{Scheme: SchemeRTU, Address: "/dev/ttyS0", Speed: 9600, DataBits: 8, Parity: ParityEven, StopBits: 1}
	near(t, RTUCost(9600, 8, 1, 1).Cost(Holding, 125), wireTime(rtu, read125))
	near(t, RTUCost(9600, 8, 1, 1).Cost(Coil, 2000), wireTime(rtu, &request{fc: fcReadCoils, qty: 2000}))
	fast := rtu
	fast.Speed = 115200
	near(t, RTUCost(115200, 8, 1, 1).Cost(Input, 10), wireTime(fast, &request{fc: fcReadInput, qty: 10}))

	// A write of 10 registers: request 8 + 1 + 20 characters with CRC,
	// reply 8, and two silences of 3.5 characters.
	char := rtu.CharTime()
	near(t, 37*char+7*char, wireTime(rtu, &request{fc: fcWriteMultipleRegs, qty: 10, data: make([]byte, 20)}))
	near(t, 16*char+7*char, wireTime(rtu, &request{fc: fcWriteSingleReg, qty: 1}))

	// Through a gateway the line is not known: nothing is added.
	for _, s := range []string{SchemeRTUOverTCP, SchemeASCIIOverTCP, SchemeTCP} {
		ep := rtu
		ep.Scheme = s
		assert.Zero(t, wireTime(ep, read125), s)
	}
}
