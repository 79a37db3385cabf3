package modbus

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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
