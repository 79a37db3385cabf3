package modbustest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goburrow/serial"

	"github.com/m2mbridge/m2mbridge/modbus"
)

// OpenSerial opens the serial device ep names (an rtu:// or ascii:// URL
// parsed with [modbus.ParseURL]: its path, speed, parity, data and stop
// bits) for [NewRTUServer] or [NewASCIIServer] to serve a device on: a
// USB-RS485 adapter, or one end of a pseudo-terminal pair made by socat.
// The port has read deadlines (so the ASCII inter-character timeout
// applies), and Close interrupts a read in progress.
func OpenSerial(ep modbus.Endpoint) (io.ReadWriteCloser, error) {
	if ep.Scheme != modbus.SchemeRTU && ep.Scheme != modbus.SchemeASCII {
		return nil, fmt.Errorf("modbustest: OpenSerial of a %s endpoint (want rtu or ascii)", ep.Scheme)
	}
	parity := map[modbus.Parity]string{modbus.ParityNone: "N", modbus.ParityEven: "E", modbus.ParityOdd: "O"}[ep.Parity]
	p, err := serial.Open(&serial.Config{Address: ep.Address, BaudRate: ep.Speed, DataBits: ep.DataBits,
		StopBits: ep.StopBits, Parity: parity, Timeout: serialPoll})
	if err != nil {
		return nil, fmt.Errorf("modbustest: %s: %w", ep.Address, err)
	}
	return &serialPort{p: p}, nil
}

// serialPoll is how long one read of the port waits: it bounds how soon
// Close and a deadline end a read.
const serialPoll = 20 * time.Millisecond

// serialPort is a serial port with blocking reads, read deadlines and a
// Close that ends a read in progress.
type serialPort struct {
	p        serial.Port
	deadline atomic.Pointer[time.Time]
	// mu is held (shared) by each poll of Read and by Write, and
	// (exclusively) by Close: the serial package's port must not be closed
	// under a call.
	mu     sync.RWMutex
	closed bool
}

func (s *serialPort) Read(b []byte) (int, error) {
	for {
		if d := s.deadline.Load(); d != nil && !d.IsZero() && !time.Now().Before(*d) {
			return 0, os.ErrDeadlineExceeded
		}
		n, err := s.poll(b)
		if errors.Is(err, serial.ErrTimeout) {
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (s *serialPort) poll(b []byte) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, os.ErrClosed
	}
	return s.p.Read(b)
}

func (s *serialPort) Write(b []byte) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, os.ErrClosed
	}
	return s.p.Write(b)
}

// SetReadDeadline makes reads return os.ErrDeadlineExceeded from t on; the
// zero time waits for ever.
func (s *serialPort) SetReadDeadline(t time.Time) error {
	s.deadline.Store(&t)
	return nil
}

func (s *serialPort) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.p.Close()
}
