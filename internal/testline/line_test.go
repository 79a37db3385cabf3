//go:build linux

package testline

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

var profile = &modbus.Profile{Name: "line", Points: []modbus.Point{
	{Name: "v", Table: modbus.Holding, Address: 0, Type: modbus.Uint16},
}}

func serve(t *testing.T, dev Settings) (*Line, *modbustest.Server) {
	t.Helper()
	a, b := net.Pipe()
	srv, err := modbustest.NewRTUServer(profile, a)
	require.NoError(t, err)
	l, err := Open(b, dev)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, l.Close())
		srv.Close()
	})
	require.NoError(t, srv.Set("v", 4711))
	return l, srv
}

func read(t *testing.T, path string, speed int, parity modbus.Parity) ([]uint16, error) {
	t.Helper()
	c, err := modbus.NewClient(modbus.ClientConfig{URL: "rtu://" + path, Speed: speed, Parity: parity, Timeout: 100 * time.Millisecond})
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.ReadRegisters(ctx, 1, modbus.Holding, 0, 1)
}

// TestLine: through the line, a client at the device's settings reads;
// one at another speed or parity times out, and the line reports what it
// saw of the client's settings.
func TestLine(t *testing.T) {
	l, srv := serve(t, Settings{Speed: 19200, Parity: modbus.ParityEven})
	regs, err := read(t, l.Path(), 19200, modbus.ParityEven)
	require.NoError(t, err)
	assert.Equal(t, []uint16{4711}, regs)
	assert.Equal(t, Settings{Speed: 19200, Parity: modbus.ParityEven, StopBits: 1}, l.LastClientSettings())
	assert.Positive(t, l.Passed())
	assert.Zero(t, l.Garbled())

	for _, tt := range []struct {
		speed  int
		parity modbus.Parity
	}{{9600, modbus.ParityEven}, {38400, modbus.ParityEven}, {19200, modbus.ParityOdd}, {19200, modbus.ParityNone}} {
		srv.ResetRequests()
		_, err := read(t, l.Path(), tt.speed, tt.parity)
		require.ErrorIs(t, err, modbus.ErrTimeout, "%d %s", tt.speed, tt.parity)
		want := Settings{Speed: tt.speed, Parity: tt.parity, StopBits: 1}
		if tt.parity == modbus.ParityNone {
			want.StopBits = 2
		}
		assert.Equal(t, want, l.LastClientSettings())
		assert.Empty(t, srv.Requests(), "a garbled request reaches the device as noise, never as a request")
	}
	assert.Positive(t, l.Garbled())

	// And back at the right settings it reads again.
	regs, err = read(t, l.Path(), 19200, modbus.ParityEven)
	require.NoError(t, err)
	assert.Equal(t, []uint16{4711}, regs)
}

// TestLineClose: Close ends the relay's goroutines, with reads in
// progress on both ends, and is idempotent; it closes the device end.
func TestLineClose(t *testing.T) {
	defer goleak.VerifyNone(t)
	a, b := net.Pipe()
	defer a.Close()
	l, err := Open(b, Settings{Speed: 9600, Parity: modbus.ParityNone})
	require.NoError(t, err)
	c, err := OpenRaw(l.Path())
	require.NoError(t, err)
	_, err = c.Write([]byte{1, 3, 0, 0, 0, 1, 0x84, 0x0A}) // at the pty's default speed: garbled, dropped
	require.NoError(t, err)
	require.NoError(t, c.Close())
	require.NoError(t, l.Close())
	require.NoError(t, l.Close())
	_, err = a.Write([]byte{1})
	assert.Error(t, err, "the device end is closed")
}
