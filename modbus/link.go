package modbus

import (
	"encoding/binary"
	"sync/atomic"

	upstream "github.com/simonvetter/modbus"
)

// link is one open connection of a [Client]: the upstream client (for the
// MBAP transports tcp, tcp+tls and udp, which carry transaction ids) or the
// adapter's own serial-line transport, RTU or ASCII (see lineConn). Requests are serialised by the
// Client; abort may be called concurrently with a request.
type link interface {
	readRegisters(unit, fc uint8, addr, qty uint16) ([]uint16, error)
	readBits(unit, fc uint8, addr, qty uint16) ([]bool, error)
	writeRegisters(unit uint8, addr uint16, values []uint16) error
	writeCoils(unit uint8, addr uint16, values []bool) error
	// abort makes the request in progress return as soon as the transport
	// allows, and the link unusable. It reports whether it could: the
	// upstream client cannot be interrupted (its socket is not reachable and
	// its Close waits for the request), so its requests run to their Timeout.
	abort() bool
	close() error
}

// upstreamLink is the upstream client, with the unit id it was last set to.
type upstreamLink struct {
	mc   *upstream.ModbusClient
	unit uint8
}

func (l *upstreamLink) setUnit(unit uint8) {
	if l.unit != unit {
		_ = l.mc.SetUnitId(unit)
		l.unit = unit
	}
}

func (l *upstreamLink) readRegisters(unit, fc uint8, addr, qty uint16) ([]uint16, error) {
	l.setUnit(unit)
	rt := upstream.HOLDING_REGISTER
	if fc == fcReadInput {
		rt = upstream.INPUT_REGISTER
	}
	return l.mc.ReadRegisters(addr, qty, rt)
}

func (l *upstreamLink) readBits(unit, fc uint8, addr, qty uint16) ([]bool, error) {
	l.setUnit(unit)
	if fc == fcReadCoils {
		return l.mc.ReadCoils(addr, qty)
	}
	return l.mc.ReadDiscreteInputs(addr, qty)
}

func (l *upstreamLink) writeRegisters(unit uint8, addr uint16, values []uint16) error {
	l.setUnit(unit)
	if len(values) == 1 {
		return l.mc.WriteRegister(addr, values[0])
	}
	return l.mc.WriteRegisters(addr, values)
}

func (l *upstreamLink) writeCoils(unit uint8, addr uint16, values []bool) error {
	l.setUnit(unit)
	if len(values) == 1 {
		return l.mc.WriteCoil(addr, values[0])
	}
	return l.mc.WriteCoils(addr, values)
}

func (l *upstreamLink) abort() bool  { return false }
func (l *upstreamLink) close() error { return l.mc.Close() }

// lineLink is the adapter's own serial-line transport (RTU or ASCII
// framing) as a link.
type lineLink struct {
	c       *lineConn
	aborted atomic.Bool
}

func (l *lineLink) readRegisters(unit, fc uint8, addr, qty uint16) ([]uint16, error) {
	data, err := l.c.exchange(&request{unit: unit, fc: fc, addr: addr, qty: qty})
	if err != nil {
		return nil, err
	}
	return registersOf(data), nil
}

func (l *lineLink) readBits(unit, fc uint8, addr, qty uint16) ([]bool, error) {
	data, err := l.c.exchange(&request{unit: unit, fc: fc, addr: addr, qty: qty})
	if err != nil {
		return nil, err
	}
	return bitsOf(data, qty), nil
}

func (l *lineLink) writeRegisters(unit uint8, addr uint16, values []uint16) error {
	req := &request{unit: unit, fc: fcWriteSingleReg, addr: addr}
	if len(values) == 1 {
		req.qty = values[0]
	} else {
		req.fc, req.qty = fcWriteMultipleRegs, uint16(len(values))
		for _, v := range values {
			req.data = binary.BigEndian.AppendUint16(req.data, v)
		}
	}
	_, err := l.c.exchange(req)
	return err
}

func (l *lineLink) writeCoils(unit uint8, addr uint16, values []bool) error {
	req := &request{unit: unit, fc: fcWriteSingleCoil, addr: addr}
	if len(values) == 1 {
		if values[0] {
			req.qty = 0xFF00 // Application Protocol 6.5: ON is 0xFF00
		}
	} else {
		req.fc, req.qty = fcWriteMultipleCoils, uint16(len(values))
		req.data = make([]byte, (len(values)+7)/8)
		for i, v := range values {
			if v {
				req.data[i/8] |= 1 << (i % 8)
			}
		}
	}
	_, err := l.c.exchange(req)
	return err
}

func (l *lineLink) abort() bool {
	l.aborted.Store(true)
	l.c.port.abort()
	return true
}

func (l *lineLink) close() error { return l.c.port.Close() }
