package main

import (
	"io"
	"net"

	"github.com/m2mbridge/m2mbridge/internal/testline"
	"github.com/m2mbridge/m2mbridge/modbus"
)

// emulatedLine makes a pseudo-terminal that behaves as a serial line to a
// device at speed, parity and stop bits: bytes reach the simulator only
// from a client at those settings, and a client at others gets what a
// mismatched UART would make of them (package testline). It returns the
// simulator's end, the device a client opens, and what closes both.
func emulatedLine(speed int, parity modbus.Parity, stopBits int) (io.ReadWriteCloser, string, func() error, error) {
	sim, dev := net.Pipe()
	l, err := testline.Open(dev, testline.Settings{Speed: speed, Parity: parity, StopBits: stopBits})
	if err != nil {
		sim.Close()
		dev.Close()
		return nil, "", nil, err
	}
	return sim, l.Path(), l.Close, nil
}
