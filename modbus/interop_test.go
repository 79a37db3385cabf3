package modbus_test

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// Interop tests run the adapter against software nobody here wrote:
// pymodbus (TCP and, on a socat pseudo-terminal pair, RTU) and mbpoll. They
// skip when a peer is missing, unless M2MB_INTEROP=1, where that fails.

func needPeer(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("M2MB_INTEROP") == "1" {
		t.Fatalf("interop peer %s missing (M2MB_INTEROP=1): %v", what, err)
	}
	t.Skipf("interop peer %s not available: %v", what, err)
}

// pymodbusSetup fills the pymodbus datastore with known values packed with
// Python's struct module (an encoder independent of ours).
const pymodbusSetup = `
hr = [0] * 40
hr[0:1] = regs('H', 1234)
hr[1:2] = regs('h', -2)
hr[2:4] = regs('f', 230.5)
hr[4:6] = list(reversed(regs('f', -17.25)))              # low word first
hr[6:8] = regs('i', -123456)
hr[8:12] = regs('Q', 0x0123456789ABCDEF)
hr[12:16] = list(reversed(regs('d', math.pi)))           # low word first
hr[16] = int.from_bytes(struct.pack('<H', 0x1234), 'big') # little-endian bytes
hr[17:21] = [int.from_bytes(b'HELLO-M2'[i:i+2], 'big') for i in range(0, 8, 2)]
hr[21] = 0b1010
hr[22:26] = regs('q', -(2**62) - 3)
hr[30:32] = list(reversed(regs('i', -7)))                # low word first
hr[34] = regs('h', 215)[0]                                # 21.5 at scale 0.1
ir = [0] * 10
ir[0:2] = regs('I', 123456)                               # scaled by 0.01
ir[2:4] = [int.from_bytes(struct.pack('<f', 1.5)[i:i+2], 'big') for i in (0, 2)]  # low word first, little-endian bytes: the wire carries the float's bytes reversed
co = [True, False, True, True, False, False, False, True]
di = [False, True, True, False]
`

// interopPoints are the points of the pymodbus datastore, with the values
// they must decode to.
func interopPoints() ([]modbus.Point, map[string]bridge.Value) {
	points := []modbus.Point{
		{Name: "u16", Table: modbus.Holding, Address: 0, Type: modbus.Uint16},
		{Name: "i16", Table: modbus.Holding, Address: 1, Type: modbus.Int16},
		{Name: "f32", Table: modbus.Holding, Address: 2, Type: modbus.Float32},
		{Name: "f32_low_first", Table: modbus.Holding, Address: 4, Type: modbus.Float32, WordOrder: modbus.LowFirst, Writable: true},
		{Name: "i32", Table: modbus.Holding, Address: 6, Type: modbus.Int32, Writable: true},
		{Name: "u64", Table: modbus.Holding, Address: 8, Type: modbus.Uint64},
		{Name: "f64_low_first", Table: modbus.Holding, Address: 12, Type: modbus.Float64, WordOrder: modbus.LowFirst},
		{Name: "u16_little", Table: modbus.Holding, Address: 16, Type: modbus.Uint16, ByteOrder: modbus.LittleEndian},
		{Name: "text", Table: modbus.Holding, Address: 17, Type: modbus.String, Length: 4},
		{Name: "bits", Table: modbus.Holding, Address: 21, Type: modbus.Uint16},
		{Name: "bit1", Table: modbus.Holding, Address: 21, Type: modbus.Bool, Bit: modbus.BitOf(1)},
		{Name: "bit2", Table: modbus.Holding, Address: 21, Type: modbus.Bool, Bit: modbus.BitOf(2), Writable: true},
		{Name: "i64", Table: modbus.Holding, Address: 22, Type: modbus.Int64},
		{Name: "i32_low_first", Table: modbus.Holding, Address: 30, Type: modbus.Int32, WordOrder: modbus.LowFirst, Writable: true},
		{Name: "setpoint", Table: modbus.Holding, Address: 34, Type: modbus.Int16, Scale: 0.1, Unit: "°C",
			Writable: true, Min: modbus.Limit(0), Max: modbus.Limit(80)},
		{Name: "energy", Table: modbus.Input, Address: 0, Type: modbus.Uint32, Scale: 0.01, Unit: "kWh"},
		{Name: "f32_swapped", Table: modbus.Input, Address: 2, Type: modbus.Float32, WordOrder: modbus.LowFirst, ByteOrder: modbus.LittleEndian},
		{Name: "coil0", Table: modbus.Coil, Address: 0, Type: modbus.Bool},
		{Name: "coil1", Table: modbus.Coil, Address: 1, Type: modbus.Bool, Writable: true},
		{Name: "coil7", Table: modbus.Coil, Address: 7, Type: modbus.Bool},
		{Name: "di1", Table: modbus.Discrete, Address: 1, Type: modbus.Bool},
		{Name: "di3", Table: modbus.Discrete, Address: 3, Type: modbus.Bool},
	}
	want := map[string]bridge.Value{
		"u16": bridge.Uint(1234), "i16": bridge.Int(-2), "f32": bridge.Float(230.5),
		"f32_low_first": bridge.Float(-17.25), "i32": bridge.Int(-123456),
		"u64": bridge.Uint(0x0123456789ABCDEF), "f64_low_first": bridge.Float(math.Pi),
		"u16_little": bridge.Uint(0x1234), "text": bridge.String("HELLO-M2"), "bits": bridge.Uint(10),
		"bit1": bridge.Bool(true), "bit2": bridge.Bool(false), "i64": bridge.Int(-(1 << 62) - 3),
		"i32_low_first": bridge.Int(-7), "setpoint": bridge.Float(21.5),
		"energy": bridge.Float(1234.56), "f32_swapped": bridge.Float(1.5),
		"coil0": bridge.Bool(true), "coil1": bridge.Bool(false), "coil7": bridge.Bool(true),
		"di1": bridge.Bool(true), "di3": bridge.Bool(false),
	}
	return points, want
}

// checkInterop polls the pymodbus datastore with a Device and checks every
// value exactly.
func checkInterop(t *testing.T, conn modbus.ClientConfig) {
	points, want := interopPoints()
	// Polled often enough that the poll after a write comes soon.
	d := newDevice(t, modbus.DeviceConfig{Name: "pymodbus", Conn: conn, Unit: 1, Points: points, Interval: 100 * time.Millisecond})
	rec := runDevice(t, d)
	samples, err := rec.Wait(ctxT(t), len(points))
	require.NoError(t, err)
	got := map[string]bridge.Sample{}
	for _, s := range samples {
		got[s.Point] = s
	}
	for name, w := range want {
		s, ok := got[name]
		if !assert.True(t, ok, "no sample for %s", name) {
			continue
		}
		assert.Equal(t, bridge.Good, s.Quality, "%s: %s", name, s.Reason)
		if name == "energy" {
			assert.InDelta(t, w.Float(), s.Value.Float(), 1e-9, name) // 123456 × 0.01 in float64
			continue
		}
		assert.True(t, w.Equal(s.Value), "%s: want %v (%s), got %v (%s)", name, w, w.Kind(), s.Value, s.Value.Kind())
	}

	// Writes reach the third-party server: the registers hold the words
	// (checked against encodings worked out by hand, not by our encoder),
	// Write answers with the value read back, and the next poll carries it.
	ctx := ctxT(t)
	for _, w := range []struct {
		name  string
		v     bridge.Value
		table modbus.Table
		addr  uint16
		words []uint16 // the registers (holding) after the write
		bits  []bool   // the coils 0 and 1 after the write
	}{
		{name: "f32_low_first", v: bridge.Float(99.75), addr: 4, words: []uint16{0x8000, 0x42C7}}, // 0x42C78000
		{name: "i32", v: bridge.Int(0x12345678), addr: 6, words: []uint16{0x1234, 0x5678}},
		{name: "i32_low_first", v: bridge.Int(-123456), addr: 30, words: []uint16{0x1DC0, 0xFFFE}}, // 0xFFFE1DC0
		{name: "setpoint", v: bridge.Float(42.5), addr: 34, words: []uint16{425}},
		{name: "bit2", v: bridge.Bool(true), addr: 21, words: []uint16{0b1110}}, // bits 1 and 3 kept
		{name: "coil1", v: bridge.Bool(true), table: modbus.Coil, bits: []bool{true, true}},
	} {
		s, err := d.Write(ctx, w.name, w.v)
		require.NoError(t, err, w.name)
		assert.Equal(t, bridge.Good, s.Quality, w.name)
		assert.Equal(t, "pymodbus", s.Source, w.name)
		assert.True(t, w.v.Equal(s.Value) || w.v.Float() == s.Value.Float(), "%s: read back %v, wrote %v", w.name, s.Value, w.v)
		if w.table == modbus.Coil {
			bits, err := d.Client().ReadBits(ctx, 1, modbus.Coil, 0, 2)
			require.NoError(t, err)
			assert.Equal(t, w.bits, bits, w.name)
		} else {
			regs, err := d.Client().ReadRegisters(ctx, 1, modbus.Holding, w.addr, uint16(len(w.words)))
			require.NoError(t, err)
			assert.Equal(t, w.words, regs, "%s: registers %#04x", w.name, regs)
		}
		next := waitFor(t, rec, func(p bridge.Sample) bool { return p.Point == w.name && p.Time.After(s.Time) })
		assert.True(t, s.Value.Equal(next.Value), "%s: next poll %v, read back %v", w.name, next.Value, s.Value)
	}
	// Refused before anything is sent: the register keeps 42.5.
	_, err = d.Write(ctx, "setpoint", bridge.Float(95))
	assert.ErrorIs(t, err, bridge.ErrOutOfRange)
	assert.EqualError(t, err, "setpoint: 95 is above max 80")
	regs, err := d.Client().ReadRegisters(ctx, 1, modbus.Holding, 34, 1)
	require.NoError(t, err)
	assert.Equal(t, []uint16{425}, regs)
}

func TestInteropPymodbusTCP(t *testing.T) {
	srv := pymodbus.StartTCP(t, pymodbusSetup)
	checkInterop(t, modbus.ClientConfig{URL: srv.URL})
}

func TestInteropPymodbusRTU(t *testing.T) {
	// The line is 8N2, the serial line specification's no-parity format:
	// a Linux pseudo-terminal refuses parity.
	srv := pymodbus.StartRTU(t, pymodbusSetup)
	checkInterop(t, modbus.ClientConfig{URL: srv.URL, Timeout: time.Second})
}

// TestInteropModbusTestRTUOverPTY: our RTU simulator on one end of a socat
// pair, the upstream serial client on the other.
func TestInteropModbusTestRTUOverPTY(t *testing.T) {
	_, err := exec.LookPath("socat")
	needPeer(t, "socat", err)
	a, b, stop, err := modbustest.SocatPTY(ctxT(t), t.TempDir())
	require.NoError(t, err)
	t.Cleanup(stop)
	f, err := os.OpenFile(a, os.O_RDWR, 0)
	require.NoError(t, err)
	p := testProfile()
	s, err := modbustest.NewRTUServer(p, f, modbustest.WithUnits(7))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	require.NoError(t, s.Set("voltage", 231.25))
	d := newDevice(t, modbus.DeviceConfig{Name: "rtu", Unit: 7, Conn: modbus.ClientConfig{URL: "rtu://" + b}, Profile: p,
		Interval: time.Hour})
	rec := runDevice(t, d)
	v := waitFor(t, rec, point("voltage"))
	assert.Equal(t, bridge.Good, v.Quality, v.Reason)
	assert.Equal(t, 231.25, v.Value.Float())
}

// TestInteropMbpoll: mbpoll, a third-party master, reads examples/modbus-sim
// and gets the values the profile says.
func TestInteropMbpoll(t *testing.T) {
	mbpoll, err := exec.LookPath("mbpoll")
	needPeer(t, "mbpoll", err)
	gobin, err := exec.LookPath("go")
	needPeer(t, "go toolchain", err)
	bin := filepath.Join(t.TempDir(), "modbus-sim")
	out, err := exec.Command(gobin, "build", "-o", bin, "../examples/modbus-sim").CombinedOutput()
	require.NoError(t, err, string(out))

	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-profile", "eastron-sdm630",
		"-set", "voltage_l1=230.25", "-set", "frequency=49.875", "-set", "import_energy=1234.5")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stderr).ReadString('\n')
	require.NoError(t, err)
	m := regexp.MustCompile(`tcp://127\.0\.0\.1:(\d+)`).FindStringSubmatch(line)
	require.NotNil(t, m, line)
	port := m[1]

	p, err := modbus.BuiltinProfile("eastron-sdm630")
	require.NoError(t, err)
	for name, want := range map[string]float64{"voltage_l1": 230.25, "frequency": 49.875, "import_energy": 1234.5} {
		pt, ok := p.Point(name)
		require.True(t, ok, name)
		// -t 3:float: input registers as float32; -B: big-endian word order
		// (high word first, as the SDM630 map); -0: 0-based addresses; -1:
		// poll once.
		cmd := exec.Command(mbpoll, "-m", "tcp", "-p", port, "-a", "1", "-t", "3:float", "-B", "-0",
			"-r", fmt.Sprint(pt.Address), "-c", "1", "-1", "127.0.0.1")
		var errb strings.Builder
		cmd.Stderr = &errb
		out, err := cmd.Output()
		require.NoError(t, err, "mbpoll: %s", errb.String())
		m := regexp.MustCompile(`\[` + fmt.Sprint(pt.Address) + `\]:\s+(\S+)`).FindStringSubmatch(string(out))
		require.NotNil(t, m, string(out))
		assert.Equal(t, fmt.Sprint(want), m[1], "%s via mbpoll", name)
	}
}

// TestClientLateReplyOnSerialLine reproduces the late reply on a real serial
// device (a socat pseudo-terminal pair): the simulator answers the first
// request after the client's timeout. The Client's RTU transport waits for
// the late reply and discards it, so later reads get their own answers.
func TestClientLateReplyOnSerialLine(t *testing.T) {
	_, err := exec.LookPath("socat")
	needPeer(t, "socat", err)
	a, b, stop, err := modbustest.SocatPTY(ctxT(t), t.TempDir())
	require.NoError(t, err)
	t.Cleanup(stop)
	f, err := os.OpenFile(a, os.O_RDWR, 0)
	require.NoError(t, err)
	p := &modbus.Profile{Name: "regs", Points: []modbus.Point{
		{Name: "r10", Table: modbus.Holding, Address: 10, Type: modbus.Uint16},
		{Name: "r20", Table: modbus.Holding, Address: 20, Type: modbus.Uint16},
	}}
	s, err := modbustest.NewRTUServer(p, f, modbustest.WithHook(modbustest.First(1, modbustest.Delay(200*time.Millisecond))))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	require.NoError(t, s.Set("r10", 1010))
	require.NoError(t, s.Set("r20", 2020))
	c := newClient(t, modbus.ClientConfig{URL: "rtu://" + b + "?speed=115200", Timeout: 100 * time.Millisecond,
		LateReplyWait: 250 * time.Millisecond, MinBackoff: time.Millisecond})
	ctx := ctxT(t)
	_, err = c.ReadRegisters(ctx, 1, modbus.Holding, 10, 1)
	require.ErrorIs(t, err, modbus.ErrTimeout)
	for i := range 6 {
		addr := uint16(10 + 10*(i%2))
		v, err := c.ReadRegisters(ctx, 1, modbus.Holding, addr, 1)
		require.NoError(t, err, "read %d", i)
		assert.Equal(t, []uint16{addr * 101}, v, "read %d of %d", i, addr)
	}
}
