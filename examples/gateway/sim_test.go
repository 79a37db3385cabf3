package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/m2mbridge/m2mbridge/bridge"
	"github.com/m2mbridge/m2mbridge/modbus"
	"github.com/m2mbridge/m2mbridge/modbus/modbustest"
)

// TestModbusSimBinary runs the gateway against the examples/modbus-sim
// binary, as the README's walk-through does, with fixed values that must
// arrive exactly.
func TestModbusSimBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "modbus-sim")
	out, err := exec.Command("go", "build", "-o", bin, "../modbus-sim").CombinedOutput()
	require.NoError(t, err, string(out))
	sim := exec.Command(bin, "-addr", "127.0.0.1:0", "-profile", "eastron-sdm630",
		"-set", "voltage_l1=230.25", "-set", "frequency=49.875")
	stderr, err := sim.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, sim.Start())
	t.Cleanup(func() {
		sim.Process.Signal(os.Interrupt)
		sim.Wait()
	})
	line, err := bufio.NewReader(stderr).ReadString('\n')
	require.NoError(t, err)
	url := regexp.MustCompile(`tcp://127\.0\.0\.1:\d+`).FindString(line)
	require.NotEmpty(t, url, line)

	dir := t.TempDir()
	writeConfig(t, dir, fmt.Sprintf(`
devices:
  - name: meter1
    modbus: {url: %s}
    profile: eastron-sdm630
sinks:
  - file: {path: samples.jsonl}
`, url))
	code, _, log := runGateway(t, dir, nil, "-once")
	require.Equal(t, 0, code, log)
	got := map[string]bridge.Sample{}
	for _, s := range readSamples(t, filepath.Join(dir, "samples.jsonl")) {
		got[s.Point] = s
	}
	assert.Equal(t, 230.25, got["voltage_l1"].Value.Float())
	assert.Equal(t, "V", got["voltage_l1"].Unit)
	assert.Equal(t, 49.875, got["frequency"].Value.Float())
}

// TestRTUOverPTY runs the gateway over Modbus RTU on a serial line: one end
// of a socat pseudo-terminal pair is the gateway's rtu:// port, the RTU
// simulator answers on the other, as a meter on an RS-485 adapter would.
func TestRTUOverPTY(t *testing.T) {
	if _, err := exec.LookPath("socat"); err != nil {
		if os.Getenv("M2MB_INTEROP") == "1" {
			t.Fatal("socat is not installed")
		}
		t.Skip("socat is not installed")
	}
	a, b, stop, err := modbustest.SocatPTY(ctxT(t, time.Minute), t.TempDir())
	require.NoError(t, err)
	t.Cleanup(stop)
	f, err := os.OpenFile(a, os.O_RDWR, 0)
	require.NoError(t, err)
	prof, err := modbus.BuiltinProfile("eastron-sdm630")
	require.NoError(t, err)
	srv, err := modbustest.NewRTUServer(prof, f, modbustest.WithUnits(7))
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	require.NoError(t, srv.Set("voltage_l2", 229.5))

	dir := t.TempDir()
	// A pseudo-terminal refuses parity, so the line is 8N2.
	writeConfig(t, dir, fmt.Sprintf(`
devices:
  - name: meter7
    modbus: {url: "rtu://%s", unit: 7, speed: 19200, parity: none, stop_bits: 2, timeout: 1s}
    profile: eastron-sdm630
sinks:
  - file: {path: samples.jsonl}
`, b))
	code, _, log := runGateway(t, dir, nil, "-once")
	require.Equal(t, 0, code, log)
	samples := readSamples(t, filepath.Join(dir, "samples.jsonl"))
	require.Len(t, samples, len(prof.Points))
	for _, s := range samples {
		assert.Equal(t, bridge.Good, s.Quality, "%s: %s", s.Point, s.Reason)
		if s.Point == "voltage_l2" {
			assert.Equal(t, 229.5, s.Value.Float())
		}
	}
}
