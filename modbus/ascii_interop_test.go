package modbus_test

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/internal/pymodbus"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// TestInteropPymodbusASCII: our client, on ASCII framing (7E1), against
// pymodbus's ASCII framer on a socat pseudo-terminal pair: every type and
// word order read exactly, writes land (checkInterop).
func TestInteropPymodbusASCII(t *testing.T) {
	srv := pymodbus.StartASCII(t, pymodbusSetup)
	require.Contains(t, srv.URL, "ascii://")
	checkInterop(t, modbus.ClientConfig{URL: srv.URL, Timeout: time.Second})
}

// TestInteropPymodbusASCIIClient: pymodbus's ASCII client (a master nobody
// here wrote) reads and writes modbustest's ASCII server on a
// pseudo-terminal: the registers it gets are the encodings worked out by
// hand, its writes change the server's values, and an unmapped address
// answers Illegal Data Address.
func TestInteropPymodbusASCIIClient(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("modbustest.OpenPTY is Linux only")
	}
	pymodbus.Need(t)
	m, path, closePTY, err := modbustest.OpenPTY()
	require.NoError(t, err)
	s, err := modbustest.NewASCIIServer(testProfile(), m, modbustest.WithUnits(3))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close(); closePTY() })
	require.NoError(t, s.Set("voltage", 230.5))                      // float32 0x43668000
	require.NoError(t, s.Set("setpoint", 21.5))                      // int16 215 at scale 0.1
	require.NoError(t, s.Set("counter", uint64(0x0102030405060708))) // uint64, low word first
	require.NoError(t, s.Set("relay", true))
	require.NoError(t, s.Set("alarm", true))

	out := pymodbus.RunClient(t, "ascii", path, `
rr = client.read_holding_registers(100, 5, slave=3)
out(op='holding', error=rr.isError(), registers=getattr(rr, 'registers', None))
rr = client.read_input_registers(0, 2, slave=3)
out(op='input', error=rr.isError(), registers=getattr(rr, 'registers', None))
rr = client.read_coils(5, 1, slave=3)
out(op='coil', error=rr.isError(), bits=getattr(rr, 'bits', [None])[:1])
rr = client.read_discrete_inputs(7, 1, slave=3)
out(op='discrete', error=rr.isError(), bits=getattr(rr, 'bits', [None])[:1])
rr = client.read_holding_registers(300, 1, slave=3)
out(op='unmapped', error=rr.isError(), code=getattr(rr, 'exception_code', None))
wr = client.write_register(100, 195, slave=3)
out(op='write_register', error=wr.isError())
wr = client.write_coil(5, False, slave=3)
out(op='write_coil', error=wr.isError())
`)
	type line struct {
		Op        string
		Error     bool
		Registers []uint16
		Bits      []bool
		Code      int
	}
	got := map[string]line{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var v line
		require.NoError(t, json.Unmarshal([]byte(l), &v), l)
		got[v.Op] = v
	}
	assert.Equal(t, line{Op: "holding", Registers: []uint16{215, 0x0708, 0x0506, 0x0304, 0x0102}}, got["holding"])
	assert.Equal(t, line{Op: "input", Registers: []uint16{0x4366, 0x8000}}, got["input"])
	assert.Equal(t, line{Op: "coil", Bits: []bool{true}}, got["coil"])
	assert.Equal(t, line{Op: "discrete", Bits: []bool{true}}, got["discrete"])
	assert.Equal(t, line{Op: "unmapped", Error: true, Code: 2}, got["unmapped"], "Illegal Data Address")
	assert.Equal(t, line{Op: "write_register"}, got["write_register"])
	assert.Equal(t, line{Op: "write_coil"}, got["write_coil"])
	v, err := s.Value("setpoint")
	require.NoError(t, err)
	assert.InDelta(t, 19.5, v.Float(), 1e-9)
	v, err = s.Value("relay")
	require.NoError(t, err)
	assert.True(t, bridge.Bool(false).Equal(v))
	for _, r := range s.Requests() {
		assert.Equal(t, uint8(3), r.Unit)
	}
}
