package modbus

import (
	"encoding/binary"
	"fmt"
)

// request is one Modbus request as this package's own transports send it:
// the unit it goes to and its PDU fields (Modbus Application Protocol
// V1.1b3, 6). It knows what a reply must look like to answer it, so that a
// reply to another request is never taken for its own.
type request struct {
	unit uint8
	fc   uint8
	addr uint16
	qty  uint16 // registers or bits; for FC 05 and 06 the value written
	data []byte // FC 15/16: the values, as sent
}

// appendPDU appends the request PDU: function, address, quantity (or the
// value for FC 05/06) and, for FC 15/16, the byte count and values.
func (r *request) appendPDU(b []byte) []byte {
	b = append(b, r.fc)
	b = binary.BigEndian.AppendUint16(b, r.addr)
	b = binary.BigEndian.AppendUint16(b, r.qty)
	if r.fc == fcWriteMultipleCoils || r.fc == fcWriteMultipleRegs {
		b = append(b, byte(len(r.data)))
		b = append(b, r.data...)
	}
	return b
}

// dataBytes is the byte count a read reply must carry: 2 per register
// (FC 03/04, Application Protocol 6.3/6.4), one per 8 bits rounded up
// (FC 01/02, 6.1/6.2).
func (r *request) dataBytes() int {
	switch r.fc {
	case fcReadHolding, fcReadInput:
		return 2 * int(r.qty)
	case fcReadCoils, fcReadDiscrete:
		return (int(r.qty) + 7) / 8
	}
	return 0
}

// replyLen returns the length of a reply PDU (function code onwards) from
// its first two bytes, or -1 when the function code is not one a reply to
// this package's requests can carry. It is how a framing without lengths
// (RTU) knows where a frame ends.
func replyLen(fc, next byte) int {
	switch {
	case fc&0x80 != 0:
		return 2 // function|0x80, exception code
	case fc == fcReadCoils || fc == fcReadDiscrete || fc == fcReadHolding || fc == fcReadInput:
		return 2 + int(next) // function, byte count, data
	case fc == fcWriteSingleCoil || fc == fcWriteSingleReg || fc == fcWriteMultipleCoils || fc == fcWriteMultipleRegs:
		return 5 // function, address, value or quantity
	}
	return -1
}

// mismatch says why a reply PDU does not answer a request.
type mismatch string

func (m mismatch) Error() string { return "reply does not match the request: " + string(m) }

// check checks that pdu (function code onwards), received from unit,
// answers r. It returns the data of a read reply (without its byte count),
// an [*ExceptionError] for an exception reply, or a mismatch error for a
// reply to some other request (another unit, function, byte count, or a
// write echo of another address or value): the caller discards such a
// reply and does not decode it.
func (r *request) check(unit uint8, pdu []byte) ([]byte, error) {
	if len(pdu) < 2 {
		return nil, mismatch("short")
	}
	fc := pdu[0]
	if fc == r.fc|0x80 {
		// Serial Line V1.02 2.2: only the addressed unit answers.
		// (Unlike upstream, gateway exceptions from unit 255 are not
		// accepted: a unit id that is not the request's is not its reply.)
		if unit != r.unit {
			return nil, mismatch(fmt.Sprintf("exception from unit %d, asked unit %d", unit, r.unit))
		}
		return nil, &ExceptionError{Unit: unit, Function: r.fc, Code: ExceptionCode(pdu[1])}
	}
	if unit != r.unit {
		return nil, mismatch(fmt.Sprintf("unit %d, asked unit %d", unit, r.unit))
	}
	if fc != r.fc {
		return nil, mismatch(fmt.Sprintf("function 0x%02x, asked 0x%02x", fc, r.fc))
	}
	switch fc {
	case fcReadCoils, fcReadDiscrete, fcReadHolding, fcReadInput:
		want := r.dataBytes()
		if int(pdu[1]) != want || len(pdu) != 2+want {
			return nil, mismatch(fmt.Sprintf("%d data bytes, asked %d", pdu[1], want))
		}
		return pdu[2:], nil
	default: // writes echo the address and the value or quantity
		if len(pdu) != 5 || binary.BigEndian.Uint16(pdu[1:]) != r.addr || binary.BigEndian.Uint16(pdu[3:]) != r.qty {
			return nil, mismatch("write echo of another address or value")
		}
		return nil, nil
	}
}

// crc16 is the Modbus RTU CRC (Modbus over Serial Line V1.02, 6.2.2):
// polynomial 0xA001 (reflected 0x8005), initial value 0xFFFF, sent low byte
// first.
func crc16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// registersOf decodes big-endian registers.
func registersOf(data []byte) []uint16 {
	regs := make([]uint16, len(data)/2)
	for i := range regs {
		regs[i] = binary.BigEndian.Uint16(data[2*i:])
	}
	return regs
}

// bitsOf decodes qty bits, least significant bit of the first byte first
// (Application Protocol 6.1).
func bitsOf(data []byte, qty uint16) []bool {
	bits := make([]bool, qty)
	for i := range bits {
		bits[i] = data[i/8]&(1<<(i%8)) != 0
	}
	return bits
}
