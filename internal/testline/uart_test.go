package testline

import (
	"math/bits"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/m2mbridge/m2mbridge/modbus"
)

func TestReceive(t *testing.T) {
	data := []byte{0x01, 0x03, 0x00, 0x00, 0x00, 0x01, 0x84, 0x0A, 0xFF, 0x55}
	s := func(speed int, p modbus.Parity, stop int) Settings {
		return Settings{Speed: speed, Parity: p, StopBits: stop}
	}
	for _, tt := range []struct {
		name   string
		tx, rx Settings
	}{
		{"8N1", s(9600, modbus.ParityNone, 1), s(9600, modbus.ParityNone, 1)},
		{"8E1", s(19200, modbus.ParityEven, 1), s(19200, modbus.ParityEven, 1)},
		{"8O1", s(115200, modbus.ParityOdd, 1), s(115200, modbus.ParityOdd, 1)},
		{"8N2 to 8N1", s(9600, modbus.ParityNone, 2), s(9600, modbus.ParityNone, 1)},
		{"8N1 to 8N2", s(9600, modbus.ParityNone, 1), s(9600, modbus.ParityNone, 2)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, data, Receive(tt.tx, tt.rx, data))
		})
	}

	// Odd parity sent, even expected: every character fails its parity
	// check and reads as 0.
	got := Receive(s(9600, modbus.ParityOdd, 1), s(9600, modbus.ParityEven, 1), data)
	assert.Equal(t, make([]byte, len(data)), got)

	// 8N2 into 8E1: the first stop bit (1) is taken for the parity bit, so
	// the characters with an odd number of ones pass and the others read 0.
	got = Receive(s(9600, modbus.ParityNone, 2), s(9600, modbus.ParityEven, 1), data)
	want := make([]byte, len(data))
	for i, c := range data {
		if bits.OnesCount8(c)%2 == 1 {
			want[i] = c
		}
	}
	assert.Equal(t, want, got)

	// A wrong speed garbles: twice as fast reads more characters than were
	// sent, half as fast fewer; neither gives the bytes back.
	fast := Receive(s(9600, modbus.ParityNone, 2), s(19200, modbus.ParityNone, 2), data)
	slow := Receive(s(19200, modbus.ParityEven, 1), s(9600, modbus.ParityEven, 1), data)
	assert.NotEqual(t, data, fast)
	assert.Greater(t, len(fast), len(data))
	assert.NotEqual(t, data, slow)
	assert.Less(t, len(slow), len(data))
	for _, sp := range []int{19200, 38400, 115200} {
		assert.NotEqual(t, data, Receive(s(9600, modbus.ParityEven, 1), s(sp, modbus.ParityEven, 1), data), sp)
	}
	assert.Nil(t, Receive(s(9600, modbus.ParityNone, 1), s(9600, modbus.ParityNone, 1), nil))
}

func FuzzReceive(f *testing.F) {
	f.Add([]byte{1, 3, 0, 0}, uint8(0), uint8(1), uint32(9600), uint32(19200))
	f.Fuzz(func(t *testing.T, data []byte, p1, p2 uint8, sp1, sp2 uint32) {
		ps := []modbus.Parity{modbus.ParityNone, modbus.ParityEven, modbus.ParityOdd}
		tx := Settings{Speed: int(sp1%200000) + 300, Parity: ps[p1%3]}
		rx := Settings{Speed: int(sp2%200000) + 300, Parity: ps[p2%3]}
		if len(data) > 64 {
			data = data[:64]
		}
		got := Receive(tx, rx, data)
		// At most one character per start edge, and a start edge is a
		// falling edge of the sender's wave: at most 5 per character.
		assert.LessOrEqual(t, len(got), 5*len(data))
		if tx == rx {
			assert.Equal(t, len(data), len(got))
		}
	})
}
