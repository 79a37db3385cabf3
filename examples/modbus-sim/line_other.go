//go:build !linux

package main

import (
	"errors"
	"io"

	"github.com/m2mbridge/m2mbridge/modbus"
)

// emulatedLine needs Linux, where a pseudo-terminal's settings can be read
// from its master side (package testline).
func emulatedLine(int, modbus.Parity, int) (io.ReadWriteCloser, string, func() error, error) {
	return nil, "", nil, errors.New("-pty with -speed or -parity (an emulated line) works on Linux only")
}
