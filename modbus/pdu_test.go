package modbus

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRequestCheck: a reply is taken only when it answers its request; any
// other frame is a mismatch (discarded, never decoded).
func TestRequestCheck(t *testing.T) {
	read := &request{unit: 7, fc: fcReadHolding, addr: 100, qty: 2}
	coils := &request{unit: 7, fc: fcReadCoils, addr: 0, qty: 10}
	write := &request{unit: 7, fc: fcWriteSingleReg, addr: 5, qty: 42}
	tests := []struct {
		name     string
		req      *request
		unit     uint8
		pdu      []byte
		data     []byte
		mismatch bool
		code     ExceptionCode
	}{
		{"read reply", read, 7, []byte{3, 4, 1, 2, 3, 4}, []byte{1, 2, 3, 4}, false, 0},
		{"other unit", read, 8, []byte{3, 4, 1, 2, 3, 4}, nil, true, 0},
		{"other function", read, 7, []byte{4, 4, 1, 2, 3, 4}, nil, true, 0},
		{"other byte count", read, 7, []byte{3, 2, 1, 2}, nil, true, 0},
		{"byte count lies", read, 7, []byte{3, 4, 1, 2}, nil, true, 0},
		{"exception", read, 7, []byte{0x83, 2}, nil, false, IllegalDataAddress},
		{"exception of another function", read, 7, []byte{0x84, 2}, nil, true, 0},
		{"exception of another unit", read, 255, []byte{0x83, 2}, nil, true, 0},
		{"bits", coils, 7, []byte{1, 2, 0xFF, 0x03}, []byte{0xFF, 0x03}, false, 0},
		{"bits, wrong count", coils, 7, []byte{1, 1, 0xFF}, nil, true, 0},
		{"write echo", write, 7, []byte{6, 0, 5, 0, 42}, nil, false, 0},
		{"echo of another value", write, 7, []byte{6, 0, 5, 0, 43}, nil, true, 0},
		{"short", read, 7, []byte{3}, nil, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := tt.req.check(tt.unit, tt.pdu)
			var mm mismatch
			switch {
			case tt.mismatch:
				require.True(t, errors.As(err, &mm), "%v", err)
			case tt.code != 0:
				c, ok := ExceptionCodeOf(err)
				require.True(t, ok, "%v", err)
				assert.Equal(t, tt.code, c)
			default:
				require.NoError(t, err)
				assert.Equal(t, tt.data, data)
			}
		})
	}
}

func TestCRC16(t *testing.T) {
	// Serial Line V1.02, 6.2.2 example frame: 02 07 → CRC 0x1241 (41 12 on the wire).
	assert.Equal(t, uint16(0x1241), crc16([]byte{0x02, 0x07}))
}
