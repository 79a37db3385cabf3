package modbus

import (
	"encoding/binary"
)

// link is one open connection of a [Client]: this package's own MBAP
// transport (tcp, tcp+tls, udp; see mbapConn) or its own serial-line
// transport, RTU or ASCII framing (see lineConn). Requests are serialised by
// the Client; abort may be called concurrently with a request.
type link interface {
	readRegisters(unit, fc uint8, addr, qty uint16) ([]uint16, error)
	readBits(unit, fc uint8, addr, qty uint16) ([]bool, error)
	writeRegisters(unit uint8, addr uint16, values []uint16) error
	writeCoils(unit uint8, addr uint16, values []bool) error
	// abort makes the request in progress return as soon as the transport
	// allows (at once on a socket, within one 2 ms poll on a serial port),
	// and the link unusable.
	abort()
	close() error
}

// transport is what a link sends requests over: mbapConn or lineConn.
type transport interface {
	// exchange sends req and returns the data of its reply (see
	// [request.check]), valid until the next call.
	exchange(req *request) ([]byte, error)
	abort()
	close() error
}

// reqLink is a link over one of this package's transports. Its request is
// reused: requests on a link are serialised.
type reqLink struct {
	t   transport
	req request
}

func (l *reqLink) readRegisters(unit, fc uint8, addr, qty uint16) ([]uint16, error) {
	l.req = request{unit: unit, fc: fc, addr: addr, qty: qty}
	data, err := l.t.exchange(&l.req)
	if err != nil {
		return nil, err
	}
	return registersOf(data), nil
}

func (l *reqLink) readBits(unit, fc uint8, addr, qty uint16) ([]bool, error) {
	l.req = request{unit: unit, fc: fc, addr: addr, qty: qty}
	data, err := l.t.exchange(&l.req)
	if err != nil {
		return nil, err
	}
	return bitsOf(data, qty), nil
}

func (l *reqLink) writeRegisters(unit uint8, addr uint16, values []uint16) error {
	l.req = request{unit: unit, fc: fcWriteSingleReg, addr: addr}
	if len(values) == 1 {
		l.req.qty = values[0]
	} else {
		l.req.fc, l.req.qty = fcWriteMultipleRegs, uint16(len(values))
		for _, v := range values {
			l.req.data = binary.BigEndian.AppendUint16(l.req.data, v)
		}
	}
	_, err := l.t.exchange(&l.req)
	return err
}

func (l *reqLink) writeCoils(unit uint8, addr uint16, values []bool) error {
	l.req = request{unit: unit, fc: fcWriteSingleCoil, addr: addr}
	if len(values) == 1 {
		if values[0] {
			l.req.qty = 0xFF00 // Application Protocol 6.5: ON is 0xFF00
		}
	} else {
		l.req.fc, l.req.qty = fcWriteMultipleCoils, uint16(len(values))
		l.req.data = make([]byte, (len(values)+7)/8)
		for i, v := range values {
			if v {
				l.req.data[i/8] |= 1 << (i % 8)
			}
		}
	}
	_, err := l.t.exchange(&l.req)
	return err
}

func (l *reqLink) abort()       { l.t.abort() }
func (l *reqLink) close() error { return l.t.close() }
