package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// m2mBin is the m2m binary the tests run, as a user would (the pattern of
// examples/gateway's tests).
var m2mBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "m2m-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	m2mBin = filepath.Join(dir, "m2m")
	args := []string{"build", "-o", m2mBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building m2m: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// m2m runs the binary to its end and returns its exit code, stdout and
// stderr.
func m2m(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(m2mBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	require.NoError(t, cmd.Start())
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("m2m %q did not exit within 60s", args)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// device is a test device: float32 in both word orders, an int16, a
// uint32 low word first, coils, a writable int16 and float32 (the
// simulator takes writes to every mapped holding register and coil).
var device = &modbus.Profile{Name: "m2m-test", Points: []modbus.Point{
	{Name: "f_high", Table: modbus.Holding, Address: 0, Type: modbus.Float32},
	{Name: "f_low", Table: modbus.Holding, Address: 2, Type: modbus.Float32, WordOrder: modbus.LowFirst},
	{Name: "i16", Table: modbus.Holding, Address: 10, Type: modbus.Int16},
	{Name: "u32_low", Table: modbus.Holding, Address: 12, Type: modbus.Uint32, WordOrder: modbus.LowFirst},
	{Name: "setpoint", Table: modbus.Holding, Address: 20, Type: modbus.Float32},
	{Name: "small", Table: modbus.Holding, Address: 22, Type: modbus.Int16},
	{Name: "in1", Table: modbus.Input, Address: 0, Type: modbus.Float32, Unit: "V"},
	{Name: "c0", Table: modbus.Coil, Address: 0, Type: modbus.Bool},
	{Name: "c1", Table: modbus.Coil, Address: 1, Type: modbus.Bool},
	{Name: "c2", Table: modbus.Coil, Address: 2, Type: modbus.Bool},
}}

// serve starts the test device with fixed values.
func serve(t *testing.T) *modbustest.Server {
	t.Helper()
	srv, err := modbustest.NewServer(device)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	for k, v := range map[string]any{"f_high": 230.5, "f_low": -12.25, "i16": -1234, "u32_low": 70000,
		"setpoint": 20.0, "small": 7, "in1": 231.25, "c0": true, "c1": false, "c2": true} {
		require.NoError(t, srv.Set(k, v))
	}
	return srv
}

func TestRead(t *testing.T) {
	srv := serve(t)
	for _, tt := range []struct {
		name string
		args []string
		want []string // substrings of stdout
	}{
		{"float32 high first", []string{"-table", "holding", "-address", "0", "-type", "float32"}, []string{"holding:0", "230.5", "0x4366 0x8000"}},
		{"float32 low first", []string{"-address", "2", "-type", "float32", "-word-order", "low_first"}, []string{"holding:2", "-12.25"}},
		{"float32 low first read high first", []string{"-address", "2", "-type", "float32"}, []string{"holding:2"}},
		{"int16", []string{"-address", "10", "-type", "int16"}, []string{"holding:10", "-1234"}},
		{"uint32 low first", []string{"-address", "12", "-type", "uint32", "-word-order", "LOW_FIRST"}, []string{"70000"}},
		{"scale", []string{"-address", "10", "-type", "int16", "-scale", "0.1"}, []string{"-123.4"}},
		{"input table alias", []string{"-table", "input_registers", "-address", "0", "-type", "float32"}, []string{"input:0", "231.25"}},
		{"coils", []string{"-table", "coil", "-address", "0", "-count", "3"}, []string{"coil:0", "coil:1", "coil:2", "true", "false"}},
		{"two float32", []string{"-address", "0", "-type", "float32", "-count", "2", "-word-order", "high_first"}, []string{"holding:0", "230.5", "holding:2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := m2m(t, append([]string{"read", srv.URL()}, tt.args...)...)
			require.Equal(t, 0, code, errOut)
			for _, w := range tt.want {
				assert.Contains(t, out, w)
			}
		})
	}
	// The low-first value read high first is another number: the word order
	// matters, and the tool applies the one given.
	_, out, _ := m2m(t, "read", srv.URL(), "-address", "2", "-type", "float32")
	assert.NotContains(t, out, "-12.25")
	// Coil values line by line.
	_, out, _ = m2m(t, "read", srv.URL(), "-table", "coil", "-address", "0", "-count", "3")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 4, out)
	assert.Contains(t, lines[1], "true")
	assert.Contains(t, lines[2], "false")
	assert.Contains(t, lines[3], "true")
}

func TestReadJSON(t *testing.T) {
	srv := serve(t)
	code, out, errOut := m2m(t, "read", srv.URL(), "-table", "holding", "-address", "0", "-type", "float32", "-count", "2", "-word-order", "low_first", "-json")
	require.Equal(t, 0, code, errOut)
	ss := decodeLines(t, out)
	require.Len(t, ss, 2)
	assert.Equal(t, srv.URL(), ss[0].Source)
	assert.Equal(t, "holding:0", ss[0].Point)
	assert.Equal(t, "holding:2", ss[1].Point)
	assert.Equal(t, bridge.Good, ss[1].Quality)
	assert.Equal(t, -12.25, ss[1].Value.Float()) // f_low, read low first
	assert.WithinDuration(t, time.Now(), ss[0].Time, 10*time.Second)

	// int16 comes out as an exact integer, coils as booleans.
	_, out, _ = m2m(t, "read", srv.URL(), "-address", "10", "-type", "int16", "-json")
	assert.Contains(t, out, `"value":-1234,`)
	_, out, _ = m2m(t, "read", srv.URL(), "-table", "coil", "-address", "0", "-json")
	assert.Contains(t, out, `"value":true,`)
}

func decodeLines(t *testing.T, out string) []bridge.Sample {
	t.Helper()
	var ss []bridge.Sample
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		s, err := bridge.DecodeJSON([]byte(l))
		require.NoError(t, err, l)
		ss = append(ss, s)
	}
	return ss
}

func TestReadModicon(t *testing.T) {
	srv := serve(t)
	code, out, errOut := m2m(t, "read", srv.URL(), "-modicon", "40001", "-type", "float32")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "Modicon 40001 is holding register, protocol address 0 (-table holding -address 0)")
	assert.Contains(t, out, "230.5")

	code, out, errOut = m2m(t, "read", srv.URL(), "-modicon", "30001", "-type", "float32")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "input register, protocol address 0")
	assert.Contains(t, out, "231.25")

	code, out, errOut = m2m(t, "read", srv.URL(), "-modicon", "00003")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "Modicon 00003 is coil, protocol address 2")
	assert.Contains(t, out, "coil:2")

	code, _, errOut = m2m(t, "read", srv.URL(), "-modicon", "400011", "-type", "int16")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "protocol address 10")

	for _, bad := range [][]string{{"-modicon", "20001"}, {"-modicon", "4001"}, {"-modicon", "40000"}, {"-modicon", "40001", "-address", "3"}} {
		code, _, errOut = m2m(t, append([]string{"read", srv.URL()}, bad...)...)
		assert.Equal(t, 2, code, "%q: %s", bad, errOut)
		assert.Contains(t, errOut, "-modicon")
	}
}

func TestReadPoll(t *testing.T) {
	srv := serve(t)
	code, out, errOut := m2m(t, "read", srv.URL(), "-address", "10", "-type", "int16", "-poll", "20ms", "-reads", "3", "-json")
	require.Equal(t, 0, code, errOut)
	assert.Len(t, decodeLines(t, out), 3)

	// A failing device: printed as Bad samples, polling goes on, exit 1.
	code, out, errOut = m2m(t, "read", srv.URL(), "-address", "500", "-poll", "20ms", "-reads", "2", "-json")
	assert.Equal(t, 1, code)
	ss := decodeLines(t, out)
	require.Len(t, ss, 2)
	assert.Equal(t, bridge.Bad, ss[0].Quality)
	assert.Contains(t, ss[0].Reason, "illegal data address")
	assert.Contains(t, errOut, "illegal data address")
}

func TestWrite(t *testing.T) {
	srv := serve(t)
	code, out, errOut := m2m(t, "write", srv.URL(), "-address", "20", "-type", "float32", "-min", "0", "-max", "80", "42.5")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "holding:20")
	assert.Contains(t, out, "42.5")
	assert.Contains(t, errOut, "wrote 42.5 to holding:20, read back 42.5")
	v, err := srv.Value("setpoint")
	require.NoError(t, err)
	assert.Equal(t, 42.5, v.Float())

	// A negative integer after --, JSON, the Modicon number of holding 22.
	code, out, errOut = m2m(t, "write", srv.URL(), "-modicon", "40023", "-type", "int16", "-json", "--", "-300")
	require.Equal(t, 0, code, errOut)
	ss := decodeLines(t, out)
	require.Len(t, ss, 1)
	assert.Equal(t, "holding:22", ss[0].Point)
	assert.Equal(t, int64(-300), must(ss[0].Value.Int()))
	v, err = srv.Value("small")
	require.NoError(t, err)
	assert.Equal(t, "-300", v.String())

	// A coil.
	code, _, errOut = m2m(t, "write", srv.URL(), "-table", "coil", "-address", "1", "true")
	require.Equal(t, 0, code, errOut)
	v, err = srv.Value("c1")
	require.NoError(t, err)
	assert.Equal(t, "true", v.String())

	// Read back through the tool.
	_, out, _ = m2m(t, "read", srv.URL(), "-address", "20", "-type", "float32")
	assert.Contains(t, out, "42.5")
}

func must[T any](v T, ok bool) T {
	if !ok {
		panic("not ok")
	}
	return v
}

// TestWriteRefused: a value the write rules refuse is answered with the
// library's message, exit 2, and nothing reaches the device.
func TestWriteRefused(t *testing.T) {
	srv := serve(t)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"int16 overflow", []string{"-address", "22", "-type", "int16", "70000"}, "holding:22: 70000 is above the int16 maximum 32767"},
		{"fraction for an integer", []string{"-address", "22", "-type", "int16", "1.5"}, "1.5 is not an integer (the point is int16)"},
		{"negative uint16", []string{"-address", "22", "--", "-1"}, "-1 is below the uint16 minimum 0"},
		{"above max", []string{"-address", "20", "-type", "float32", "-max", "80", "95"}, "holding:20: 95 is above max 80"},
		{"text for a number", []string{"-address", "20", "-type", "float32", "hot"}, "a string value for a float32 point"},
		{"not a bool", []string{"-table", "coil", "-address", "1", "2"}, "2 is not a bool"},
		{"read-only table", []string{"-table", "input", "-address", "0", "-type", "float32", "1"}, "read-only"},
		{"not representable", []string{"-address", "22", "-type", "int16", "-scale", "0.1", "1.25"}, "not representable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv.ResetRequests()
			code, out, errOut := m2m(t, append([]string{"write", srv.URL()}, tt.args...)...)
			assert.Equal(t, 2, code, errOut)
			assert.Contains(t, errOut, tt.want)
			assert.Empty(t, out)
			assert.Empty(t, srv.Requests(), "nothing may be sent for a refused write")
		})
	}
	v, err := srv.Value("small")
	require.NoError(t, err)
	assert.Equal(t, "7", v.String())
}

func TestUsage(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "usage: m2m"},
		{"unknown command", []string{"scna"}, `unknown command "scna"`},
		{"no URL", []string{"read", "-address", "0"}, "read wants one URL"},
		{"no address", []string{"read", "tcp://127.0.0.1:1"}, "-address (or -modicon) is required"},
		{"unknown table", []string{"read", "tcp://127.0.0.1:1", "-table", "holdings", "-address", "0"}, "-table"},
		{"unknown flag", []string{"read", "tcp://127.0.0.1:1", "-adress", "0"}, "flag provided but not defined: -adress"},
		{"bad word order", []string{"read", "tcp://127.0.0.1:1", "-address", "0", "-word-order", "sideways"}, "-word-order"},
		{"string without length", []string{"read", "tcp://127.0.0.1:1", "-address", "0", "-type", "string"}, "-length"},
		{"past 65535", []string{"read", "tcp://127.0.0.1:1", "-address", "65535", "-type", "float32"}, "-address: 65535 + 2 registers runs past 65535"},
		{"count past 65535", []string{"read", "tcp://127.0.0.1:1", "-address", "65534", "-count", "3"}, "run past address 65535"},
		{"bad URL", []string{"read", "ftp://x", "-address", "0"}, "ftp"},
		{"reads without poll", []string{"read", "tcp://127.0.0.1:1", "-address", "0", "-reads", "3"}, "-reads only with -poll"},
		{"write without value", []string{"write", "tcp://127.0.0.1:1", "-address", "0"}, "write wants a URL and a VALUE"},
		{"min on a bool", []string{"write", "tcp://127.0.0.1:1", "-table", "coil", "-address", "0", "-min", "0", "true"}, "-min"},
		{"unit 0 on rtu", []string{"write", "rtuovertcp://127.0.0.1:1", "-unit", "0", "-address", "0", "1"}, "-unit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := m2m(t, tt.args...)
			assert.Equal(t, 2, code, errOut)
			assert.Contains(t, errOut, tt.want)
		})
	}
	for _, cmd := range []string{"read", "write"} {
		code, _, errOut := m2m(t, cmd, "-h")
		assert.Equal(t, 0, code)
		assert.Contains(t, errOut, "usage: m2m "+cmd)
		assert.Contains(t, errOut, "-word-order")
		assert.Contains(t, errOut, "Exit status: 0 ok, 1 device or transport error, 2 usage error")
	}
}

// TestDeviceErrors: an address the device does not have, a device that is
// not there: exit 1 with the error.
func TestDeviceErrors(t *testing.T) {
	srv := serve(t)
	code, out, errOut := m2m(t, "read", srv.URL(), "-address", "500")
	assert.Equal(t, 1, code)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "holding 500")
	assert.Contains(t, errOut, "exception 2 (illegal data address)")

	code, _, errOut = m2m(t, "write", srv.URL(), "-address", "500", "1")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "illegal data address")

	dead := srv.URL()
	srv.Close()
	code, _, errOut = m2m(t, "read", dead, "-address", "0", "-timeout", "200ms")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "m2m: modbus:")
}
